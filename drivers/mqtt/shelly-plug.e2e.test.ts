/**
 * End to end: the shipped Shelly Plus Plug S profile over this transport, as a `Load` of the generic
 * class layer, against the Shelly Plus Plug S simulator (simulators/mqtt/shelly-plug.ts, written apart
 * from the vendor's MQTT API) on a real aedes broker: readings, confirmed switching, the simulator's
 * faults (stale, malformed JSON, a missing field) and a broker restart.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { isLoad, type Load } from '../classes.js';
import { StaleDataError } from '../errors.js';
import { createProfileDevice } from '../profiles/device.js';
import { loadProfile } from '../profiles/load.js';
import { VirtualClock } from '../../simulators/clock.js';
import { WaterHeater } from '../../simulators/devices/water-heater.js';
import { ShellyPlug } from '../../simulators/mqtt/shelly-plug.js';
import { recordingLog, startAedes, until, type TestBroker } from './test-support.js';
import { createMqttProfileTransport } from './transport.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

async function setup() {
  const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 7), manual: true });
  let broker: TestBroker = await startAedes();
  const port = broker.port;
  cleanups.push(() => broker.close());
  const heater = new WaterHeater({ clock, initialC: 45 });
  const plug = new ShellyPlug({ clock, load: heater, prefix: 'shellyplusplugs-e2e01' });
  await plug.start(broker.url);
  cleanups.push(() => plug.stop());
  const log = recordingLog();
  const profile = loadProfile('shelly-plus-plug-s');
  const transport = createMqttProfileTransport({ section: profile.mqtt!, topic: plug.prefix, url: broker.url, clock, log, reconnectPeriodMs: 100 });
  await transport.start();
  cleanups.push(() => transport.stop());
  const device = createProfileDevice({ id: 'water-heater', profile, transport, settings: { load: { ratedPowerW: 2000, minOnMs: 0, minOffMs: 0 } }, clock, log });
  if (!isLoad(device)) throw new Error('the Shelly profile must make a Load');
  const load: Load = device;
  return {
    clock,
    heater,
    plug,
    load,
    log,
    restartBroker: async () => {
      await broker.close();
      broker = await startAedes(port);
    },
  };
}

const readLoad = (load: Load) => until('a reading', () => load.read().catch(() => undefined));

describe('Shelly Plus Plug S simulator through shelly-plus-plug-s.yaml', () => {
  it('reads the plug as a Load: every field from the status the plug sends', async () => {
    const { load, plug } = await setup();
    const reading = await readLoad(load);
    const status = plug.status() as { output: boolean; apower: number; aenergy: { total: number }; temperature: { tC: number } };
    expect(reading).toEqual({ on: status.output, powerW: status.apower, energyWh: status.aenergy.total, temperatureC: status.temperature.tC });
    expect(load.revert).toEqual({ kind: 'none' });
    expect(load.describe()).toMatch(/\(profile shelly-plus-plug-s\) on mqtt shellyplusplugs-e2e01 on mqtt:\/\/127\.0\.0\.1:\d+$/);
  });

  it('switches the load off with a command the plug confirms, and restores it', async () => {
    const { load, heater, plug } = await setup();
    await readLoad(load);
    await load.setOn(false);
    expect(plug.commands).toContain('off');
    expect(heater.supplyOn).toBe(false);
    expect(await load.read()).toMatchObject({ on: false, powerW: 0 });
    await load.restore();
    expect(plug.commands.at(-1)).toBe('on');
    expect(heater.supplyOn).toBe(true);
    expect((await load.read()).on).toBe(true);
  });

  it('a plug that stops publishing goes stale on the clock, although it is asked for its state every 30 s', async () => {
    const { load, plug, clock } = await setup();
    await readLoad(load);
    plug.setFault({ kind: 'stale' });
    clock.advance(89_000);
    expect((await load.read()).on).toBe(true);
    clock.advance(2_000);
    await expect(load.read()).rejects.toBeInstanceOf(StaleDataError);
    await expect(load.read()).rejects.toThrow(/stale: no message on shellyplusplugs-e2e01\/status\/switch:0 for more than 90 s/);
    // Asked on connect and at 30, 60 and 90 s.
    await until('the refreshes at the plug', () => (plug.commands.filter((c) => c === 'status_update').length >= 4 ? true : undefined));
    plug.setFault({ kind: 'none' });
    clock.advance(30_000); // the next refresh: the plug answers
    await readLoad(load);
  });

  it('malformed JSON and a missing field: values unknown, logged once per cause over 400 statuses', async () => {
    const { load, plug, log } = await setup();
    await readLoad(load);
    plug.setFault({ kind: 'missing-field' });
    for (let i = 0; i < 200; i++) plug.publishStatus();
    const partial = await until('a reading without power', async () => {
      const r = await load.read().catch(() => undefined);
      return r && r.powerW === undefined ? r : undefined;
    });
    expect(partial.on).toBe(true);
    expect(partial.energyWh).toBeGreaterThan(0);
    plug.setFault({ kind: 'malformed-json' });
    for (let i = 0; i < 200; i++) plug.publishStatus();
    const err = await until('the read to fail', () => load.read().then(() => undefined, (e: unknown) => e as Error));
    expect(err).toBeInstanceOf(StaleDataError);
    expect(err.message).toMatch(/is not JSON/);
    await new Promise((r) => setTimeout(r, 100)); // let the rest of the 400 arrive
    const warned = log.entries.filter((e) => e.level === 'warn' && e.obj['source'] !== undefined).map((e) => `${String(e.obj['source'])} ${String(e.obj['cause'])}`);
    expect(warned.sort()).toEqual(['energy not-json', 'output not-json', 'power missing-field', 'power not-json', 'temperature not-json']);
    plug.setFault({ kind: 'none' });
    plug.publishStatus();
    expect((await until('usable values again', async () => {
      const r = await load.read().catch(() => undefined);
      return r?.powerW !== undefined ? r : undefined;
    })).on).toBe(true);
  });

  it('survives a broker restart: both reconnect, and a command is confirmed again', async () => {
    const { load, restartBroker, clock, heater } = await setup();
    await readLoad(load);
    await restartBroker();
    // Fresh values once both are back: the plug answers the refresh the transport sends on connecting
    // (or, when the plug came back last, the next periodic one).
    await until(
      'fresh values after the restart',
      async () => {
        const r = await load.read().catch(() => undefined);
        if (!r) clock.advance(10_000);
        return r;
      },
      15_000,
    );
    await load.setOn(false);
    expect(heater.supplyOn).toBe(false);
    expect((await load.read()).on).toBe(false);
  });
});
