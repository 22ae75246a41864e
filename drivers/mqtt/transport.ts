/**
 * The MQTT side of device profiles, and the one place in drivers that uses the `mqtt` library.
 *
 * Subscribes (QoS 1) to the device's state topics and its availability topic, keeps the last value of
 * every source with the time it arrived (injected clock), and runs commands. A value is usable only
 * when it came in on the current connection and is younger than `staleAfterMs`; with nothing usable
 * (the broker unreachable, the device offline by its availability topic, every source stale or
 * unparseable) a read rejects with a DisconnectedError or StaleDataError. A payload that is not JSON,
 * lacks a field or has the wrong type makes the affected sources unknown and is logged once per source
 * and cause, not once per message. Nothing a broker sends can make it throw.
 *
 * Commands are published at the action's QoS, wait for the broker's PUBACK and, when the action
 * declares `confirm`, for a message received after the command in which the confirming source shows
 * the expected value; otherwise they fail with a TimeoutError. A command the broker has not
 * acknowledged when it times out or the connection drops is withdrawn, so mqtt.js never re-sends it
 * after a reconnect: a late "off" is worse than none.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Clock, TimerHandle } from '../clock.js';
import { DisconnectedError, NotSupportedError, StaleDataError, TimeoutError } from '../errors.js';
import type { Log } from '../log.js';
import type { ProfileTransport, SourceSnapshot, SourceValue } from '../profiles/transport.js';
import { decodeSource, parsePayload, type DecodeProblemKind, type SourceType } from './decode.js';
import type { MqttAction, MqttSection } from './profile-schema.js';

export { jsonPath } from './decode.js';

export interface MqttProfileTransportOptions {
  section: MqttSection;
  /** The device's base topic (connection.mqtt.topic), substituted for {topic}. */
  topic: string;
  /** The broker, e.g. mqtt://127.0.0.1:1883. */
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  clock: Clock;
  log: Log;
  /** Default: flexgate-<base topic>-<random>. */
  clientId?: string | undefined;
  /** mqtt.js reconnect period (real time). Default 1000 ms. */
  reconnectPeriodMs?: number | undefined;
}

/** How long a command without `confirm` waits for the broker's PUBACK. */
export const DEFAULT_ACK_TIMEOUT_MS = 5000;

type ProblemKind = DecodeProblemKind | 'stale';

interface SourceState {
  readonly name: string;
  readonly topic: string;
  readonly path: string;
  readonly type: SourceType;
  /** The last usable value and when it arrived. */
  value?: SourceValue;
  atMs?: number;
  /** Number of the message that carried the last value or problem (see `messageSeq`). */
  seq: number;
  /** The problem of the last message on the source's topic, while it lasts. */
  problem?: { kind: DecodeProblemKind; message: string };
  /** No message on this source's topic since the current connection was made. */
  awaitingFresh: boolean;
  /** Logging: the current episode of trouble (see `noteProblem`). */
  episode?: { causes: Set<ProblemKind>; badCount: number; recoveryLogged: boolean; goodSinceMs?: number };
}

interface PendingCommand {
  /** A message came in (the confirmation may be in it). */
  onMessage(): void;
  /** The connection closed. */
  onClose(): void;
  /** The transport stopped. */
  onStop(): void;
}

export function createMqttProfileTransport(options: MqttProfileTransportOptions): ProfileTransport {
  return new MqttProfileTransport(options);
}

/** The broker URL without credentials, for messages and logs. */
function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return url.replace(/\/\/[^@/]*@/, '//');
  }
}

class MqttProfileTransport implements ProfileTransport {
  private readonly section: MqttSection;
  private readonly clock: Clock;
  private readonly log: Log;
  private readonly sources: SourceState[] = [];
  private readonly byName = new Map<string, SourceState>();
  private readonly byTopic = new Map<string, SourceState[]>();
  private readonly availabilityTopic: string | undefined;
  private readonly brokerUrl: string;

  private client: MqttClient | undefined;
  /** Connected and subscribed. */
  private ready = false;
  /** What the availability topic said on the current connection. */
  private online: boolean | undefined;
  /** Counts every message handled, so a confirmation is told apart from what came before a command. */
  private messageSeq = 0;
  private refreshTimer: TimerHandle | undefined;
  private readonly pending = new Set<PendingCommand>();
  private removeAbortListener: (() => void) | undefined;
  /** Resolves start() at the first outcome of connecting (subscribed, or failed). */
  private firstOutcome: (() => void) | undefined;
  /** Logging of the connection: the last error logged (once per distinct error), and whether we were connected. */
  private lastConnectionError: string | undefined;
  private wasConnected = false;

  constructor(private readonly options: MqttProfileTransportOptions) {
    this.section = options.section;
    this.clock = options.clock;
    this.brokerUrl = redactUrl(options.url);
    this.log = options.log;
    if (/[#+]/.test(options.topic) || options.topic === '') throw new NotSupportedError(`mqtt base topic "${options.topic}" must be a topic without wildcards`);
    for (const [name, source] of Object.entries(options.section.sources)) {
      const state: SourceState = { name, topic: this.topic(source.topic), path: source.path, type: source.type, seq: 0, awaitingFresh: true };
      this.sources.push(state);
      this.byName.set(name, state);
      const list = this.byTopic.get(state.topic) ?? [];
      list.push(state);
      this.byTopic.set(state.topic, list);
    }
    this.availabilityTopic = options.section.availability ? this.topic(options.section.availability.topic) : undefined;
  }

  private topic(template: string): string {
    return template.replaceAll('{topic}', this.options.topic);
  }

  describe(): string {
    return `mqtt ${this.options.topic} on ${this.brokerUrl}`;
  }

  async start(signal?: AbortSignal): Promise<void> {
    if (this.client || signal?.aborted) return;
    const { options } = this;
    const outcome = new Promise<void>((resolve) => (this.firstOutcome = resolve));
    const client = mqtt.connect(options.url, {
      clientId: options.clientId ?? `flexgate-${options.topic.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40)}-${Math.random().toString(16).slice(2, 8)}`,
      // A device's state is re-published (status interval, refresh) or retained: no session to keep,
      // and no command may wait in a session across an outage.
      clean: true,
      reconnectPeriod: options.reconnectPeriodMs ?? 1000,
      connectTimeout: 5000,
      protocolVersion: 4,
      // Subscribed on every connect below, so that values are known to be fresh on this connection.
      resubscribe: false,
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
    });
    this.client = client;
    client.on('connect', () => this.onConnect(client));
    client.on('message', (topic, payload) => {
      if (this.client === client) this.onMessage(topic, payload);
    });
    client.on('close', () => {
      if (this.client === client) this.onClose();
    });
    client.on('error', (err) => {
      if (this.client !== client) return;
      const message = err.message || (err as Error & { code?: string }).code || String(err);
      if (message !== this.lastConnectionError) {
        this.lastConnectionError = message;
        this.log.warn({ broker: this.brokerUrl, err: message }, 'mqtt broker error; retrying');
      }
      this.settleStart();
    });
    if (signal) {
      const onAbort = () => void this.stop();
      signal.addEventListener('abort', onAbort, { once: true });
      this.removeAbortListener = () => signal.removeEventListener('abort', onAbort);
    }
    this.scheduleRefresh();
    await outcome;
  }

  async stop(): Promise<void> {
    const client = this.client;
    if (!client) return;
    this.client = undefined;
    this.ready = false;
    this.removeAbortListener?.();
    this.removeAbortListener = undefined;
    if (this.refreshTimer !== undefined) this.clock.clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    for (const p of [...this.pending]) p.onStop();
    this.settleStart();
    await client.endAsync(true).catch(() => undefined);
    client.removeAllListeners();
  }

  private settleStart(): void {
    const resolve = this.firstOutcome;
    this.firstOutcome = undefined;
    resolve?.();
  }

  private onConnect(client: MqttClient): void {
    if (this.client !== client) return;
    // Whatever was known before this connection is not known to be current.
    for (const s of this.sources) s.awaitingFresh = true;
    this.online = undefined;
    const topics = [...this.byTopic.keys(), ...(this.availabilityTopic && !this.byTopic.has(this.availabilityTopic) ? [this.availabilityTopic] : [])];
    client.subscribe(topics, { qos: 1 }, (err, granted) => {
      if (this.client !== client) return;
      if (err && !client.connected) {
        // The connection dropped before the SUBACK: the next connect subscribes again.
        this.settleStart();
        return;
      }
      const refused = err ? topics : (granted ?? []).filter((g) => g.qos === 128).map((g) => g.topic);
      if (refused.length > 0) {
        this.log.warn({ broker: this.brokerUrl, topics: refused, err: err?.message }, 'the broker refused the subscription to device topics');
      } else {
        this.ready = true;
        this.lastConnectionError = undefined;
        this.log.info({ broker: this.brokerUrl, reconnected: this.wasConnected }, this.wasConnected ? 'mqtt reconnected; subscribed again' : 'mqtt connected; subscribed');
        this.wasConnected = true;
        this.sendRefresh();
      }
      this.settleStart();
    });
  }

  private onClose(): void {
    if (this.ready) this.log.warn({ broker: this.brokerUrl }, 'mqtt connection lost; reconnecting');
    this.ready = false;
    for (const p of [...this.pending]) p.onClose();
    this.settleStart();
  }

  private scheduleRefresh(): void {
    const refresh = this.section.refresh;
    if (!refresh || !this.client) return;
    this.refreshTimer = this.clock.setTimeout(() => {
      this.refreshTimer = undefined;
      this.sendRefresh();
      this.scheduleRefresh();
    }, refresh.everyMs);
  }

  private sendRefresh(): void {
    const refresh = this.section.refresh;
    if (!refresh || !this.client || !this.ready) return;
    // QoS 0: a lost refresh is replaced by the next one; nothing to wait for.
    this.client.publish(this.topic(refresh.topic), refresh.payload, { qos: 0 }, () => undefined);
  }

  /**
   * Logging once per cause: the first occurrence of each kind of problem of a source is logged, then
   * counted silently. The trouble (an "episode") ends when the source has given usable values for
   * `staleAfterMs`; the first usable value after a problem is logged once per episode. So hundreds
   * of bad messages, or a source flapping between good and bad, give a handful of lines.
   */
  private noteProblem(s: SourceState, kind: ProblemKind, message: string): void {
    const now = this.clock.now();
    if (s.episode?.goodSinceMs !== undefined && now - s.episode.goodSinceMs >= this.section.staleAfterMs) s.episode = undefined;
    const episode = (s.episode ??= { causes: new Set(), badCount: 0, recoveryLogged: false });
    episode.badCount++;
    delete episode.goodSinceMs;
    if (!episode.causes.has(kind)) {
      episode.causes.add(kind);
      this.log.warn({ source: s.name, cause: kind, problem: message }, 'device value unusable');
    }
  }

  private noteGood(s: SourceState): void {
    const episode = s.episode;
    if (!episode) return;
    const now = this.clock.now();
    episode.goodSinceMs ??= now;
    if (!episode.recoveryLogged) {
      episode.recoveryLogged = true;
      this.log.info({ source: s.name, badMessages: episode.badCount }, 'device value usable again');
    }
    if (now - episode.goodSinceMs >= this.section.staleAfterMs) s.episode = undefined;
  }

  private onMessage(topic: string, payload: Uint8Array): void {
    try {
      this.messageSeq++;
      if (topic === this.availabilityTopic) this.onAvailability(payload);
      const sources = this.byTopic.get(topic);
      if (sources) {
        const parsed = parsePayload(payload);
        const now = this.clock.now();
        for (const s of sources) {
          const decoded = decodeSource(parsed, s, topic);
          s.awaitingFresh = false;
          s.seq = this.messageSeq;
          if (decoded.ok) {
            s.value = decoded.value;
            s.atMs = now;
            delete s.problem;
            this.noteGood(s);
          } else {
            s.problem = { kind: decoded.kind, message: decoded.message };
            this.noteProblem(s, decoded.kind, decoded.message);
          }
        }
      }
      for (const p of [...this.pending]) p.onMessage();
    } catch (err) {
      // Nothing a broker sends may take the agent down.
      this.log.error({ err: err instanceof Error ? err.message : String(err), topic }, 'unexpected failure handling a device message');
    }
  }

  private onAvailability(payload: Uint8Array): void {
    const availability = this.section.availability!;
    const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8').trim();
    const online = text === availability.online ? true : text === availability.offline ? false : undefined;
    if (online === undefined) return;
    if (online !== this.online && (this.online !== undefined || !online)) {
      this.log.info({ topic: this.availabilityTopic, payload: text }, online ? 'device says it is online' : 'device says it is offline');
    }
    this.online = online;
  }

  /** The problem of a source now, or undefined when its value is usable. Stable for one cause. */
  private problemOf(s: SourceState, now: number): { kind: ProblemKind | 'none-yet'; message: string } | undefined {
    if (s.awaitingFresh) {
      return { kind: 'none-yet', message: this.wasConnected && s.atMs !== undefined ? `no message on ${s.topic} since reconnecting` : `no message on ${s.topic} yet` };
    }
    if (s.problem) return s.problem;
    if (s.value === undefined || s.atMs === undefined) return { kind: 'none-yet', message: `no message on ${s.topic} yet` };
    if (now - s.atMs > this.section.staleAfterMs) {
      return { kind: 'stale', message: `stale: no message on ${s.topic} for more than ${Math.round(this.section.staleAfterMs / 1000)} s (last at ${new Date(s.atMs).toISOString()})` };
    }
    return undefined;
  }

  async read(): Promise<SourceSnapshot> {
    if (!this.client || !this.ready) {
      throw new DisconnectedError(`${this.describe()}: not connected to the broker${this.lastConnectionError ? ` (${this.lastConnectionError})` : ''}`);
    }
    if (this.online === false) throw new DisconnectedError(`${this.describe()}: the device says it is offline (${this.availabilityTopic} = ${this.section.availability!.offline})`);
    const now = this.clock.now();
    const snapshot: SourceSnapshot = { values: {}, problems: {} };
    let usable = 0;
    for (const s of this.sources) {
      const problem = this.problemOf(s, now);
      if (problem) {
        snapshot.problems[s.name] = problem.message;
        if (problem.kind === 'stale') this.noteProblem(s, 'stale', problem.message);
      } else {
        snapshot.values[s.name] = s.value!;
        usable++;
      }
    }
    if (usable === 0) {
      const reasons = [...new Set(Object.values(snapshot.problems))];
      throw new StaleDataError(`${this.describe()}: no usable value: ${reasons.join('; ')}`);
    }
    return snapshot;
  }

  async act(name: string, value: SourceValue): Promise<void> {
    const action: MqttAction | undefined = Object.hasOwn(this.section.actions, name) ? this.section.actions[name] : undefined;
    if (!action) throw new NotSupportedError(`${this.describe()}: the profile has no action "${name}"`);
    const client = this.client;
    if (!client || !this.ready) throw new DisconnectedError(`${this.describe()}: not connected to the broker; ${name} not sent`);
    const topic = this.topic(action.topic);
    const payload = action.payload.replaceAll('{value}', String(value));
    const confirm = action.confirm;
    const confirmSource = confirm ? this.byName.get(confirm.source) : undefined;
    if (confirm && !confirmSource) throw new NotSupportedError(`${this.describe()}: action ${name} is confirmed by an unknown source "${confirm.source}"`);
    const expected: SourceValue = confirm?.values && Object.hasOwn(confirm.values, String(value)) ? confirm.values[String(value)]! : value;
    const timeoutMs = confirm?.timeoutMs ?? DEFAULT_ACK_TIMEOUT_MS;
    const what = `${this.describe()}: ${name} (${payload} on ${topic})`;
    const seqAtSend = this.messageSeq;

    await new Promise<void>((resolve, reject) => {
      let acked = false;
      let settled = false;
      let messageId: number | undefined;
      const shows = () => confirmSource !== undefined && confirmSource.seq > seqAtSend && confirmSource.problem === undefined && confirmSource.value === expected;
      const finish = (err?: Error) => {
        if (settled) return;
        settled = true;
        this.clock.clearTimeout(timer);
        this.pending.delete(command);
        // Withdraw a command the broker has not taken, so that it is not re-sent after a reconnect.
        if (err && !acked && messageId !== undefined) client.removeOutgoingMessage(messageId);
        if (err) reject(err);
        else resolve();
      };
      const check = () => {
        if (acked && (!confirm || shows())) finish();
      };
      const command: PendingCommand = {
        onMessage: check,
        onClose: () => {
          if (!acked) finish(new DisconnectedError(`${what}: the connection to the broker was lost before it took the command`));
        },
        onStop: () => finish(new DisconnectedError(`${what}: the transport stopped`)),
      };
      const timer = this.clock.setTimeout(() => {
        finish(
          new TimeoutError(
            acked ? `${what}: the device did not show ${confirm!.source} = ${String(expected)} within ${timeoutMs} ms` : `${what}: the broker did not acknowledge the command within ${timeoutMs} ms`,
            timeoutMs,
          ),
        );
      }, timeoutMs);
      this.pending.add(command);
      const lastIdBefore = client.getLastMessageId();
      client.publish(topic, payload, { qos: action.qos, retain: action.retain }, (err) => {
        if (settled) return;
        if (err) {
          finish(new DisconnectedError(`${what}: not sent: ${err.message}`));
          return;
        }
        acked = true;
        check();
      });
      // mqtt.js allocates the id synchronously unless the publish was queued behind its store.
      if (action.qos > 0 && client.getLastMessageId() !== lastIdBefore) messageId = client.getLastMessageId();
    });
  }
}
