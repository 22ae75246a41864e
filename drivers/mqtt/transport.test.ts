/**
 * The MQTT transport with the shipped Shelly profile, against the Shelly Plus Plug S simulator
 * (simulators/mqtt/shelly-plug.ts, written from the vendor's MQTT API) on a real aedes broker:
 * readings, confirmed commands, staleness on the injected clock, malformed and incomplete payloads
 * logged once per cause, a broker restart, and random payloads that must never crash anything.
 */
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import fc from 'fast-check';
import mqtt from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { isLoad, type Load } from '../classes.js';
import { DeviceError, StaleDataError } from '../errors.js';
import type { Log } from '../log.js';
import { createProfileDevice } from '../profiles/device.js';
import { loadProfile } from '../profiles/load.js';
import { VirtualClock } from '../../simulators/clock.js';
import { WaterHeater } from '../../simulators/devices/water-heater.js';
import { ShellyPlug } from '../../simulators/mqtt/shelly-plug.js';
import { createMqttProfileTransport, jsonPath } from './transport.js';

interface Broker {
  url: string;
  port: number;
  close(): Promise<void>;
}

async function startBroker(port = 0): Promise<Broker> {
  const aedes = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', () => resolve()));
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `mqtt://127.0.0.1:${bound}`,
    port: bound,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    },
  };
}

function recordingLog(): Log & { warnings: Array<{ obj: object; msg?: string }> } {
  const warnings: Array<{ obj: object; msg?: string }> = [];
  const log: Log & { warnings: typeof warnings } = {
    warnings,
    debug: () => {},
    info: () => {},
    warn: (obj, msg) => warnings.push({ obj, ...(msg !== undefined ? { msg } : {}) }),
    error: () => {},
    child: () => log,
  };
  return log;
}

async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('MQTT devices: Shelly Plus Plug S through its profile', () => {
  const cleanups: Array<() => Promise<void>> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  async function setup(options: { port?: number } = {}) {
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 7), manual: true });
    let broker = await startBroker(options.port);
    cleanups.push(() => broker.close());
    const heater = new WaterHeater({ clock, initialC: 50 });
    const plug = new ShellyPlug({ clock, load: heater, prefix: 'shellyplusplugs-test01' });
    await plug.start(broker.url);
    cleanups.push(() => plug.stop());
    const log = recordingLog();
    const profile = loadProfile('shelly-plus-plug-s');
    const transport = createMqttProfileTransport({ section: profile.mqtt!, topic: plug.prefix, url: broker.url, clock, log });
    await transport.start();
    cleanups.push(() => transport.stop());
    const device = createProfileDevice({ id: 'water-heater', profile, transport, settings: { load: { ratedPowerW: 2000, minOnMs: 0, minOffMs: 0 } }, clock, log });
    if (!isLoad(device)) throw new Error('expected a load');
    const load: Load = device;
    const restartBroker = async () => {
      const port = broker.port;
      await broker.close();
      broker = await startBroker(port);
    };
    return { clock, plug, heater, load, log, transport, brokerUrl: () => broker.url, restartBroker };
  }

  it('reads the plug, switches it with a confirmed command, and restores it', async () => {
    const { load, heater, plug } = await setup();
    const reading = await until('a reading', () => load.read().catch(() => undefined));
    expect(reading).toMatchObject({ on: true, powerW: 2000, temperatureC: 38.4 });
    expect(reading.energyWh).toBeCloseTo(plug.energyWh, 2);
    await load.setOn(false);
    expect(heater.supplyOn).toBe(false);
    expect(plug.commands).toContain('off');
    expect(await load.read()).toMatchObject({ on: false, powerW: 0 });
    await load.restore();
    expect(heater.supplyOn).toBe(true);
    expect(load.revert).toEqual({ kind: 'none' });
  });

  it('values go stale when the device stops publishing; the read fails and says why', async () => {
    const { load, plug, clock } = await setup();
    await until('a reading', () => load.read().catch(() => undefined));
    plug.setFault({ kind: 'stale' });
    clock.advance(91_000);
    await expect(load.read()).rejects.toBeInstanceOf(StaleDataError);
    await expect(load.read()).rejects.toThrow(/stale: no message for 91 s/);
    plug.setFault({ kind: 'none' });
    plug.publishStatus();
    await until('fresh values', () => load.read().catch(() => undefined));
  });

  it('malformed JSON and a missing field make values unknown, logged once per cause however many messages', async () => {
    const { load, plug, log } = await setup();
    await until('a reading', () => load.read().catch(() => undefined));
    plug.setFault({ kind: 'missing-field' });
    for (let i = 0; i < 200; i++) plug.publishStatus();
    const partial = await until('a reading without power', async () => {
      const r = await load.read().catch(() => undefined);
      return r && r.powerW === undefined ? r : undefined;
    });
    expect(partial.on).toBe(true);
    plug.setFault({ kind: 'malformed-json' });
    for (let i = 0; i < 200; i++) plug.publishStatus();
    await until('the read to fail', async () => ((await load.read().then(() => false, () => true)) ? true : undefined));
    await expect(load.read()).rejects.toThrow(/not JSON/);
    const bySourceAndCause = new Map<string, number>();
    for (const w of log.warnings) {
      const obj = w.obj as { source?: string; problem?: string };
      if (!obj.source) continue;
      const key = `${obj.source} ${obj.problem}`;
      bySourceAndCause.set(key, (bySourceAndCause.get(key) ?? 0) + 1);
    }
    expect(bySourceAndCause.get('power no field "apower" in the payload on shellyplusplugs-test01/status/switch:0')).toBe(1);
    expect(bySourceAndCause.get('output payload on shellyplusplugs-test01/status/switch:0 is not JSON')).toBe(1);
    // 400 bad messages, a handful of log lines: one per source and cause.
    expect(log.warnings.length).toBeLessThanOrEqual(6);
    plug.setFault({ kind: 'none' });
    plug.publishStatus();
    await until('usable values again', () => load.read().catch(() => undefined));
  });

  it('the device saying it is offline makes it offline', async () => {
    const { load, plug, brokerUrl } = await setup();
    await until('a reading', () => load.read().catch(() => undefined));
    const other = await mqtt.connectAsync(brokerUrl());
    await other.publishAsync(`${plug.prefix}/online`, 'false', { qos: 1, retain: true });
    await until('offline', async () => ((await load.read().then(() => false, (e: unknown) => e instanceof StaleDataError)) ? true : undefined));
    await other.endAsync();
  });

  it('survives a broker restart: reconnects, subscribes again, reads fresh values', async () => {
    const { load, plug, restartBroker } = await setup();
    await until('a reading', () => load.read().catch(() => undefined));
    await restartBroker();
    // The plug reconnects and announces itself; the transport reconnects and resubscribes: a command
    // is confirmed only when both are back (the confirmation is the plug's new status).
    await until('a command to work again', async () => {
      try {
        await load.setOn(false);
        return true;
      } catch {
        return undefined;
      }
    }, 15_000);
    expect((await load.read()).on).toBe(false);
  });

  it('random payloads never crash the transport and never produce a made-up value', async () => {
    const { load, plug, brokerUrl } = await setup();
    await until('a reading', () => load.read().catch(() => undefined));
    const publisher = await mqtt.connectAsync(brokerUrl());
    plug.setFault({ kind: 'stale' });
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(fc.uint8Array({ maxLength: 64 }).map((b) => Buffer.from(b)), fc.json().map((j) => Buffer.from(j)), fc.jsonValue().map((v) => Buffer.from(JSON.stringify({ output: v, apower: v, aenergy: { total: v } })))),
        async (payload) => {
          await publisher.publishAsync(plug.stateTopic, payload, { qos: 1 });
          await new Promise((r) => setTimeout(r, 2));
          try {
            const r = await load.read();
            expect(typeof r.on).toBe('boolean');
            if (r.powerW !== undefined) expect(Number.isFinite(r.powerW)).toBe(true);
          } catch (err) {
            expect(err).toBeInstanceOf(DeviceError);
          }
        },
      ),
      { numRuns: 150 },
    );
    await publisher.endAsync();
  });

  it('json paths', () => {
    expect(jsonPath({ a: { b: [1, { c: 2 }] } }, 'a.b[1].c')).toBe(2);
    expect(jsonPath({ a: 1 }, 'a.b')).toBeUndefined();
    expect(jsonPath([1], 'a')).toBeUndefined();
    expect(jsonPath(5, '')).toBe(5);
  });
});
