/**
 * The agent with every kind of flexible load, as an installer configures them (the demo's config):
 * SunSpec PV, battery and site meter; a Phoenix Contact EV charger, a Lambda heat pump and an Eastron
 * sub-meter through their profiles over Modbus TCP; a water heater on a Shelly plug over MQTT on the
 * gateway's broker. What the agent reads is what the simulators hold; devices flexgate had changed
 * and not restored when it stopped are put back to normal at the next start.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../agent/agent.js';
import { demoConfig } from '../agent/demo.js';
import type { SiteSnapshot } from '../agent/snapshot.js';
import { openStore } from '../agent/store/index.js';
import { SqliteRestoreLedger } from '../agent/store/restore-ledger.js';
import type { EvChargerReading, HvacReading, LoadReading, MeterReading } from '../drivers/classes.js';
import { silentLog } from '../drivers/log.js';
import { VirtualClock } from '../simulators/clock.js';
import { SimulatedHome } from '../simulators/home.js';
import { tempDir, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function reading<T>(snapshot: SiteSnapshot, id: string): T | undefined {
  const d = snapshot.devices.find((x) => x.id === id);
  return d?.availability.state === 'online' ? (d.reading as T | undefined) : undefined;
}

async function start(dataDir: string, home: SimulatedHome) {
  const config = demoConfig(home, dataDir);
  const agent = new Agent({ config, log: silentLog });
  const snapshots: SiteSnapshot[] = [];
  agent.events.on('snapshot', (s) => void snapshots.push(s));
  await agent.start();
  return { agent, snapshots };
}

describe('flexible loads through profiles and MQTT', () => {
  it('reads every device as the simulators hold it, and the site meter sums them', async () => {
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 18), manual: true });
    const home = await SimulatedHome.start({ clock, seed: 4, baseLoadW: 400, flexibleLoads: true, evEnergyWantedWh: 30_000 });
    cleanups.push(() => home.stop());
    clock.advance(1000);
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const { agent, snapshots } = await start(dir.path, home);
    cleanups.push(() => agent.stop());
    await home.startMqttDevices(agent.localBrokerUrl!);
    const all = await waitFor(
      'every device online',
      () => snapshots.at(-1)?.devices.every((d) => d.availability.state === 'online' && d.fresh) && snapshots.at(-1),
      15_000,
    );
    const ev = reading<EvChargerReading>(all, 'ev')!;
    expect(ev).toMatchObject({ plugged: true, charging: true, enabled: true, currentLimitA: 16, powerW: home.ev!.powerW });
    const hp = reading<HvacReading>(all, 'heat-pump')!;
    expect(hp.powerW).toBe(home.heatPump!.electricalPowerW);
    expect(hp.indoorC).toBeCloseTo(home.heatPump!.indoorC, 1);
    expect(hp.setpointOffsetC).toBe(0);
    const sub = reading<MeterReading>(all, 'hp-meter')!;
    expect(sub.powerW).toBeCloseTo(home.heatPump!.electricalPowerW, 3);
    const heater = reading<LoadReading>(all, 'water-heater')!;
    expect(heater.on).toBe(true);
    expect(heater.powerW).toBe(home.waterHeater!.powerW);
    // The grid sees the household, the battery, the PV and every flexible load.
    const grid = reading<MeterReading>(all, 'meter')!;
    expect(grid.powerW).toBe(home.meter.powerW);
    expect(all.site.evPowerW).toBe(ev.powerW);
    expect(all.site.hvacPowerW).toBe(hp.powerW);
    expect(all.site.loadPowerW).toBe(heater.powerW);
  });

  it('restores at start every device it had changed and not restored before it stopped', async () => {
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 18), manual: true });
    const home = await SimulatedHome.start({ clock, seed: 4, baseLoadW: 400, flexibleLoads: true });
    cleanups.push(() => home.stop());
    clock.advance(1000);
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    // A first run that leaves its store behind (as after a crash, the ledger is what counts).
    {
      const { agent } = await start(dir.path, home);
      await agent.stop();
    }
    // What a dispatcher had done before the agent died: EV paused, heat pump offset down, plug off;
    // each marked in the ledger before its write.
    const store = openStore({ path: `${dir.path}/flexgate.db`, clock, log: silentLog });
    const ledger = new SqliteRestoreLedger(store.database);
    for (const id of ['ev', 'heat-pump', 'water-heater']) ledger.markChanged(id, clock.now());
    store.close();
    home.evCharger!.image.writeCoilFromBus(400, false);
    home.lambda!.image.writeFromBus(5050, [(-30) & 0xffff]);
    home.waterHeater!.supplyOn = false;
    home.waterHeater!.recompute();
    expect(home.ev!.enabled).toBe(false);
    expect(home.heatPump!.flowOffsetC).toBe(-3);

    const { agent } = await start(dir.path, home);
    cleanups.push(() => agent.stop());
    await home.startMqttDevices(agent.localBrokerUrl!);
    await waitFor('EV, heat pump and plug back to normal', () => home.ev!.enabled && home.heatPump!.flowOffsetC === 0 && home.waterHeater!.supplyOn, 15_000);
    expect(home.ev!.offeredCurrentA).toBe(16);
    await agent.stop();
    const after = openStore({ path: `${dir.path}/flexgate.db`, clock, log: silentLog });
    expect(new SqliteRestoreLedger(after.database).changedDevices()).toEqual([]);
    after.close();
  });
});
