/**
 * A simulated aggregator (PROTOCOL.md §3, §6): holds an aggregator key (a throwaway key made for the
 * demo), publishes signed DispatchOrders to `flex/v1/gw/{gateway}/order` at QoS 1 with increasing
 * sequences (the last one kept in a small JSON file, so a CLI run twice does not REPLAY), subscribes
 * to `flex/v1/gw/+/ack` and `flex/v1/gw/+/status`, verifies every OrderStatus signature against the
 * gateway address of its topic, and collects them.
 *
 * It talks to the gateway only over MQTT, as a real aggregator does: it imports ledger-client (the
 * EIP-712 types and signing) and mqtt, never agent/.
 */
import { randomBytes } from 'node:crypto';
import mqtt, { type MqttClient } from 'mqtt';
import { addressOf, signEnvelope, verifyRawEnvelope, type DispatchOrder, type Envelope, type Hex, type OrderStatus } from '../../ledger-client/eip712.js';
import type { Address } from '../../ledger-client/wire.js';
import { SequenceState } from './state.js';

export const SIGNALS = { cancel: 0, 'import-limit': 1, 'export-limit': 2, setpoint: 3, delta: 4 } as const;
export type SignalName = keyof typeof SIGNALS;

export const STATUS_CODES = {
  RECEIVED: 1,
  STARTED: 2,
  COMPLETED: 3,
  CANCELLED: 6,
  SUPERSEDED: 7,
  ABORTED: 10,
  NOT_APPLICABLE: 252,
  INVALID: 253,
  EXPIRED: 254,
} as const;
export type StatusName = keyof typeof STATUS_CODES;
export const STATUS_NAMES: Readonly<Record<number, StatusName>> = Object.fromEntries(Object.entries(STATUS_CODES).map(([k, v]) => [v, k])) as Record<number, StatusName>;
export const REASON_NAMES: Readonly<Record<number, string>> = {
  1: 'MALFORMED',
  2: 'BAD_SIGNATURE',
  3: 'UNTRUSTED_AGGREGATOR',
  4: 'WRONG_GATEWAY',
  5: 'EXPIRED',
  6: 'REPLAY',
  7: 'CLOCK_SKEW',
  8: 'UNSUPPORTED_SIGNAL',
  9: 'OUT_OF_RANGE',
  10: 'UNKNOWN_ORDER',
  11: 'DEVICE_FAULT',
  12: 'SAFETY_LIMIT',
};

export interface AggregatorOptions {
  brokerUrl: string;
  chainId: number;
  /** The aggregator key, 0x + 64 hex. */
  privateKey: Hex;
  /** The gateway orders go to unless `send` names another. */
  gateway: string;
  /** JSON file keeping the last sequence per gateway and the last modification per order; default: none (memory only). */
  stateFile?: string;
  /** Unix ms; default Date.now. */
  now?: () => number;
  /** validUntil = issuedAt + this; default 30 s. */
  validForMs?: number;
  username?: string;
  password?: string;
}

export interface SendOptions {
  signal: SignalName | number;
  valueW: number;
  /** Window start, unix ms; 0 or undefined = now (at the gateway's receipt). */
  startMs?: number;
  durationMs: number;
  randomizeMs?: number;
  rampMs?: number;
  /** Default: a fresh random id. */
  orderId?: Hex;
  /** Default: 0 for a new orderId, else one above the last sent for it. */
  modification?: number;
  priceMicros?: number;
  auctionId?: Hex;
  gateway?: string;
  validForMs?: number;
  /** Overrides, e.g. to send a deliberately bad order in a test. */
  message?: Partial<DispatchOrder>;
}

/** One message seen on an ack topic. */
export interface ReceivedStatus {
  topic: string;
  /** The gateway of the topic (lowercase). */
  gateway: Address;
  raw: string;
  receivedAtMs: number;
  /** True when the envelope is well-formed and signed by the gateway of its topic. */
  valid: boolean;
  message: OrderStatus | undefined;
  signer: Address | undefined;
  /** Why it is not valid. */
  error: string | undefined;
}

export interface GatewayPresence {
  online: boolean;
  version: string;
  at: number;
}

export class StatusTimeoutError extends Error {
  override readonly name = 'StatusTimeoutError';
}

const ACK_TOPIC = /^flex\/v1\/gw\/(0x[0-9a-f]{40})\/(ack|status)$/;

function statusCode(status: number | StatusName): number {
  return typeof status === 'number' ? status : STATUS_CODES[status];
}

export class AggregatorSimulator {
  readonly address: Address;
  private readonly received: ReceivedStatus[] = [];
  private readonly presence = new Map<string, GatewayPresence>();
  private readonly listeners = new Set<(s: ReceivedStatus) => void>();
  private readonly state: SequenceState;
  private readonly now: () => number;

  private constructor(
    private readonly client: MqttClient,
    private readonly options: AggregatorOptions,
  ) {
    this.address = addressOf(options.privateKey);
    this.now = options.now ?? Date.now;
    this.state = new SequenceState(options.stateFile);
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  /** Connects to the broker and subscribes to every gateway's ack and status topics. */
  static async start(options: AggregatorOptions): Promise<AggregatorSimulator> {
    const client = await mqtt.connectAsync(options.brokerUrl, {
      clientId: `flexgate-aggregator-sim-${randomBytes(6).toString('hex')}`,
      clean: true,
      reconnectPeriod: 1000,
      protocolVersion: 4,
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
    });
    const sim = new AggregatorSimulator(client, options);
    const topics = ['flex/v1/gw/+/ack', 'flex/v1/gw/+/status'];
    await client.subscribeAsync(topics, { qos: 1 });
    // a broker restart loses the subscriptions of a clean session: subscribe again
    client.on('connect', (packet) => {
      if (!packet.sessionPresent) client.subscribe(topics, { qos: 1 });
    });
    return sim;
  }

  /** Every message seen on an ack topic, in arrival order. */
  get statuses(): readonly ReceivedStatus[] {
    return this.received;
  }

  /** The last retained status of a gateway (`flex/v1/gw/{gateway}/status`). */
  gatewayPresence(gateway: string): GatewayPresence | undefined {
    return this.presence.get(gateway.toLowerCase());
  }

  onStatus(listener: (s: ReceivedStatus) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Signs and publishes a DispatchOrder (QoS 1); resolves after the broker's PUBACK with the envelope sent. */
  async send(o: SendOptions): Promise<Envelope<'DispatchOrder'>> {
    const gateway = (o.gateway ?? this.options.gateway).toLowerCase() as Address;
    const signal = typeof o.signal === 'number' ? o.signal : SIGNALS[o.signal];
    const orderId = (o.orderId ?? (`0x${randomBytes(32).toString('hex')}` as Hex)).toLowerCase() as Hex;
    const known = this.state.modificationOf(orderId);
    const modification = o.modification ?? (known === undefined ? 0 : known + 1);
    const issuedAt = this.now();
    const sequence = this.state.nextSequence(this.address, gateway, issuedAt);
    const message: DispatchOrder = {
      orderId,
      aggregator: this.address,
      gateway,
      auctionId: o.auctionId ?? `0x${'00'.repeat(32)}`,
      sequence,
      issuedAt,
      validUntil: issuedAt + (o.validForMs ?? this.options.validForMs ?? 30_000),
      start: o.startMs ?? 0,
      durationMs: o.durationMs,
      randomizeMs: o.randomizeMs ?? 0,
      rampMs: o.rampMs ?? 0,
      signal,
      valueW: o.valueW,
      priceMicros: o.priceMicros ?? 0,
      modification,
      ...o.message,
    };
    const envelope = signEnvelope(this.options.privateKey, 'DispatchOrder', message, this.options.chainId);
    // kept before it leaves: a second run must never reuse the sequence
    this.state.record(this.address, gateway, message.sequence, orderId, message.modification);
    await this.client.publishAsync(`flex/v1/gw/${gateway}/order`, JSON.stringify(envelope), { qos: 1 });
    return envelope;
  }

  /** CANCEL of `orderId`: a new version (modification one above the last sent, unless given). */
  cancel(orderId: Hex, options: { modification?: number; gateway?: string } = {}): Promise<Envelope<'DispatchOrder'>> {
    return this.send({ signal: 'cancel', valueW: 0, durationMs: 0, orderId, ...options });
  }

  /** Publishes raw bytes on a gateway's order topic (for tests of bad input). */
  async publishRaw(payload: string | Uint8Array, gateway: string = this.options.gateway): Promise<void> {
    await this.client.publishAsync(`flex/v1/gw/${gateway.toLowerCase()}/order`, Buffer.from(payload), { qos: 1 });
  }

  /**
   * The first valid status `status` for `orderId` (already received or still to come), optionally of
   * one `modification`. Rejects with StatusTimeoutError after `timeoutMs`.
   */
  waitForStatus(orderId: string, status: number | StatusName, timeoutMs: number, modification?: number): Promise<ReceivedStatus> {
    const code = statusCode(status);
    const id = orderId.toLowerCase();
    const matches = (s: ReceivedStatus) => s.valid && s.message?.orderId === id && s.message.status === code && (modification === undefined || s.message.modification === modification);
    const already = this.received.find(matches);
    if (already) return Promise.resolve(already);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        remove();
        const seen = this.received.filter((s) => s.message?.orderId === id).map((s) => STATUS_NAMES[s.message!.status] ?? s.message!.status);
        reject(new StatusTimeoutError(`no ${STATUS_NAMES[code] ?? code} for order ${id} within ${timeoutMs} ms (seen: ${seen.join(', ') || 'nothing'})`));
      }, timeoutMs);
      const remove = this.onStatus((s) => {
        if (!matches(s)) return;
        clearTimeout(timer);
        remove();
        resolve(s);
      });
    });
  }

  /**
   * The first valid status of `orderId` (any code: RECEIVED, a rejection, the CANCELLED a CANCEL gets),
   * optionally of one `modification`.
   */
  waitForAnyStatus(orderId: string, timeoutMs: number, modification?: number): Promise<ReceivedStatus> {
    const id = orderId.toLowerCase();
    const matches = (s: ReceivedStatus) => s.valid && s.message?.orderId === id && (modification === undefined || s.message.modification === modification);
    const already = this.received.find(matches);
    if (already) return Promise.resolve(already);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        remove();
        reject(new StatusTimeoutError(`no status for order ${id} within ${timeoutMs} ms`));
      }, timeoutMs);
      const remove = this.onStatus((s) => {
        if (!matches(s)) return;
        clearTimeout(timer);
        remove();
        resolve(s);
      });
    });
  }

  async stop(): Promise<void> {
    await this.client.endAsync();
  }

  private onMessage(topic: string, payload: Buffer): void {
    const match = ACK_TOPIC.exec(topic);
    if (!match) return;
    const gateway = match[1] as Address;
    const raw = payload.toString('utf8');
    if (match[2] === 'status') {
      try {
        const p = JSON.parse(raw) as GatewayPresence;
        if (typeof p.online === 'boolean') this.presence.set(gateway, p);
      } catch {
        // not ours to judge: a status topic that is not JSON is ignored
      }
      return;
    }
    const result = verifyRawEnvelope(payload, { chainId: this.options.chainId, expectedType: 'OrderStatus' });
    let entry: ReceivedStatus;
    if (!result.ok) {
      entry = { topic, gateway, raw, receivedAtMs: this.now(), valid: false, message: undefined, signer: undefined, error: `${result.reason}: ${result.detail}` };
    } else {
      const message = result.envelope.message as OrderStatus;
      const fromTopic = result.signer === gateway;
      entry = {
        topic,
        gateway,
        raw,
        receivedAtMs: this.now(),
        valid: fromTopic,
        message,
        signer: result.signer,
        error: fromTopic ? undefined : `signed by ${result.signer}, not by the gateway of the topic ${gateway}`,
      };
    }
    this.received.push(entry);
    for (const l of this.listeners) l(entry);
  }
}
