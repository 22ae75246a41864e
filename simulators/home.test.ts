import { afterEach, describe, expect, it } from 'vitest';
import { VirtualClock } from './clock.js';
import { SimulatedHome } from './home.js';
import { socatAvailable } from './modbus/pty.js';
import { closeClient, failure, rtuClient, tcpClient, type Client } from './modbus/test-client.js';

const hasSocat = socatAvailable();
// Under CI a missing Debian package is a failure, not a skip (DESIGN.md: Real parts).
if (!hasSocat && process.env['CI'] === 'true') throw new Error('socat is not installed (apt-get install -y socat); CI must run the RTU tests');
const toInt16 = (r: number) => (r >= 0x8000 ? r - 0x10000 : r);

describe('SimulatedHome', () => {
  let home: SimulatedHome | undefined;
  const clients: Client[] = [];
  afterEach(async () => {
    for (const c of clients.splice(0)) await closeClient(c);
    await home?.stop();
    home = undefined;
  });

  it('serves PV on server A and battery + meter on gateway B; the agent reads the truth and curtails', async () => {
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 5, 21, 13), manual: true });
    home = await SimulatedHome.start({ clock, seed: 3, cloudiness: 0, baseLoadW: 500 });
    expect(home.devices.map((d) => [d.id, d.modbus?.unitId])).toEqual([
      ['pv', 1],
      ['battery', 1],
      ['meter', 2],
    ]);
    const pvAt = home.device('pv').modbus!;
    const meterAt = home.device('meter').modbus!;
    expect(meterAt.port).toBe(home.device('battery').modbus!.port);
    expect(pvAt.port).not.toBe(meterAt.port);
    clock.advance(1000);

    const pv = await tcpClient(pvAt.host, pvAt.port, 1);
    clients.push(pv);
    expect((await pv.readHoldingRegisters(40000, 4)).data).toEqual([0x5375, 0x6e53, 1, 66]);
    // 103 at 40070: W at +14, W_SF at +15 (0)
    expect((await pv.readHoldingRegisters(40084, 2)).data).toEqual([8000, 0]);
    expect(home.pv.acPowerW).toBe(8000);
    // 120 at 40122 (L 26), 123 at 40150: WMaxLimPct +5 (sf −1), _WinTms, _RvrtTms, _RmpTms, WMaxLim_Ena +9
    expect((await pv.readHoldingRegisters(40150, 2)).data).toEqual([123, 24]);
    await pv.writeRegisters(40155, [500, 0, 30, 0, 1]); // 50.0 %, revert after 30 s
    expect((await pv.readHoldingRegisters(40084, 1)).data).toEqual([4000]);

    // PV surplus 7500 W − load 500 → battery charges 5000 (its max); meter = 500 + 5000 − 8000 before the limit
    const gw = await tcpClient(meterAt.host, meterAt.port, 2);
    clients.push(gw);
    clock.advance(1000);
    expect(home.battery.powerW).toBe(3500); // 4000 − 500 after the limit
    expect(home.meter.powerW).toBe(500 + 3500 - 4000);
    // 203 at 40070: W at +18 → 40088
    expect((await gw.readHoldingRegisters(40070, 2)).data).toEqual([203, 105]);
    expect(toInt16((await gw.readHoldingRegisters(40088, 1)).data[0]!)).toBe(home.meter.powerW);
    gw.setID(1);
    // battery: 103 W at 40084 is AC output (−charge); 124 at 40122, ChaState at +8 with sf −1
    expect(toInt16((await gw.readHoldingRegisters(40084, 1)).data[0]!)).toBe(-3500);
    expect((await gw.readHoldingRegisters(40122, 2)).data).toEqual([124, 24]);
    expect((await gw.readHoldingRegisters(40130, 1)).data[0]! / 10).toBeCloseTo(home.battery.socPct, 1);

    clock.advance(29_000); // the limit's revert timer runs out
    expect((await pv.readHoldingRegisters(40084, 1)).data).toEqual([8000]);
    expect((await pv.readHoldingRegisters(40159, 1)).data).toEqual([0]);

    home.faults('meter').set({ kind: 'no-answer' });
    gw.setID(2);
    gw.setTimeout(100);
    expect((await failure(gw.readHoldingRegisters(40088, 1))).errno).toBe('ETIMEDOUT');
    gw.setID(1);
    expect((await gw.readHoldingRegisters(40002, 1)).data).toEqual([1]);
    home.faults('meter').clear();
    gw.setID(2);
    expect((await gw.readHoldingRegisters(40002, 1)).data).toEqual([1]);
  });

  it.skipIf(!hasSocat)('puts the meter on an RTU line over a pty pair when asked', async () => {
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 5, 21, 2), manual: true });
    home = await SimulatedHome.start({ clock, seed: 3, baseLoadW: 750, meterOnRtu: { baudRate: 38400 } });
    const at = home.device('meter').rtu!;
    expect(at.unitId).toBe(1);
    expect(home.device('meter').modbus).toBeUndefined();
    clock.advance(1000);
    const meter = await rtuClient(at.path, at.baudRate, at.unitId, 500);
    clients.push(meter);
    expect((await meter.readHoldingRegisters(40000, 2)).data).toEqual([0x5375, 0x6e53]);
    // Night: no PV, battery covers the load (self-consumption) → meter ≈ 0
    expect(home.battery.powerW).toBe(-750);
    expect(toInt16((await meter.readHoldingRegisters(40088, 1)).data[0]!)).toBe(0);
    home.faults('meter').set({ kind: 'exception', code: 4 });
    expect((await failure(meter.readHoldingRegisters(40088, 1))).modbusCode).toBe(4);
  });

  it('runs on its own clock at a speed factor', async () => {
    home = await SimulatedHome.start({ speed: 1000, startTimeMs: Date.UTC(2026, 5, 21, 13), cloudiness: 0, baseLoadW: 400 });
    const t0 = home.clock.now();
    await new Promise((r) => setTimeout(r, 30));
    expect(home.clock.now() - t0).toBeGreaterThanOrEqual(25_000);
    expect(home.meter.importWh + home.meter.exportWh).toBeGreaterThan(0);
  });
});
