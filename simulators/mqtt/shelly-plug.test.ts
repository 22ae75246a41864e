import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { WaterHeater } from '../devices/water-heater.js';
import { Ticker } from '../ticker.js';
import { ShellyPlug, type ShellySwitchStatus } from './shelly-plug.js';
import { Recorder, TestBroker, type Received } from './test-broker.js';

const PREFIX = 'shellyplusplugs-a8032ab12345';
const STATUS = `${PREFIX}/status/switch:0`;
const COMMAND = `${PREFIX}/command/switch:0`;
const ONLINE = `${PREFIX}/online`;
const isStatus = (m: Received) => m.topic === STATUS;
const json = (m: Received) => JSON.parse(m.payload) as ShellySwitchStatus;

describe('ShellyPlug (Gen2 MQTT) against a real aedes broker', () => {
  let broker: TestBroker;
  let clock: VirtualClock;
  let heater: WaterHeater;
  let plug: ShellyPlug;
  let ticker: Ticker;
  let recorder: Recorder;
  const cleanups: Array<() => Promise<void>> = [];

  beforeEach(async () => {
    broker = new TestBroker();
    await broker.start();
    clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 12), manual: true });
    heater = new WaterHeater({ clock, initialC: 50, draws: false });
    plug = new ShellyPlug({ clock, load: heater, prefix: PREFIX, reconnectPeriodMs: 100 });
    ticker = new Ticker(clock, 1000);
    ticker.add(heater);
    ticker.add(plug);
    ticker.start();
    recorder = await Recorder.connect(broker.url, [`${PREFIX}/#`]);
    await plug.start(broker.url);
  });

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
    ticker.stop();
    await plug.stop();
    await recorder.close();
    await broker.stop();
    expect(clock.pendingTimers).toBe(0); // nothing left running: ticker and status timer both gone
  });

  it('announces itself (retained), publishes its status JSON and answers every command with a new status', async () => {
    await recorder.next((m) => m.topic === ONLINE && m.payload === 'true');
    const first = json(await recorder.next(isStatus));
    expect(first).toMatchObject({ id: 0, output: true, apower: 2000, voltage: 229.8, current: 8.703, aenergy: { total: 18_400 } });
    expect(first.aenergy.by_minute).toHaveLength(3);
    expect(first.aenergy.minute_ts).toBe(Date.UTC(2026, 0, 14, 12) / 1000);
    expect(first.temperature.tC).toBeGreaterThan(0);
    // Someone who subscribes later sees the retained online flag.
    const late = await Recorder.connect(broker.url, [ONLINE]);
    cleanups.push(() => late.close());
    expect(await late.next(() => true)).toEqual({ topic: ONLINE, payload: 'true', retain: true });

    for (const [command, output] of [
      ['off', false],
      ['toggle', true],
      ['toggle', false],
      ['status_update', false],
      ['on', true],
    ] as const) {
      const from = recorder.messages.length;
      await recorder.publish(COMMAND, command);
      const status = json(await recorder.next(isStatus, from));
      expect(status.output).toBe(output);
      expect(status.apower).toBe(output ? 2000 : 0);
      expect(heater.supplyOn).toBe(output);
      expect(heater.powerW).toBe(output ? 2000 : 0);
    }
    const from = recorder.messages.length;
    await recorder.publish(COMMAND, 'explode');
    await new Promise((r) => setTimeout(r, 150));
    expect(recorder.messages.slice(from).filter(isStatus)).toEqual([]);
    expect(plug.commands).toEqual(['off', 'toggle', 'toggle', 'status_update', 'on', 'explode']);
  });

  it('publishes every 60 s of clock time and on a change of power; counts energy like the device', async () => {
    await recorder.next(isStatus);
    let from = recorder.messages.length;
    clock.advance(59_000);
    await new Promise((r) => setTimeout(r, 100));
    expect(recorder.messages.slice(from).filter(isStatus)).toEqual([]);
    clock.advance(1000);
    const periodic = json(await recorder.next(isStatus, from));
    // 60 s at 2 kW: 33.333 Wh, booked to the minute just finished (mWh).
    expect(periodic.aenergy.total).toBeCloseTo(18_400 + 2000 / 60, 2);
    expect(periodic.aenergy.by_minute[0]).toBeCloseTo(33_333.333, 0);
    expect(periodic.source).toBe('timer');

    // The thermostat opens at 60 °C: the plug reports the drop in power at once, not a minute later.
    heater.tankC = 59.999;
    from = recorder.messages.length;
    clock.advance(1000);
    const change = json(await recorder.next(isStatus, from));
    expect(change).toMatchObject({ output: true, apower: 0 });
    expect(heater.heating).toBe(false);
    // The plug's counter is the integral of the power it measured.
    expect(plug.energyWh - 18_400).toBeCloseTo(heater.energyWh, 6);
  });

  it('reconnects after a broker restart on the same port and announces itself again', async () => {
    await recorder.next(isStatus);
    const port = broker.port;
    const connectsBefore = plug.connects;
    await broker.stop();
    await waitUntil(() => !plug.connected);
    // Published while the broker is down: lost (nothing is queued to surface later as stale news).
    clock.advance(60_000);
    await broker.start(port);
    expect(broker.port).toBe(port);
    await waitUntil(() => plug.connects > connectsBefore, 5000);
    const from = recorder.messages.length;
    // The restarted broker has no retained messages: the plug has put its online flag back.
    const late = await Recorder.connect(broker.url, [ONLINE]);
    cleanups.push(() => late.close());
    expect(await late.next(() => true, 0, 5000)).toEqual({ topic: ONLINE, payload: 'true', retain: true });
    // ...and takes commands again (its subscription was renewed).
    await waitUntil(() => recorder.client.connected, 5000);
    await new Promise((r) => setTimeout(r, 100)); // the recorder's own resubscription
    await recorder.publish(COMMAND, 'off');
    expect(json(await recorder.next(isStatus, from, 5000)).output).toBe(false);
    expect(heater.supplyOn).toBe(false);
  });

  it('faults: stale, malformed-json, missing-field, none', async () => {
    await recorder.next(isStatus);
    plug.setFault({ kind: 'stale' });
    let from = recorder.messages.length;
    await recorder.publish(COMMAND, 'off');
    clock.advance(120_000);
    await new Promise((r) => setTimeout(r, 150));
    expect(recorder.messages.slice(from).filter(isStatus)).toEqual([]);
    expect(heater.supplyOn).toBe(false); // it still switches: only its reports are stuck

    plug.setFault({ kind: 'malformed-json' });
    from = recorder.messages.length;
    await recorder.publish(COMMAND, 'status_update');
    const bad = await recorder.next(isStatus, from);
    expect(() => JSON.parse(bad.payload)).toThrow();

    plug.setFault({ kind: 'missing-field' });
    from = recorder.messages.length;
    await recorder.publish(COMMAND, 'on');
    const partial = JSON.parse((await recorder.next(isStatus, from)).payload) as Record<string, unknown>;
    expect(partial).not.toHaveProperty('apower');
    expect(partial).toMatchObject({ id: 0, output: true });

    plug.setFault({ kind: 'none' });
    from = recorder.messages.length;
    clock.advance(60_000);
    expect(json(await recorder.next(isStatus, from))).toMatchObject({ output: true, apower: 2000 });
  });

  it('its last will says offline when it loses power; a clean stop says so too', async () => {
    await recorder.next((m) => m.topic === ONLINE && m.payload === 'true');
    let from = recorder.messages.length;
    await plug.powerLoss();
    expect(await recorder.next((m) => m.topic === ONLINE, from)).toMatchObject({ payload: 'false' });
    expect(plug.connected).toBe(false);
    // Powered again.
    from = recorder.messages.length;
    await plug.start(broker.url);
    await recorder.next((m) => m.topic === ONLINE && m.payload === 'true', from);
    from = recorder.messages.length;
    await plug.stop();
    expect(await recorder.next((m) => m.topic === ONLINE, from)).toMatchObject({ payload: 'false' });
  });

  it('start() rejects when no broker answers, and leaves nothing running', async () => {
    const other = new ShellyPlug({ clock, load: heater, prefix: 'shellyplusplugs-000000000000', connectTimeoutMs: 300 });
    await broker.stop();
    await expect(other.start(broker.url)).rejects.toThrow(/no connection/);
    expect(other.connected).toBe(false);
    await broker.start();
  });
});

async function waitUntil(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}
