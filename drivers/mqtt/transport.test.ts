/**
 * The MQTT profile transport on a real aedes broker, against a device played by an MQTT client of the
 * test (it publishes status JSON, plain values and its availability, and answers commands like a Gen2
 * Shelly). Time is a manual clock: staleness and timeouts move only when a test advances it.
 */
import fc from 'fast-check';
import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { DisconnectedError, NotSupportedError, StaleDataError, TimeoutError } from '../errors.js';
import type { ProfileTransport, SourceSnapshot } from '../profiles/transport.js';
import { mqttSectionSchema, type MqttSection } from './profile-schema.js';
import { ManualClock, recordingLog, settled, startAedes, until, type TestBroker } from './test-support.js';
import { createMqttProfileTransport } from './transport.js';

const BASE = 'shellyplusplugs-a8032ab1';
const STATUS = `${BASE}/status/switch:0`;
const COMMAND = `${BASE}/command/switch:0`;

const section: MqttSection = mqttSectionSchema.parse({
  staleAfterMs: 60_000,
  availability: { topic: '{topic}/online', online: 'true', offline: 'false' },
  sources: {
    output: { topic: '{topic}/status/switch:0', path: 'output', type: 'boolean' },
    power: { topic: '{topic}/status/switch:0', path: 'apower', type: 'number' },
    energy: { topic: '{topic}/status/switch:0', path: 'aenergy.total', type: 'number' },
    firstMinute: { topic: '{topic}/status/switch:0', path: 'aenergy.by_minute[0]', type: 'number' },
    temperature: { topic: '{topic}/temperature', type: 'number' },
    mode: { topic: '{topic}/mode', path: '', type: 'string' },
  },
  actions: {
    switch: { topic: '{topic}/command/switch:0', payload: '{value}', confirm: { source: 'output', values: { on: true, off: false }, timeoutMs: 5000 } },
    setMode: { topic: '{topic}/command/mode', payload: '{"mode":"{value}"}' },
  },
  refresh: { topic: '{topic}/command/switch:0', payload: 'status_update', everyMs: 30_000 },
});

const STATUS_SOURCES = ['output', 'power', 'energy', 'firstMinute'];

/** A Gen2-like device: publishes its status, answers on/off/status_update with its new status when `answering`. */
class TestDevice {
  readonly commands: Array<{ topic: string; payload: string; qos: number }> = [];
  answering = true;
  output = true;
  constructor(readonly client: MqttClient) {
    client.on('message', (topic, payload, packet) => {
      const text = payload.toString();
      this.commands.push({ topic, payload: text, qos: packet.qos });
      if (topic !== COMMAND || !this.answering) return;
      if (text === 'on' || text === 'off') this.output = text === 'on';
      if (text === 'on' || text === 'off' || text === 'status_update') void this.publishStatus();
    });
    client.on('connect', () => void client.subscribeAsync(`${BASE}/command/#`, { qos: 1 }).catch(() => undefined));
  }

  static async connect(url: string): Promise<TestDevice> {
    const client = await mqtt.connectAsync(url, { reconnectPeriod: 100, clientId: `test-device-${Math.random().toString(16).slice(2)}` });
    const device = new TestDevice(client);
    await client.subscribeAsync(`${BASE}/command/#`, { qos: 1 });
    return device;
  }

  status(overrides: Record<string, unknown> = {}): Record<string, unknown> {
    return {
      id: 0,
      source: 'MQTT',
      output: this.output,
      apower: this.output ? 1998.3 : 0,
      voltage: 229.8,
      aenergy: { total: 123456.789, by_minute: [33.1, 33.3, 33.2], minute_ts: 1700000000 },
      temperature: { tC: 41.2, tF: 106.2 },
      ...overrides,
    };
  }

  publishStatus(overrides: Record<string, unknown> = {}): Promise<void> {
    return this.publish(STATUS, JSON.stringify(this.status(overrides)));
  }

  async publish(topic: string, payload: string | Buffer, retain = false): Promise<void> {
    await this.client.publishAsync(topic, payload, { qos: 1, retain });
  }

  close(): Promise<void> {
    return this.client.endAsync(true);
  }
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

interface Setup {
  clock: ManualClock;
  log: ReturnType<typeof recordingLog>;
  device: TestDevice;
  transport: ProfileTransport;
  broker: () => TestBroker;
  restartBroker(options?: Parameters<typeof startAedes>[1]): Promise<void>;
  stopBroker(): Promise<void>;
}

async function setup(options: { brokerOptions?: Parameters<typeof startAedes>[1]; reconnectPeriodMs?: number } = {}): Promise<Setup> {
  let broker: TestBroker | undefined = await startAedes(0, options.brokerOptions);
  const port = broker.port;
  cleanups.push(async () => broker?.close());
  const clock = new ManualClock();
  const log = recordingLog();
  const device = await TestDevice.connect(broker.url);
  cleanups.push(() => device.close());
  const transport = createMqttProfileTransport({ section, topic: BASE, url: broker.url, clock, log, reconnectPeriodMs: options.reconnectPeriodMs ?? 100 });
  cleanups.push(() => transport.stop());
  await transport.start();
  return {
    clock,
    log,
    device,
    transport,
    broker: () => broker!,
    stopBroker: async () => {
      await broker?.close();
      broker = undefined;
    },
    restartBroker: async (brokerOptions) => {
      await broker?.close();
      broker = await startAedes(port, brokerOptions);
    },
  };
}

/** Waits until a read resolves and `accept` likes it. */
function readUntil(transport: ProfileTransport, what: string, accept: (s: SourceSnapshot) => boolean = () => true, timeoutMs = 5000): Promise<SourceSnapshot> {
  return until(what, () => transport.read().then((s) => (accept(s) ? s : undefined), () => undefined), timeoutMs);
}

/** Waits until a read rejects with an error of `type` whose message matches `pattern`. */
function failureUntil(transport: ProfileTransport, what: string, type: abstract new (...args: never[]) => Error, pattern: RegExp = /./, timeoutMs = 5000): Promise<Error> {
  return until(what, () => transport.read().then(() => undefined, (e: unknown) => (e instanceof type && pattern.test(e.message) ? e : undefined)), timeoutMs);
}

/** Publishes `marker` on the plain `mode` topic and waits until the transport has it: every message published before has been handled. */
async function sync(s: Setup, marker: string): Promise<void> {
  await s.device.publish(`${BASE}/mode`, marker);
  await readUntil(s.transport, `mode ${marker}`, (snap) => snap.values['mode'] === marker);
}

const warnings = (log: ReturnType<typeof recordingLog>) => log.entries.filter((e) => e.level === 'warn' && e.obj['source'] !== undefined);

describe('reading an MQTT device', () => {
  it('reads JSON fields by path and plain-text payloads; an unknown source comes with its problem', async () => {
    const s = await setup();
    await expect(s.transport.read()).rejects.toThrow(StaleDataError);
    await expect(s.transport.read()).rejects.toThrow(/no message on shellyplusplugs-a8032ab1\/status\/switch:0 yet/);
    // The transport asked for a fresh state when it connected.
    await until('status_update on connect', () => s.device.commands.find((c) => c.topic === COMMAND && c.payload === 'status_update'));
    const snap = await readUntil(s.transport, 'the status');
    expect(snap.values).toEqual({ output: true, power: 1998.3, energy: 123456.789, firstMinute: 33.1 });
    expect(snap.problems).toEqual({ temperature: `no message on ${BASE}/temperature yet`, mode: `no message on ${BASE}/mode yet` });

    await s.device.publish(`${BASE}/temperature`, '41.2');
    await s.device.publish(`${BASE}/mode`, 'eco');
    expect((await readUntil(s.transport, 'plain values', (x) => x.values['mode'] === 'eco')).values).toMatchObject({ temperature: 41.2, mode: 'eco', power: 1998.3 });

    await s.device.publish(`${BASE}/temperature`, 'warm');
    await s.device.publishStatus({ aenergy: { total: 5, by_minute: [] } });
    await sync(s, 'after-bad');
    const partial = await s.transport.read();
    expect(partial.values).toEqual({ output: true, power: 1998.3, energy: 5, mode: 'after-bad' });
    expect(partial.problems).toEqual({ temperature: `the payload on ${BASE}/temperature is not a number`, firstMinute: `no field "aenergy.by_minute[0]" in the payload on ${STATUS}` });
    expect(s.transport.describe()).toBe(`mqtt ${BASE} on ${s.broker().url}`);
    const withCredentials = createMqttProfileTransport({ section, topic: BASE, url: 'mqtt://flex:s3cret@127.0.0.1:1883', clock: s.clock, log: s.log });
    expect(withCredentials.describe()).toBe(`mqtt ${BASE} on mqtt://127.0.0.1:1883`);
  });

  it('values go stale on the injected clock; with nothing fresh the read fails, with the same reason on every poll', async () => {
    const s = await setup();
    s.device.answering = false;
    await s.device.publishStatus();
    await s.device.publish(`${BASE}/mode`, 'eco');
    await readUntil(s.transport, 'the status', (x) => x.values['mode'] === 'eco' && x.values['power'] !== undefined);
    s.clock.advance(30_000);
    await s.device.publish(`${BASE}/mode`, 'boost');
    await readUntil(s.transport, 'mode boost', (x) => x.values['mode'] === 'boost');
    s.clock.advance(30_000); // status exactly staleAfterMs old: still usable
    expect(Object.keys((await s.transport.read()).values).sort()).toEqual(['energy', 'firstMinute', 'mode', 'output', 'power']);
    s.clock.advance(1);
    const half = await s.transport.read();
    expect(half.values).toEqual({ mode: 'boost' });
    expect(half.problems['power']).toBe(`stale: no message on ${STATUS} for more than 60 s (last at 2026-01-14T07:00:00.000Z)`);
    s.clock.advance(30_000);
    const first = await s.transport.read().then(() => undefined, (e: unknown) => e);
    expect(first).toBeInstanceOf(StaleDataError);
    s.clock.advance(5_000);
    const second = await s.transport.read().then(() => undefined, (e: unknown) => e);
    // The agent logs a device's offline reason when it changes: it must not change with every poll.
    expect((second as Error).message).toBe((first as Error).message);
    expect((first as Error).message).toContain('stale: no message on');
    for (let i = 0; i < 50; i++) {
      s.clock.advance(1000);
      await s.transport.read().catch(() => undefined);
    }
    // Staleness is logged once per source, not once per read.
    const stale = warnings(s.log).filter((w) => w.obj['cause'] === 'stale');
    expect(stale.map((w) => w.obj['source']).sort()).toEqual(['energy', 'firstMinute', 'mode', 'output', 'power']);

    await s.device.publishStatus();
    expect((await readUntil(s.transport, 'fresh status')).values['power']).toBe(1998.3);
  });

  it('a device that says it is offline (its last will) is offline, and back when it says online', async () => {
    const s = await setup();
    await s.device.publish(`${BASE}/online`, 'true', true);
    await readUntil(s.transport, 'the status');
    await s.device.publish(`${BASE}/online`, 'false', true);
    const err = await failureUntil(s.transport, 'offline', DisconnectedError, /says it is offline/);
    expect(err.message).toBe(`mqtt ${BASE} on ${s.broker().url}: the device says it is offline (${BASE}/online = false)`);
    await s.device.publish(`${BASE}/online`, 'rebooting'); // neither online nor offline: ignored
    await s.device.publish(`${BASE}/online`, 'true', true);
    await readUntil(s.transport, 'online again');

    // A real last will: the device's connection dies without a goodbye.
    const broker = s.broker();
    const lw = await mqtt.connectAsync(broker.url, { will: { topic: `${BASE}/online`, payload: Buffer.from('false'), qos: 1, retain: true }, reconnectPeriod: 0 });
    await lw.publishAsync(`${BASE}/online`, 'true', { qos: 1, retain: true });
    (lw.stream as unknown as { destroy(): void }).destroy();
    await failureUntil(s.transport, 'offline by last will', DisconnectedError, /says it is offline/);
    await lw.endAsync(true);
  });

  it('malformed JSON and missing fields make values unknown, logged once per source and cause over hundreds of messages', async () => {
    const s = await setup();
    s.device.answering = false;
    await s.device.publishStatus();
    await readUntil(s.transport, 'the status');
    for (let i = 0; i < 200; i++) await s.device.publish(STATUS, `{"output":true,"apower":${i},"aenergy":{"total":`);
    await sync(s, 'after-malformed');
    const malformed = await s.transport.read();
    expect(malformed.values).toEqual({ mode: 'after-malformed' });
    expect(malformed.problems['output']).toBe(`the payload on ${STATUS} is not JSON`);
    for (let i = 0; i < 200; i++) await s.device.publishStatus({ apower: undefined });
    await sync(s, 'after-missing');
    const missing = await s.transport.read();
    expect(missing.values).toMatchObject({ output: true, energy: 123456.789 });
    expect(missing.problems).toEqual({ power: `no field "apower" in the payload on ${STATUS}`, temperature: `no message on ${BASE}/temperature yet` });
    // A source flapping between good and bad within one episode adds no lines either.
    for (let i = 0; i < 50; i++) {
      await s.device.publishStatus();
      await s.device.publish(STATUS, 'not json');
    }
    await sync(s, 'after-flapping');

    const counts = new Map<string, number>();
    for (const w of warnings(s.log)) counts.set(`${String(w.obj['source'])} ${String(w.obj['cause'])}`, (counts.get(`${String(w.obj['source'])} ${String(w.obj['cause'])}`) ?? 0) + 1);
    expect(Object.fromEntries(counts)).toEqual({
      'output not-json': 1,
      'power not-json': 1,
      'energy not-json': 1,
      'firstMinute not-json': 1,
      'power missing-field': 1,
    });
    const recovered = s.log.entries.filter((e) => e.msg === 'device value usable again');
    expect(recovered.map((e) => e.obj['source']).sort()).toEqual(['energy', 'firstMinute', 'output', 'power']);
    expect(recovered.find((e) => e.obj['source'] === 'power')!.obj['badMessages']).toBe(400);
    expect(s.log.entries.filter((e) => e.level === 'error')).toEqual([]);

    // Usable for a whole staleAfterMs ends the episode: the same cause later is news again.
    await s.device.publishStatus();
    await sync(s, 'good');
    s.clock.advance(section.staleAfterMs);
    await s.device.publishStatus();
    await sync(s, 'good-later');
    await s.device.publish(STATUS, '{');
    await sync(s, 'bad-again');
    expect(warnings(s.log).filter((w) => w.obj['source'] === 'output' && w.obj['cause'] === 'not-json')).toHaveLength(2);
  });

  it('random payloads on every topic never crash it, and every value it gives has the declared type', async () => {
    const s = await setup();
    s.device.answering = false;
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 96 }).map((b) => Buffer.from(b)),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v))),
      fc.jsonValue().map((v) => Buffer.from(JSON.stringify({ output: v, apower: v, aenergy: { total: v, by_minute: [v] } }))),
      fc.constantFrom('true', 'false', 'NaN', '1e999', '-0', '').map((t) => Buffer.from(t)),
    );
    const topic = fc.constantFrom(STATUS, `${BASE}/temperature`, `${BASE}/online`);
    let run = 0;
    await fc.assert(
      fc.asyncProperty(topic, payload, async (t, p) => {
        run++;
        await s.device.publish(t, p);
        await s.device.publish(`${BASE}/online`, 'true');
        await sync(s, `run-${run}`);
        const snap = await s.transport.read();
        for (const [name, value] of Object.entries(snap.values)) {
          const declared = section.sources[name]!.type;
          expect(typeof value).toBe(declared);
          if (typeof value === 'number') expect(Number.isFinite(value)).toBe(true);
          expect(snap.problems[name]).toBeUndefined();
        }
        for (const name of Object.keys(section.sources)) expect(name in snap.values || snap.problems[name] !== undefined).toBe(true);
      }),
      { numRuns: 120 },
    );
    expect(s.log.entries.filter((e) => e.level === 'error')).toEqual([]);
    // Still reading normally afterwards.
    await s.device.publishStatus();
    expect((await readUntil(s.transport, 'a normal status', (x) => x.values['power'] === 1998.3)).values['output']).toBe(true);
  });
});

describe('commanding an MQTT device', () => {
  it('publishes the rendered payload at QoS 1 and resolves when the device shows the new state', async () => {
    const s = await setup();
    await readUntil(s.transport, 'the status');
    await s.transport.act('switch', 'off');
    expect(s.device.commands.at(-1)).toEqual({ topic: COMMAND, payload: 'off', qos: 1 });
    expect((await s.transport.read()).values).toMatchObject({ output: false, power: 0 });
    await s.transport.act('switch', 'on');
    expect((await s.transport.read()).values['output']).toBe(true);
    // Without confirm, the broker's PUBACK confirms it.
    await s.transport.act('setMode', 'eco');
    await until('the mode command', () => s.device.commands.find((c) => c.topic === `${BASE}/command/mode`));
    expect(s.device.commands.find((c) => c.topic === `${BASE}/command/mode`)).toEqual({ topic: `${BASE}/command/mode`, payload: '{"mode":"eco"}', qos: 1 });
    await expect(s.transport.act('reboot', 1)).rejects.toBeInstanceOf(NotSupportedError);
    expect(s.clock.pendingTimers).toBe(1); // only the refresh timer
  });

  it('times out when the device does not show the value; a state from before the command is no confirmation', async () => {
    const s = await setup();
    s.device.answering = false;
    s.device.output = false;
    await s.device.publishStatus();
    await readUntil(s.transport, 'the status (already off)', (x) => x.values['output'] === false);
    const pending = s.transport.act('switch', 'off');
    const state = settled(pending);
    await until('the command at the device', () => s.device.commands.find((c) => c.payload === 'off'));
    await new Promise((r) => setTimeout(r, 50));
    expect(state.state).toBe('pending');
    // A status that shows the other value does not confirm it either.
    await s.device.publishStatus({ output: true });
    await sync(s, 'other-value');
    s.clock.advance(4999);
    await new Promise((r) => setTimeout(r, 20));
    expect(state.state).toBe('pending');
    s.clock.advance(1);
    await expect(pending).rejects.toBeInstanceOf(TimeoutError);
    await expect(pending).rejects.toThrow(`mqtt ${BASE} on ${s.broker().url}: switch (off on ${COMMAND}): the device did not show output = false within 5000 ms`);
    expect((state.error as TimeoutError).timeoutMs).toBe(5000);
    expect(s.clock.pendingTimers).toBe(1);
  });

  it('a command the broker never acknowledged is withdrawn: not re-sent after a reconnect', async () => {
    // A broker that takes the device's messages but holds back every command (no PUBACK). The
    // transport reconnects more slowly than the device, so the device would see a re-sent command.
    const s = await setup({ reconnectPeriodMs: 1000, brokerOptions: { authorizePublish: (_client, packet, callback) => (packet.topic.startsWith(`${BASE}/command/`) ? undefined : callback(null)) } });
    await s.device.publishStatus();
    await readUntil(s.transport, 'the status');
    const pending = s.transport.act('switch', 'off');
    await new Promise((r) => setTimeout(r, 100));
    s.clock.advance(5000);
    await expect(pending).rejects.toThrow(/the broker did not acknowledge the command within 5000 ms/);
    await s.restartBroker();
    await s.device.publishStatus();
    await readUntil(s.transport, 'reconnected', () => true, 10_000);
    await until('the device reconnected', () => (s.device.client.connected ? true : undefined));
    await s.transport.act('switch', 'on');
    expect(s.device.commands.filter((c) => c.payload === 'off')).toEqual([]);
  });
});

describe('connection', () => {
  it('survives a broker restart: unknown while down, stale until fresh messages, then reads and commands again', async () => {
    const s = await setup();
    await readUntil(s.transport, 'the status');
    await s.stopBroker();
    const down = await failureUntil(s.transport, 'disconnected', DisconnectedError);
    expect(down.message).toMatch(/not connected to the broker/);
    await expect(s.transport.act('switch', 'off')).rejects.toThrow(/not connected to the broker; switch not sent/);
    s.device.answering = false;
    await s.restartBroker();
    // Reconnected and subscribed: what was known before is not known to be current.
    const stale = await failureUntil(s.transport, 'reconnected, waiting for fresh values', StaleDataError, /since reconnecting/, 10_000);
    expect(stale.message).toContain(`no message on ${STATUS} since reconnecting`);
    await until('the device reconnected', () => (s.device.client.connected ? true : undefined), 10_000);
    s.device.answering = true;
    await s.device.publishStatus();
    await readUntil(s.transport, 'fresh values');
    await s.transport.act('switch', 'off');
    expect((await s.transport.read()).values['output']).toBe(false);
    const lost = s.log.entries.filter((e) => e.msg === 'mqtt connection lost; reconnecting');
    expect(lost).toHaveLength(1);
    expect(s.log.entries.filter((e) => e.msg === 'mqtt reconnected; subscribed again')).toHaveLength(1);
  });

  it('starts while the broker is unreachable, says why, logs it once, and connects when it appears', async () => {
    const probe = await startAedes();
    const port = probe.port;
    await probe.close();
    const clock = new ManualClock();
    const log = recordingLog();
    const transport = createMqttProfileTransport({ section, topic: BASE, url: `mqtt://127.0.0.1:${port}`, clock, log, reconnectPeriodMs: 50 });
    cleanups.push(() => transport.stop());
    await transport.start(); // resolves at the first failure: the agent's start never waits for a broker
    const err = await failureUntil(transport, 'refused', DisconnectedError, /ECONNREFUSED/);
    expect(err.message).toBe(`mqtt ${BASE} on mqtt://127.0.0.1:${port}: not connected to the broker (connect ECONNREFUSED 127.0.0.1:${port})`);
    await new Promise((r) => setTimeout(r, 500)); // ~10 more attempts
    expect(log.entries.filter((e) => e.level === 'warn' && String(e.obj['err']).includes('ECONNREFUSED'))).toHaveLength(1);
    const broker = await startAedes(port);
    cleanups.push(() => broker.close());
    const device = await TestDevice.connect(broker.url);
    cleanups.push(() => device.close());
    await failureUntil(transport, 'connected', StaleDataError, /yet/);
    await device.publishStatus();
    await readUntil(transport, 'the status');
  });

  it('asks for a fresh state every refresh period of the injected clock, which keeps the values fresh', async () => {
    const s = await setup();
    await readUntil(s.transport, 'the status');
    const refreshes = () => s.device.commands.filter((c) => c.payload === 'status_update').length;
    expect(refreshes()).toBe(1);
    for (let i = 1; i <= 4; i++) {
      s.clock.advance(30_000);
      await until(`refresh ${i}`, () => (refreshes() === i + 1 ? true : undefined));
      await sync(s, `refresh-${i}`);
    }
    // 120 s after the first status: fresh, because the device answered every refresh.
    expect((await s.transport.read()).values['power']).toBe(1998.3);
  });

  it('stop() ends the connection, fails a waiting command, and leaves no timer behind; an abort signal stops it too', async () => {
    const handles = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'TCPSocketWrap').length;
    const broker = await startAedes();
    cleanups.push(() => broker.close());
    const device = await TestDevice.connect(broker.url);
    cleanups.push(() => device.close());
    device.answering = false;
    const withInfra = handles();
    const clock = new ManualClock();
    const log = recordingLog();
    const controller = new AbortController();
    const transport = createMqttProfileTransport({ section, topic: BASE, url: broker.url, clock, log });
    await transport.start(controller.signal);
    await device.publishStatus();
    await readUntil(transport, 'the status');
    expect(broker.connectedClients!()).toBe(2);
    expect(handles()).toBeGreaterThan(withInfra);
    const pending = transport.act('switch', 'off');
    const outcome = settled(pending);
    await until('the command at the device', () => device.commands.find((c) => c.payload === 'off'));
    expect(clock.pendingTimers).toBe(2); // refresh + command timeout
    await transport.stop();
    await until('the command settled', () => (outcome.state !== 'pending' ? true : undefined));
    expect(String(outcome.error)).toMatch(/the transport stopped/);
    expect(clock.pendingTimers).toBe(0);
    await expect(transport.read()).rejects.toBeInstanceOf(DisconnectedError);
    // Its connection is gone (the broker sees only the device), and so are mqtt.js's real timers.
    await until('the transport disconnected', () => (broker.connectedClients!() === 1 ? true : undefined));
    await until('no socket or timer of the transport left', () => (handles() <= withInfra ? true : undefined));
    clock.advance(120_000);
    expect(device.commands.filter((c) => c.payload === 'status_update')).toHaveLength(1);

    // Started again, then stopped by its signal.
    await transport.start(controller.signal);
    await failureUntil(transport, 'connected again', StaleDataError, /since reconnecting/);
    controller.abort();
    await failureUntil(transport, 'stopped by the signal', DisconnectedError);
    expect(clock.pendingTimers).toBe(0);
    await until('disconnected again', () => (broker.connectedClients!() === 1 ? true : undefined));
    await until('no socket or timer left again', () => (handles() <= withInfra ? true : undefined));
    await transport.start(controller.signal); // an aborted signal: does not start
    await expect(transport.read()).rejects.toBeInstanceOf(DisconnectedError);
    expect(log.entries.filter((e) => e.level === 'error')).toEqual([]);
  });
});
