/**
 * The agent end to end: simulated SunSpec devices over real Modbus TCP and a real RS-485 line
 * (socat pseudo-terminals), the real store file, the local MQTT API on the embedded broker.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { Agent } from '../agent/agent.js';
import type { SiteSnapshot } from '../agent/snapshot.js';
import { openStore } from '../agent/store/index.js';
import type { BatteryReading, MeterReading, PvReading } from '../drivers/classes.js';
import { systemClock } from '../drivers/clock.js';
import { silentLog } from '../drivers/log.js';
import type { SimulatedHome } from '../simulators/home.js';
import { homeConfig, recorder, requirePackage, startFrozenHome, tempDir, waitFor } from './helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function startAgent(home: SimulatedHome, configOverrides: Parameters<typeof homeConfig>[2] = {}) {
  const dir = tempDir();
  const config = homeConfig(home, dir.path, configOverrides);
  const agent = new Agent({ config, log: silentLog });
  const snapshots: SiteSnapshot[] = [];
  agent.events.on('snapshot', (s) => void snapshots.push(s));
  await agent.start();
  cleanups.push(() => dir.remove());
  cleanups.push(() => agent.stop());
  return { agent, config, snapshots, dir: dir.path };
}

function reading<T>(snapshot: SiteSnapshot, id: string): T {
  const d = snapshot.devices.find((x) => x.id === id);
  if (!d?.reading) throw new Error(`no reading of ${id}`);
  return d.reading as T;
}

/** What the agent read must be what the simulated devices hold, to the resolution of their registers. */
function expectTruth(snapshot: SiteSnapshot, home: SimulatedHome): void {
  const pv = reading<PvReading>(snapshot, 'pv');
  const battery = reading<BatteryReading>(snapshot, 'battery');
  const meter = reading<MeterReading>(snapshot, 'meter');
  expect(pv.powerW).toBe(Math.round(home.pv.acPowerW));
  expect(pv.powerW).toBeGreaterThan(1000); // midday, clear sky
  expect(pv.ratedPowerW).toBe(8000);
  expect(pv.limitPct).toBeUndefined();
  expect(battery.socPct).toBeCloseTo(home.battery.socPct, 1);
  expect(battery.powerW).toBeCloseTo(home.battery.powerW, 0);
  expect(meter.powerW).toBeCloseTo(home.meter.powerW, 0);
  expect(meter.importWh).toBeCloseTo(home.meter.importWh, -1);
  expect(meter.exportWh).toBeCloseTo(home.meter.exportWh, -1);
  expect(snapshot.site.gridPowerW).toBe(meter.powerW);
  expect(snapshot.site.pvPowerW).toBe(pv.powerW);
  expect(snapshot.site.batterySocPct).toBeCloseTo(battery.socPct, 5);
}

describe('agent on a simulated SunSpec home', () => {
  it('reads PV, battery and meter over Modbus TCP exactly as the devices hold them, and stores them', async () => {
    const home = await startFrozenHome();
    cleanups.push(() => home.stop());
    const { agent, snapshots, config } = await startAgent(home);
    const snapshot = await waitFor('a snapshot with every device online', () =>
      snapshots.find((s) => s.devices.every((d) => d.availability.state === 'online' && d.fresh)),
    );
    expectTruth(snapshot, home);
    expect(snapshot.devices.find((d) => d.id === 'pv')!.description).toMatch(/SunSpec/);

    // The physics move on; the next cycles follow them.
    home.clock.advance(60_000);
    const later = await waitFor('a snapshot after the physics moved', () =>
      snapshots.find((s) => s.cycle > snapshot.cycle + 1 && reading<PvReading>(s, 'pv').powerW === Math.round(home.pv.acPowerW) && reading<MeterReading>(s, 'meter').powerW === Math.round(home.meter.powerW)),
    );
    expectTruth(later, home);

    await agent.stop();
    const store = openStore({ path: agent.storePath, clock: systemClock, log: silentLog, readOnly: true });
    try {
      const latest = new Map(store.latestReadings().map((r) => [r.deviceId, r]));
      expect(latest.get('pv')!.values['powerW']!.value).toBe(reading<PvReading>(snapshots.at(-1)!, 'pv').powerW);
      expect(latest.get('meter')!.values['importWh']).toBeDefined();
      expect(store.latestAvailability().map((a) => [a.deviceId, a.online]).sort()).toEqual(config.devices.map((d) => [d.id, true]).sort());
      expect(store.integrityCheck()).toEqual([]);
    } finally {
      store.close();
    }
  });

  it('reads the meter over a 9600-baud RS-485 line next to TCP devices', async () => {
    if (!requirePackage('socat', 'socat')) return;
    const home = await startFrozenHome({ meterOnRtu: { baudRate: 9600 } });
    cleanups.push(() => home.stop());
    const { snapshots } = await startAgent(home, { device: { pollIntervalMs: 500, timeoutMs: 800 } });
    const snapshot = await waitFor('all devices online', () => snapshots.find((s) => s.devices.every((d) => d.availability.state === 'online' && d.fresh)));
    expectTruth(snapshot, home);
    expect(home.device('meter').rtu).toBeDefined();
  });

  it('publishes state, info, device topics and answers requests on the local MQTT API', async () => {
    const home = await startFrozenHome();
    cleanups.push(() => home.stop());
    const { agent, snapshots } = await startAgent(home, { config: { localApi: { mqtt: { embedded: { host: '127.0.0.1', port: 0 } } } } });
    await agent.localApiConnected();
    await waitFor('two snapshots', () => snapshots.length >= 2);
    const prefix = 'flexgate/test-home';
    const rec = await recorder(agent.localBrokerUrl!, [`${prefix}/#`]);
    cleanups.push(() => rec.close());
    const find = (topic: string) => rec.messages.find((m) => m.topic === topic);
    // Retained topics reach a client that subscribes late.
    const state = await waitFor('bridge/state', () => find(`${prefix}/bridge/state`));
    expect(state.retain).toBe(true);
    expect(JSON.parse(state.payload)).toEqual({ state: 'online' });
    const info = JSON.parse((await waitFor('bridge/info', () => find(`${prefix}/bridge/info`))).payload);
    expect(info.gateway).toEqual({ name: 'test-home' });
    expect(info.devices.map((d: { id: string }) => d.id)).toEqual(['pv', 'battery', 'meter']);
    const pv = JSON.parse((await waitFor('devices/pv', () => find(`${prefix}/devices/pv`))).payload);
    expect(pv).toMatchObject({ id: 'pv', class: 'pv', availability: { state: 'online' } });
    expect(pv.reading.powerW).toBe(Math.round(home.pv.acPowerW));
    const availability = JSON.parse((await waitFor('availability', () => find(`${prefix}/devices/meter/availability`))).payload);
    expect(availability.state).toBe('online');
    await waitFor('a site message', () => find(`${prefix}/site`));

    // Requests: answered on bridge/response/<x> with the transaction echoed.
    await rec.client.publishAsync(`${prefix}/bridge/request/snapshot`, JSON.stringify({ transaction: 'abc-1' }));
    const snap = JSON.parse((await waitFor('snapshot response', () => find(`${prefix}/bridge/response/snapshot`))).payload);
    expect(snap).toMatchObject({ status: 'ok', transaction: 'abc-1' });
    expect(snap.data.devices).toHaveLength(3);
    expect(snap.data.site.pvPowerW).toBe(Math.round(home.pv.acPowerW));
    await rec.client.publishAsync(`${prefix}/bridge/request/health_check`, '');
    expect(JSON.parse((await waitFor('health', () => find(`${prefix}/bridge/response/health_check`))).payload)).toMatchObject({ status: 'ok', data: { healthy: true } });
    // Bad requests get an error answer and change nothing.
    await rec.client.publishAsync(`${prefix}/bridge/request/devices`, '{not json');
    expect(JSON.parse((await waitFor('error response', () => find(`${prefix}/bridge/response/devices`))).payload)).toMatchObject({ status: 'error', error: expect.stringMatching(/not valid JSON/) });
    await rec.client.publishAsync(`${prefix}/bridge/request/reboot`, JSON.stringify({ transaction: 7 }));
    expect(JSON.parse((await waitFor('unknown response', () => find(`${prefix}/bridge/response/reboot`))).payload)).toMatchObject({ status: 'error', transaction: 7, error: expect.stringMatching(/unknown request "reboot"/) });
    // Stored batches are announced only once durable.
    const stored = JSON.parse((await waitFor('readings_stored event', () => find(`${prefix}/bridge/event`), 5000)).payload);
    expect(stored).toMatchObject({ type: 'readings_stored', data: { batchId: expect.any(Number), rows: expect.any(Number) } });

    const before = snapshots.length;
    await waitFor('the agent keeps running after bad requests', () => snapshots.length > before + 1);
  });

  it('starts and keeps running with an unreachable host, a wrong unit id and a device that is not there', async () => {
    const home = await startFrozenHome();
    cleanups.push(() => home.stop());
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const gateway = home.device('battery').modbus!;
    const config = homeConfig(home, dir.path);
    config.devices.push(
      { ...config.devices[0]!, id: 'nohost', connection: { tcp: { host: '127.0.0.1', port: 1 } }, unitId: 1 },
      { ...config.devices[2]!, id: 'wrongunit', connection: { tcp: { host: gateway.host, port: gateway.port } }, unitId: 9, role: 'submeter' },
    );
    const agent = new Agent({ config, log: silentLog });
    const snapshots: SiteSnapshot[] = [];
    agent.events.on('snapshot', (s) => void snapshots.push(s));
    await agent.start();
    cleanups.push(() => agent.stop());
    const s = await waitFor('the bad devices offline and the good ones online', () =>
      snapshots.find((x) => ['nohost', 'wrongunit'].every((id) => x.devices.find((d) => d.id === id)!.availability.state === 'offline') && ['pv', 'battery', 'meter'].every((id) => x.devices.find((d) => d.id === id)!.fresh)),
    );
    const reason = (id: string) => {
      const a = s.devices.find((d) => d.id === id)!.availability;
      return a.state === 'offline' ? a.reason : '';
    };
    expect(reason('nohost')).toMatch(/tcp 127\.0\.0\.1:1 unit 1: .*(refused|connect)/i);
    expect(reason('wrongunit')).toMatch(new RegExp(`tcp ${gateway.host.replace(/\./g, '\\.')}:${gateway.port} unit 9: .*(exception 11|gateway target|0x0B)`, 'i'));
    expect(s.devices.find((d) => d.id === 'nohost')!.reading).toBeUndefined();
    expectTruth(s, home);
  });
});
