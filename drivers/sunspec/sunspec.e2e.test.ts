/**
 * End to end: the SunSpec classes over the real Modbus TCP transport (drivers/modbus) against the
 * simulated home (simulators/home.ts), which serves its devices like real ones do. The broader
 * agent-level e2e tests live in test/.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Battery, Meter, Pv } from '../classes.js';
import { systemClock } from '../clock.js';
import { silentLog } from '../log.js';
import { createModbusBus } from '../modbus/bus.js';
import type { ModbusBus } from '../modbus/types.js';
import { VirtualClock } from '../../simulators/clock.js';
import { SimulatedHome } from '../../simulators/home.js';
import { createSunSpecDevice } from './device.js';
import { scanUnits, suggestConfig } from './scan.js';

describe('SunSpec over Modbus TCP against the simulated home', () => {
  let home: SimulatedHome | undefined;
  const buses: ModbusBus[] = [];
  afterEach(async () => {
    for (const b of buses.splice(0)) await b.stop();
    await home?.stop();
    home = undefined;
  });

  async function busTo(host: string, port: number): Promise<ModbusBus> {
    const bus = createModbusBus({ connection: { tcp: { host, port } }, clock: systemClock, log: silentLog, timeoutMs: 2000 });
    await bus.start();
    buses.push(bus);
    return bus;
  }

  for (const variant of ['inverter', 'der'] as const) {
    it(`reads and controls PV and battery (${variant} models) and the meter`, async () => {
      const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 5, 21, 12), manual: true });
      home = await SimulatedHome.start({ clock, seed: 5, cloudiness: 0, baseLoadW: 600, variants: { pv: variant, battery: variant, meter: 'wye' } });
      clock.advance(1000);
      const pvAt = home.device('pv').modbus!;
      const gwAt = home.device('battery').modbus!;
      const busA = await busTo(pvAt.host, pvAt.port);
      const busB = await busTo(gwAt.host, gwAt.port);

      const pv: Pv = await createSunSpecDevice({ id: 'pv', deviceClass: 'pv', unit: busA.unit(pvAt.unitId), log: silentLog });
      const battery: Battery = await createSunSpecDevice({ id: 'battery', deviceClass: 'battery', unit: busB.unit(gwAt.unitId), log: silentLog });
      const meter: Meter = await createSunSpecDevice({ id: 'meter', deviceClass: 'meter', unit: busB.unit(home.device('meter').modbus!.unitId), log: silentLog });
      expect(pv.describe()).toMatch(/^SunSpec flexgate-sim /);

      // Transactions per poll: one range per model, merged by the transport across the models in between.
      // inverter: PV 103 at 40070 .. 123 WMaxLimPct_SF at 40173, one read of 104 registers; battery
      //           103 + 124, one read (40070+78). der: PV 701 alone, then 702 + 704 (40225+107);
      //           battery 701 | 702, 713 and 704 | 802. The 203 meter: 40070+55.
      const counts = variant === 'inverter' ? { pv: 1, battery: 1 } : { pv: 2, battery: 3 };
      let before = busA.stats.transactions;
      const pvReading = await pv.read();
      expect(busA.stats.transactions - before).toBe(counts.pv);
      expect(pvReading.powerW).toBe(home.pv.acPowerW);
      expect(pvReading.ratedPowerW).toBe(8000);
      expect(pvReading.limitPct).toBeUndefined();
      before = busB.stats.transactions;
      const b = await battery.read();
      expect(busB.stats.transactions - before).toBe(counts.battery);
      expect(b.powerW).toBe(Math.round(home.battery.powerW));
      expect(b.socPct).toBeCloseTo(home.battery.socPct, 1);
      before = busB.stats.transactions;
      const m = await meter.read();
      expect(busB.stats.transactions - before).toBe(1);
      expect(m.powerW).toBe(home.meter.powerW);
      expect(busA.stats.exceptions + busB.stats.exceptions).toBe(0);

      // Setpoints: value, revert timer and enable in one FC16 (123: 40075+5; 704: WMaxLimPctEna ..
      // WMaxLimPctRvrtTms, 6 registers; 704 WSetEna .. WSetRvrtTms, 11 registers), the points in
      // between kept as read. 124: OutWRte .. InOutWRte_RvrtTms (4 registers), then StorCtl_Mod = 3
      // unless the last poll already shows it.
      before = busA.stats.transactions;
      await pv.setLimitPct(25, 60_000);
      expect(busA.stats.transactions - before).toBe(1);
      clock.advance(1000);
      expect(home.pv.limitPct).toBe(25);
      expect(home.pv.revertRemainingMs).toBeGreaterThan(0);
      const limited = await pv.read();
      expect(limited.limitPct).toBe(25);
      expect(limited.powerW).toBeLessThanOrEqual(2000);

      const setpointWrites = variant === 'inverter' ? { first: 2, again: 1 } : { first: 1, again: 1 };
      before = busB.stats.transactions;
      await battery.setPowerW(-1500, 60_000);
      expect(busB.stats.transactions - before).toBe(setpointWrites.first);
      clock.advance(1000);
      expect(Math.round(home.battery.powerW)).toBe(-1500);
      expect(home.battery.revertRemainingMs).toBeGreaterThan(0);
      expect((await battery.read()).powerW).toBe(-1500);
      before = busB.stats.transactions;
      await battery.setPowerW(-1200, 60_000);
      expect(busB.stats.transactions - before).toBe(setpointWrites.again);
      clock.advance(1000);
      expect(Math.round(home.battery.powerW)).toBe(-1200);
      expect((await battery.read()).setpointW).toBe(-1200);
      expect(busA.stats.exceptions + busB.stats.exceptions).toBe(0);

      // The dead-man switch: without a new write both devices return to their own control.
      clock.advance(61_000);
      expect(home.pv.limitPct).toBeUndefined();
      expect(home.battery.controlWindowW).toBeUndefined();

      await pv.setLimitPct(50, 60_000);
      await pv.clearLimit();
      expect(home.pv.limitPct).toBeUndefined();
      // After a poll (the agent polls every second) the next setpoint takes hold again.
      expect((await battery.read()).setpointW).toBeUndefined();
      await battery.setPowerW(1000, 60_000);
      expect(home.battery.controlWindowW).toEqual({ minW: 1000, maxW: 1000 });
      await battery.clearSetpoint();
      expect(home.battery.controlWindowW).toBeUndefined();
    });
  }

  it('reads the DER meter (model 701: W positive for injection) with import positive, as the 203 meter', async () => {
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 5, 21, 12), manual: true });
    home = await SimulatedHome.start({ clock, seed: 5, cloudiness: 0, baseLoadW: 600, variants: { meter: 'der' } });
    const meterAt = home.device('meter').modbus!;
    const bus = await busTo(meterAt.host, meterAt.port);
    const meter: Meter = await createSunSpecDevice({ id: 'meter', deviceClass: 'meter', unit: bus.unit(meterAt.unitId), log: silentLog });
    expect(meter.describe()).toMatch(/METER-DER \(models 1,701\)/);

    // Noon in June: 8 kW of PV, the battery takes 5 kW, the site exports the rest.
    clock.advance(60_000);
    expect(home.meter.powerW).toBeLessThan(-1000);
    const before = bus.stats.transactions;
    const exporting = await meter.read();
    expect(bus.stats.transactions - before).toBe(1); // 701 from its ID to TotWh_SF: 40070+121
    expect(exporting.powerW).toBe(home.meter.powerW);
    expect(home.meter.sunspec.get(701, 'W')).toBe(-home.meter.powerW); // on the wire: injection positive
    expect(exporting.exportWh).toBe(Math.floor(home.meter.exportWh));
    expect(exporting.exportWh).toBeGreaterThan(0);
    expect(exporting.importWh).toBe(Math.floor(home.meter.importWh));
    expect(exporting.voltageV).toBe(230);
    expect(exporting.frequencyHz).toBe(50);

    // A 12 kW load: the site imports.
    home.meter.addLoad(() => 12_000);
    clock.advance(3_600_000);
    expect(home.meter.powerW).toBeGreaterThan(1000);
    const importing = await meter.read();
    expect(importing.powerW).toBe(home.meter.powerW);
    expect(importing.importWh).toBe(Math.floor(home.meter.importWh));
    expect(importing.importWh).toBeGreaterThan(exporting.importWh!);
    expect(importing.exportWh).toBe(exporting.exportWh);
  });

  it('scans the gateway and suggests the config', async () => {
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 5, 21, 12), manual: true });
    home = await SimulatedHome.start({ clock });
    const gwAt = home.device('battery').modbus!;
    const bus = await busTo(gwAt.host, gwAt.port);
    const results = await scanUnits([bus.unit(1), bus.unit(2)], silentLog);
    expect(results.map((r) => [r.found, r.modelIds, r.suggestedClasses])).toEqual([
      [true, [1, 103, 124], ['battery']],
      [true, [1, 203], ['meter']],
    ]);
    const connection = { tcp: { host: gwAt.host, port: gwAt.port } };
    expect(suggestConfig(results[1]!, connection)).toEqual([
      { id: 'flexgate-sim-meter-2', class: 'meter', driver: 'sunspec', connection, unitId: 2, sunspec: { baseAddress: 40000 } },
    ]);
  });
});
