/**
 * The local MQTT API, zigbee2mqtt-style, on a broker on the gateway (or one embedded in the agent).
 * Topics under `<baseTopic>/<gateway name>/` (documented in docs/local-api.md):
 *   bridge/state               retained {"state":"online"|"offline"}; the last will says offline
 *   bridge/info                retained: version, gateway, devices and their configuration summary
 *   bridge/event               {"type", "data"}: things that happened, e.g. readings_stored (sent only
 *                              after the batch is durable on disk)
 *   bridge/request/<x>         requests; the answer goes to bridge/response/<x> with the request's
 *                              "transaction" echoed
 *   devices/<id>               retained: the device's last reading and availability
 *   devices/<id>/availability  retained {"state":"online"} or {"state":"offline","reason":...}
 *   site                       the site summary of each control cycle
 * Retained topics are published again after every reconnect (a restarted broker loses them).
 * Nothing received here is acted on inside the MQTT callback beyond answering read-only requests.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Log } from '../drivers/log.js';
import type { Availability, DeviceState, SiteSnapshot } from './snapshot.js';

export interface LocalApiOptions {
  url: string;
  username?: string;
  password?: string;
  baseTopic: string;
  gatewayName: string;
  log: Log;
  /** Answers to requests; each returns JSON-serialisable data or throws an Error with a message for the caller. */
  requests: Record<string, (payload: Record<string, unknown>) => unknown>;
  /** The retained bridge/info document. */
  info: () => unknown;
}

export const MAX_REQUEST_BYTES = 16 * 1024;

export class LocalApi {
  private client: MqttClient | undefined;
  private readonly prefix: string;
  private readonly retained = new Map<string, string>();
  private readonly log: Log;
  private stopping: Promise<void> | undefined;

  constructor(private readonly options: LocalApiOptions) {
    this.prefix = `${options.baseTopic}/${options.gatewayName}`;
    this.log = options.log;
  }

  get topicPrefix(): string {
    return this.prefix;
  }

  /** Starts connecting and returns at once: the agent works on while the broker is unreachable, and
   * the client keeps reconnecting on its own. */
  start(signal?: AbortSignal): void {
    const stateTopic = `${this.prefix}/bridge/state`;
    const client = mqtt.connect(this.options.url, {
      clientId: `flexgate-${this.options.gatewayName}-local`,
      username: this.options.username,
      password: this.options.password,
      clean: true,
      reconnectPeriod: 2000,
      connectTimeout: 10_000,
      will: { topic: stateTopic, payload: Buffer.from(JSON.stringify({ state: 'offline' })), qos: 1, retain: true },
    });
    this.client = client;
    signal?.addEventListener('abort', () => void this.stop(), { once: true });
    client.on('connect', () => {
      this.log.info({ url: this.options.url }, 'local MQTT API connected');
      this.setRetained(stateTopic, { state: 'online' });
      this.setRetained(`${this.prefix}/bridge/info`, this.options.info());
      // Republish everything retained: a restarted broker has lost it.
      for (const [topic, payload] of this.retained) client.publish(topic, payload, { qos: 1, retain: true });
      client.subscribe(`${this.prefix}/bridge/request/+`, { qos: 1 });
    });
    client.on('error', (err) => this.log.warn({ err: err.message }, 'local MQTT API error'));
    client.on('offline', () => this.log.warn({}, 'local MQTT API broker unreachable; retrying'));
    client.on('message', (topic, payload) => this.onRequest(topic, payload));
    client.on('error', (err) => {
      // Authentication and protocol refusals (CONNACK codes) will not fix themselves: say so loudly.
      if ('code' in err && typeof (err as { code: unknown }).code === 'number') {
        this.log.error({ url: this.options.url, err: err.message }, 'local MQTT broker refused the connection; check localApi.mqtt');
      }
    });
  }

  /** Resolves when connected (tests and the demo wait for this; the agent itself never does). */
  waitConnected(signal?: AbortSignal): Promise<void> {
    const client = this.client;
    if (!client) return Promise.reject(new Error('local API not started'));
    if (client.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      client.once('connect', () => resolve());
      signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
    });
  }

  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const client = this.client;
    if (!client) return;
    if (client.connected) {
      await client.publishAsync(`${this.prefix}/bridge/state`, JSON.stringify({ state: 'offline' }), { qos: 1, retain: true }).catch(() => undefined);
    }
    await client.endAsync();
    this.client = undefined;
  }

  publishSnapshot(snapshot: SiteSnapshot): void {
    for (const device of snapshot.devices) {
      if (device.fresh) this.publishDeviceState(device);
    }
    this.publish(`${this.prefix}/site`, { cycle: snapshot.cycle, tsMs: snapshot.tsMs, ...snapshot.site });
  }

  publishDeviceState(device: DeviceState): void {
    this.setRetained(`${this.prefix}/devices/${device.id}`, deviceStatePayload(device));
  }

  publishAvailability(deviceId: string, availability: Availability): void {
    this.setRetained(`${this.prefix}/devices/${deviceId}/availability`, availabilityPayload(availability));
  }

  /** An event on bridge/event (QoS 1, not retained). */
  publishEvent(type: string, data: unknown): void {
    if (this.client?.connected) this.client.publish(`${this.prefix}/bridge/event`, JSON.stringify({ type, data }), { qos: 1 });
  }

  info(): void {
    this.setRetained(`${this.prefix}/bridge/info`, this.options.info());
  }

  private setRetained(topic: string, value: unknown): void {
    const payload = JSON.stringify(value);
    this.retained.set(topic, payload);
    if (this.client?.connected) this.client.publish(topic, payload, { qos: 1, retain: true });
  }

  private publish(topic: string, value: unknown): void {
    if (this.client?.connected) this.client.publish(topic, JSON.stringify(value), { qos: 0 });
  }

  private onRequest(topic: string, payload: Buffer): void {
    const name = topic.slice(`${this.prefix}/bridge/request/`.length);
    const responseTopic = `${this.prefix}/bridge/response/${name}`;
    let request: Record<string, unknown> = {};
    let transaction: unknown;
    const respond = (body: Record<string, unknown>) => {
      const message = transaction === undefined ? body : { ...body, transaction };
      this.client?.publish(responseTopic, JSON.stringify(message), { qos: 1 });
    };
    if (payload.length > MAX_REQUEST_BYTES) {
      respond({ status: 'error', error: `request too large: ${payload.length} bytes (at most ${MAX_REQUEST_BYTES})` });
      return;
    }
    if (payload.length > 0) {
      let parsed: unknown;
      try {
        parsed = JSON.parse(payload.toString('utf8'));
      } catch (err) {
        respond({ status: 'error', error: `request is not valid JSON: ${(err as Error).message}` });
        return;
      }
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
        respond({ status: 'error', error: 'request must be a JSON object (or empty)' });
        return;
      }
      request = parsed as Record<string, unknown>;
      transaction = request['transaction'];
    }
    const handler = Object.hasOwn(this.options.requests, name) ? this.options.requests[name] : undefined;
    if (!handler) {
      respond({ status: 'error', error: `unknown request "${name}" (known: ${Object.keys(this.options.requests).join(', ')})` });
      return;
    }
    try {
      respond({ status: 'ok', data: handler(request) });
    } catch (err) {
      respond({ status: 'error', error: err instanceof Error ? err.message : String(err) });
    }
  }
}

export function availabilityPayload(a: Availability): Record<string, unknown> {
  if (a.state === 'offline') return { state: 'offline', sinceMs: a.sinceMs, reason: a.reason };
  if (a.state === 'online') return { state: 'online', sinceMs: a.sinceMs };
  return { state: 'unknown' };
}

export function deviceStatePayload(d: DeviceState): Record<string, unknown> {
  return {
    id: d.id,
    class: d.deviceClass,
    availability: availabilityPayload(d.availability),
    ...(d.readAtMs !== undefined ? { readAtMs: d.readAtMs } : {}),
    ...(d.reading ? { reading: d.reading } : {}),
    ...(d.description ? { description: d.description } : {}),
  };
}
