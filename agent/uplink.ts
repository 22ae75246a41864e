/**
 * The uplink: the connection to the aggregator's broker (PROTOCOL.md §1, §6). A persistent session
 * (stable client id, clean session off, QoS 1), the retained status topic with a last will, retained
 * topics republished after every reconnect. The agent works on while the uplink is down; QoS 1
 * messages published meanwhile wait in the client's queue.
 */
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Log } from '../drivers/log.js';

export interface UplinkOptions {
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  tls?: { caFile?: string | undefined; certFile?: string | undefined; keyFile?: string | undefined; rejectUnauthorized?: boolean | undefined } | undefined;
  /** Lowercase gateway address: topics are flex/v1/gw/{gateway}/... */
  gateway: string;
  version: string;
  log: Log;
  now: () => number;
}

export class Uplink {
  private client: MqttClient | undefined;
  private readonly retained = new Map<string, string>();
  private stopping: Promise<void> | undefined;
  readonly topicPrefix: string;

  constructor(private readonly options: UplinkOptions) {
    this.topicPrefix = `flex/v1/gw/${options.gateway.toLowerCase()}`;
  }

  start(): void {
    const { options } = this;
    const statusTopic = `${this.topicPrefix}/status`;
    const connectedAtMs = () => options.now();
    const tls = options.tls;
    const clientOptions: IClientOptions = {
      clientId: `flexgate-${options.gateway.toLowerCase()}`,
      clean: false,
      reconnectPeriod: 2000,
      connectTimeout: 10_000,
      protocolVersion: 4,
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
      ...(tls?.caFile ? { ca: readFileSync(tls.caFile) } : {}),
      ...(tls?.certFile ? { cert: readFileSync(tls.certFile) } : {}),
      ...(tls?.keyFile ? { key: readFileSync(tls.keyFile) } : {}),
      ...(tls?.rejectUnauthorized !== undefined ? { rejectUnauthorized: tls.rejectUnauthorized } : {}),
      will: { topic: statusTopic, payload: Buffer.from(JSON.stringify({ online: false, version: options.version, at: connectedAtMs() })), qos: 1, retain: true },
    };
    const client = mqtt.connect(options.url, clientOptions);
    this.client = client;
    client.on('connect', () => {
      options.log.info({ url: options.url }, 'uplink connected');
      this.setRetained(statusTopic, { online: true, version: options.version, at: options.now() });
      for (const [topic, payload] of this.retained) client.publish(topic, payload, { qos: 1, retain: true });
    });
    client.on('offline', () => options.log.warn({ url: options.url }, 'uplink unreachable; working locally and retrying'));
    client.on('error', (err) => options.log.warn({ err: err.message }, 'uplink error'));
  }

  waitConnected(): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new Error('uplink not started'));
    if (client.connected) return Promise.resolve();
    return new Promise((resolve) => client.once('connect', () => resolve()));
  }

  /** QoS 1, not retained: queued while the uplink is down. */
  publish(suffix: string, value: unknown): void {
    this.client?.publish(`${this.topicPrefix}/${suffix}`, JSON.stringify(value), { qos: 1 });
  }

  private setRetained(topic: string, value: unknown): void {
    const payload = JSON.stringify(value);
    this.retained.set(topic, payload);
    if (this.client?.connected) this.client.publish(topic, payload, { qos: 1, retain: true });
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const client = this.client;
      if (!client) return;
      if (client.connected) {
        await client
          .publishAsync(`${this.topicPrefix}/status`, JSON.stringify({ online: false, version: this.options.version, at: this.options.now() }), { qos: 1, retain: true })
          .catch(() => undefined);
      }
      await client.endAsync();
      this.client = undefined;
    })();
    return this.stopping;
  }
}
