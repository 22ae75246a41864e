/**
 * The uplink: the connection to the aggregator's broker (PROTOCOL.md §1, §6). A persistent session
 * (stable client id, clean session off, QoS 1), the retained status topic with a last will, retained
 * topics republished after every reconnect. The agent works on while the uplink is down; QoS 1
 * messages published meanwhile wait in the client's queue.
 *
 * Orders: `onOrder(handler)` subscribes to `flex/v1/gw/{gateway}/order` at QoS 1 (on every connect,
 * so a broker that lost the session gets the subscription again); the handler gets each payload's
 * raw bytes and must only queue them (agent/dispatch/intake.ts). Orders sent while the gateway was
 * briefly offline are delivered when it returns (the broker keeps them for the persistent session).
 *
 * Statuses: `publishConfirmed(suffix, payload)` resolves on the broker's PUBACK; `statusTransport()`
 * is what agent/dispatch/statuses.ts publishes through.
 */
import { readFileSync } from 'node:fs';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import type { Log } from '../drivers/log.js';
import type { StatusTransport } from './dispatch/statuses.js';

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

/** The uplink is not started (or stopped): nothing can be published. */
export class UplinkDownError extends Error {
  override readonly name = 'UplinkDownError';
}

export class Uplink {
  private client: MqttClient | undefined;
  private readonly retained = new Map<string, string>();
  private stopping: Promise<void> | undefined;
  private readonly orderHandlers = new Set<(raw: Uint8Array) => void>();
  private readonly connectListeners = new Set<() => void>();
  readonly topicPrefix: string;
  /** `flex/v1/gw/{gateway}/order` */
  readonly orderTopic: string;

  constructor(private readonly options: UplinkOptions) {
    this.topicPrefix = `flex/v1/gw/${options.gateway.toLowerCase()}`;
    this.orderTopic = `${this.topicPrefix}/order`;
  }

  /** True while connected to the broker. */
  get connected(): boolean {
    return this.client?.connected ?? false;
  }

  /**
   * Receives every payload published on the order topic, as raw bytes, inside the MQTT callback:
   * the handler must only queue them. Subscribes at QoS 1 (now if connected, and on every connect).
   * Returns a function that removes the handler.
   */
  onOrder(handler: (raw: Uint8Array) => void): () => void {
    this.orderHandlers.add(handler);
    if (this.client?.connected) this.subscribeOrders(this.client);
    return () => this.orderHandlers.delete(handler);
  }

  /** `listener` runs after every (re)connect, after the subscriptions and retained topics are sent. */
  onConnect(listener: () => void): () => void {
    this.connectListeners.add(listener);
    return () => this.connectListeners.delete(listener);
  }

  /** The ack topic as agent/dispatch/statuses.ts needs it. */
  statusTransport(): StatusTransport {
    const uplink = this;
    return {
      get connected() {
        return uplink.connected;
      },
      publishStatus: (payload) => this.publishConfirmed('ack', payload),
      onConnect: (listener) => this.onConnect(listener),
    };
  }

  /**
   * QoS 1, not retained; resolves when the broker acknowledged it (PUBACK). Rejects with
   * UplinkDownError when the uplink is not started, or with the client's error.
   */
  async publishConfirmed(suffix: string, payload: string): Promise<void> {
    const client = this.client;
    if (!client) throw new UplinkDownError('uplink not started');
    await client.publishAsync(`${this.topicPrefix}/${suffix}`, payload, { qos: 1 });
  }

  private subscribeOrders(client: MqttClient): void {
    if (this.orderHandlers.size === 0) return;
    client.subscribe(this.orderTopic, { qos: 1 }, (err) => {
      if (err) this.options.log.error({ err: err.message, topic: this.orderTopic }, 'could not subscribe to orders; retrying at the next connect');
    });
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
      // Orders arrive while statuses go out: without TCP_NODELAY a status (or the PUBACK of an order)
      // could wait for the broker's delayed ACK of the last one (Nagle, up to 40 ms).
      (client.stream as { setNoDelay?: (on: boolean) => void } | undefined)?.setNoDelay?.(true);
      this.subscribeOrders(client);
      this.setRetained(statusTopic, { online: true, version: options.version, at: options.now() });
      for (const [topic, payload] of this.retained) client.publish(topic, payload, { qos: 1, retain: true });
      for (const listener of this.connectListeners) {
        try {
          listener();
        } catch (err) {
          options.log.error({ err }, 'uplink connect listener failed');
        }
      }
    });
    client.on('message', (topic, payload) => {
      if (topic !== this.orderTopic) return;
      for (const handler of this.orderHandlers) {
        try {
          handler(payload);
        } catch (err) {
          options.log.error({ err }, 'order handler failed');
        }
      }
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
