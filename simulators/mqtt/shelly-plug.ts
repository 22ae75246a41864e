/**
 * A Shelly Plus Plug S (Gen2) as the vendor's MQTT API describes it (/work/notes/vendor-layouts.md
 * §6), switching a load: it publishes `<prefix>/online` (retained, `false` as its last will),
 * `<prefix>/status/switch:0` as JSON on every change and every `statusIntervalMs` of clock time, and
 * takes `on`, `off`, `toggle` and `status_update` on `<prefix>/command/switch:0`. It reconnects after
 * a broker restart and announces itself again. Faults: `stale` (publishes nothing), `malformed-json`,
 * `missing-field` (a status without `apower`).
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Clock, TimerHandle } from '../../drivers/clock.js';
import type { Stepper } from '../ticker.js';

export type MqttFault = { kind: 'none' } | { kind: 'stale' } | { kind: 'malformed-json' } | { kind: 'missing-field' };

/** The load behind the plug. */
export interface PluggedLoad {
  supplyOn: boolean;
  readonly powerW: number;
  recompute(): void;
}

export interface ShellyPlugOptions {
  clock: Clock;
  load: PluggedLoad;
  /** Topic prefix, e.g. shellyplusplugs-a8032ab12345. */
  prefix: string;
  statusIntervalMs?: number;
}

export class ShellyPlug implements Stepper {
  readonly prefix: string;
  fault: MqttFault = { kind: 'none' };
  /** Lifetime energy through the plug (Wh). */
  energyWh = 18_400;
  /** Commands received, for tests. */
  readonly commands: string[] = [];
  private client: MqttClient | undefined;
  private timer: TimerHandle | undefined;
  private readonly statusIntervalMs: number;

  constructor(private readonly options: ShellyPlugOptions) {
    this.prefix = options.prefix;
    this.statusIntervalMs = options.statusIntervalMs ?? 60_000;
  }

  get stateTopic(): string {
    return `${this.prefix}/status/switch:0`;
  }

  get commandTopic(): string {
    return `${this.prefix}/command/switch:0`;
  }

  /** Connects to the broker (reconnecting by itself) and starts the periodic status. */
  async start(url: string): Promise<void> {
    const client = mqtt.connect(url, {
      clientId: `${this.prefix}-sim`,
      reconnectPeriod: 500,
      will: { topic: `${this.prefix}/online`, payload: Buffer.from('false'), qos: 1, retain: true },
    });
    this.client = client;
    client.on('connect', () => {
      client.publish(`${this.prefix}/online`, 'true', { qos: 1, retain: true });
      client.subscribe(this.commandTopic, { qos: 1 });
      this.publishStatus();
    });
    client.on('message', (_topic, payload) => this.onCommand(payload.toString('utf8').trim()));
    client.on('error', () => undefined);
    this.schedule();
    await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  }

  async stop(): Promise<void> {
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const client = this.client;
    this.client = undefined;
    if (client) await client.endAsync(true).catch(() => undefined);
  }

  setFault(fault: MqttFault): void {
    this.fault = fault;
  }

  private schedule(): void {
    this.timer = this.options.clock.setTimeout(() => {
      this.publishStatus();
      this.schedule();
    }, this.statusIntervalMs);
  }

  private onCommand(command: string): void {
    this.commands.push(command);
    const load = this.options.load;
    if (command === 'on') load.supplyOn = true;
    else if (command === 'off') load.supplyOn = false;
    else if (command === 'toggle') load.supplyOn = !load.supplyOn;
    else if (command !== 'status_update') return;
    load.recompute();
    this.publishStatus();
  }

  step(_nowMs: number, dtMs: number): void {
    if (dtMs > 0) this.energyWh += (this.options.load.powerW * dtMs) / 3_600_000;
  }

  /** The status JSON as the device sends it (without faults). */
  status(): Record<string, unknown> {
    const load = this.options.load;
    const powerW = load.supplyOn ? load.powerW : 0;
    const voltageV = 229.8;
    return {
      id: 0,
      source: 'MQTT',
      output: load.supplyOn,
      apower: Math.round(powerW * 10) / 10,
      voltage: voltageV,
      current: Math.round((powerW / voltageV) * 1000) / 1000,
      aenergy: { total: Math.round(this.energyWh * 1000) / 1000, by_minute: [0, 0, 0], minute_ts: Math.floor(this.options.clock.now() / 1000) },
      temperature: { tC: 38.4, tF: 101.1 },
    };
  }

  publishStatus(): void {
    const client = this.client;
    if (!client?.connected) return;
    switch (this.fault.kind) {
      case 'stale':
        return;
      case 'malformed-json':
        client.publish(this.stateTopic, '{"id":0,"output":tru', { qos: 0 });
        return;
      case 'missing-field': {
        const { apower: _omitted, ...rest } = this.status();
        client.publish(this.stateTopic, JSON.stringify(rest), { qos: 0 });
        return;
      }
      case 'none':
        client.publish(this.stateTopic, JSON.stringify(this.status()), { qos: 0 });
    }
  }
}
