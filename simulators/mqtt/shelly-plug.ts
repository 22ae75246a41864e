/**
 * A Shelly Plus Plug S (Gen2) switching a load, speaking the vendor's MQTT API
 * (/work/notes/vendor-layouts.md §6) as an MQTT client of the broker it is given:
 * - `<prefix>/online`: `true` (retained) when connected; `false` (retained) is its last will, and is
 *   also published on a clean stop();
 * - `<prefix>/status/switch:0`: the switch status JSON (`id`, `source`, `output`, `apower` W,
 *   `voltage`, `current`, `aenergy` {`total` Wh, `by_minute` mWh of the last 3 whole minutes,
 *   `minute_ts`}, `temperature`), published on connect, on every change (relay, or power by
 *   ≥ 10 W and 5 %) and every `statusIntervalMs` of clock time (default 60 s);
 * - `<prefix>/command/switch:0`: `on`, `off`, `toggle`, `status_update` (plain text), answered by
 *   publishing the new status.
 * The periodic status is sent from step() (the plug is stepped by the home's ticker, which also
 * integrates its energy counter). It reconnects by itself (every `reconnectPeriodMs` real ms) and
 * announces itself again after a broker restart. MQTT faults, settable at runtime: `stale` (publishes nothing, still takes commands),
 * `malformed-json` (status payloads that are not JSON), `missing-field` (status without `apower`).
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Clock } from '../../drivers/clock.js';
import type { Stepper } from '../ticker.js';

export type MqttFault = { kind: 'none' } | { kind: 'stale' } | { kind: 'malformed-json' } | { kind: 'missing-field' };
export type MqttFaultKind = MqttFault['kind'];

/** The load behind the plug. */
export interface PluggedLoad {
  supplyOn: boolean;
  readonly powerW: number;
  recompute(): void;
}

export interface ShellyPlugOptions {
  clock: Clock;
  load: PluggedLoad;
  /** Topic prefix. Default shellyplusplugs-d4d4daecf1a0. */
  prefix?: string;
  /** Periodic status (clock ms). Default 60 000. */
  statusIntervalMs?: number;
  /** Lifetime energy through the plug at start (Wh). Default 18 400. */
  initialEnergyWh?: number;
  /** Real ms between reconnect attempts. Default 500. */
  reconnectPeriodMs?: number;
  /** start() rejects when the first connection takes longer (real ms). Default 10 000. */
  connectTimeoutMs?: number;
}

export interface ShellySwitchStatus {
  id: 0;
  source: string;
  output: boolean;
  apower: number;
  voltage: number;
  current: number;
  aenergy: { total: number; by_minute: [number, number, number]; minute_ts: number };
  temperature: { tC: number; tF: number };
}

/** True when `p` settled (fulfilled or rejected) within `ms` real ms. */
async function withTimeout(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const settled = await Promise.race([
    p.then(
      () => true,
      () => true,
    ),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), ms);
    }),
  ]);
  clearTimeout(timer);
  return settled;
}

export const DEFAULT_SHELLY_PREFIX = 'shellyplusplugs-d4d4daecf1a0';
const VOLTAGE_V = 229.8;
const round = (v: number, digits: number) => Math.round(v * 10 ** digits) / 10 ** digits;

export class ShellyPlug implements Stepper {
  readonly prefix: string;
  fault: MqttFault = { kind: 'none' };
  /** Lifetime energy through the plug (Wh). */
  energyWh: number;
  /** Commands received, in order (for tests). */
  readonly commands: string[] = [];
  /** Status messages published (for tests). */
  statusPublished = 0;
  /** Times the plug (re)connected to a broker. */
  connects = 0;
  private client: MqttClient | undefined;
  /** Clock time of the next periodic status. */
  private nextPeriodicMs = 0;
  private readonly clock: Clock;
  private readonly load: PluggedLoad;
  private readonly statusIntervalMs: number;
  private lastPowerW: number;
  private lastPublished: { output: boolean; powerW: number } | undefined;
  private source = 'init';
  /** Energy (Wh) per whole minute: the current minute and the last three. */
  private minute = { index: 0, energyWh: 0, last: [0, 0, 0] as [number, number, number] };

  constructor(private readonly options: ShellyPlugOptions) {
    this.clock = options.clock;
    this.load = options.load;
    this.prefix = options.prefix ?? DEFAULT_SHELLY_PREFIX;
    this.statusIntervalMs = options.statusIntervalMs ?? 60_000;
    this.energyWh = options.initialEnergyWh ?? 18_400;
    this.lastPowerW = this.measuredPowerW();
    this.minute.index = Math.floor(this.clock.now() / 60_000);
  }

  get onlineTopic(): string {
    return `${this.prefix}/online`;
  }

  get stateTopic(): string {
    return `${this.prefix}/status/switch:0`;
  }

  get commandTopic(): string {
    return `${this.prefix}/command/switch:0`;
  }

  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /** Connects to the broker (and keeps reconnecting) and starts the periodic status. */
  async start(url: string): Promise<void> {
    if (this.client) throw new Error('already started');
    const client = mqtt.connect(url, {
      clientId: this.prefix, // a Shelly connects with its device id
      reconnectPeriod: this.options.reconnectPeriodMs ?? 500,
      connectTimeout: 5000,
      resubscribe: false,
      will: { topic: this.onlineTopic, payload: Buffer.from('false'), qos: 1, retain: true },
    });
    this.client = client;
    client.on('connect', () => {
      this.connects++;
      client.publish(this.onlineTopic, 'true', { qos: 1, retain: true });
      client.subscribe(this.commandTopic, { qos: 1 });
      this.source = 'init';
      this.publishStatus();
    });
    client.on('message', (topic, payload) => {
      if (topic === this.commandTopic) this.onCommand(payload.toString('utf8').trim());
    });
    client.on('error', () => undefined); // reconnects by itself
    const timeoutMs = this.options.connectTimeoutMs ?? 10_000;
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`shelly plug: no connection to ${url} within ${timeoutMs} ms`)), timeoutMs);
        client.once('connect', () => {
          clearTimeout(timer);
          resolve();
        });
      });
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Says `online false`, disconnects cleanly and stops the periodic status. Safe to call twice. */
  async stop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (!client) return;
    if (client.connected) {
      await withTimeout(client.publishAsync(this.onlineTopic, 'false', { qos: 1, retain: true }), 500);
      if (await withTimeout(client.endAsync(false), 1000)) return;
    }
    await withTimeout(client.endAsync(true), 1000);
  }

  /** Loses power: the connection drops without a DISCONNECT (the broker publishes the last will). */
  async powerLoss(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    if (client) await withTimeout(client.endAsync(true), 1000);
  }

  setFault(fault: MqttFault): void {
    this.fault = fault;
  }

  private onCommand(command: string): void {
    this.commands.push(command);
    const load = this.load;
    if (command === 'on') load.supplyOn = true;
    else if (command === 'off') load.supplyOn = false;
    else if (command === 'toggle') load.supplyOn = !load.supplyOn;
    else if (command !== 'status_update') return;
    load.recompute();
    this.lastPowerW = this.measuredPowerW();
    this.source = 'MQTT';
    this.publishStatus();
  }

  private measuredPowerW(): number {
    return this.load.supplyOn ? this.load.powerW : 0;
  }

  step(nowMs: number, dtMs: number): void {
    if (dtMs > 0) {
      // The energy of the power held over the interval, booked to the minute it falls in.
      const wh = (this.lastPowerW * dtMs) / 3_600_000;
      this.energyWh += wh;
      this.rollMinutes(Math.floor((nowMs - 1) / 60_000));
      this.minute.energyWh += wh;
    }
    this.rollMinutes(Math.floor(nowMs / 60_000));
    this.lastPowerW = this.measuredPowerW();
    const published = this.lastPublished;
    if (published && (published.output !== this.load.supplyOn || Math.abs(published.powerW - this.lastPowerW) >= Math.max(10, 0.05 * published.powerW))) {
      this.source = 'switch';
      this.publishStatus();
    } else if (nowMs >= this.nextPeriodicMs) {
      this.source = 'timer';
      this.publishStatus();
    }
  }

  /** Moves the current minute on to `index`, keeping the energy of the last three whole minutes. */
  private rollMinutes(index: number): void {
    const m = this.minute;
    while (m.index < index) {
      m.last = [m.energyWh, m.last[0], m.last[1]];
      m.energyWh = 0;
      m.index = index - m.index > 3 ? index - 3 : m.index + 1;
    }
  }

  /** The status as the device sends it (without faults). */
  status(): ShellySwitchStatus {
    const powerW = this.measuredPowerW();
    const tC = round(32 + powerW / 200, 1);
    return {
      id: 0,
      source: this.source,
      output: this.load.supplyOn,
      apower: round(powerW, 1),
      voltage: VOLTAGE_V,
      current: round(powerW / VOLTAGE_V, 3),
      aenergy: {
        total: round(this.energyWh, 3),
        by_minute: this.minute.last.map((wh) => round(wh * 1000, 3)) as [number, number, number],
        minute_ts: this.minute.index * 60,
      },
      temperature: { tC, tF: round((tC * 9) / 5 + 32, 1) },
    };
  }

  /** Publishes the status now (subject to the fault); nothing while disconnected. */
  publishStatus(): void {
    const client = this.client;
    if (!client?.connected) return;
    this.lastPublished = { output: this.load.supplyOn, powerW: this.measuredPowerW() };
    this.nextPeriodicMs = this.clock.now() + this.statusIntervalMs;
    let payload: string;
    switch (this.fault.kind) {
      case 'stale':
        return;
      case 'malformed-json':
        payload = `{"id":0,"source":"${this.source}","output":${this.load.supplyOn},"apower":`;
        break;
      case 'missing-field': {
        const { apower: _omitted, ...rest } = this.status();
        payload = JSON.stringify(rest);
        break;
      }
      case 'none':
        payload = JSON.stringify(this.status());
        break;
    }
    this.statusPublished++;
    client.publish(this.stateTopic, payload, { qos: 0 });
  }
}
