/**
 * The MQTT side of a profile (the one place drivers use the `mqtt` library): subscribes to the
 * device's state topics, keeps the last value of every source with the time it arrived, and sends
 * commands. Values older than `staleAfterMs` are unknown; a device with nothing fresh (or that says
 * it is offline) fails its read. A payload that is not JSON, lacks a field or has the wrong type
 * makes the affected values unknown and is logged once per source and cause, not once per message.
 * Nothing a broker sends can crash it.
 */
import mqtt, { type MqttClient } from 'mqtt';
import type { Clock, TimerHandle } from '../clock.js';
import { DisconnectedError, StaleDataError, TimeoutError } from '../errors.js';
import type { Log } from '../log.js';
import type { ProfileTransport, SourceSnapshot, SourceValue } from '../profiles/transport.js';
import type { MqttSection } from './profile-schema.js';

export interface MqttProfileTransportOptions {
  section: MqttSection;
  /** The device's base topic (replaces {topic}). */
  topic: string;
  url: string;
  username?: string | undefined;
  password?: string | undefined;
  clock: Clock;
  log: Log;
  /** Default: flexgate-<base topic>-<random>. */
  clientId?: string;
}

interface SourceState {
  value?: SourceValue;
  atMs?: number;
  /** The current problem (kind: message), logged when it first appears. */
  problem?: { kind: string; message: string };
}

/** Reads `path` (a.b[0].c) out of parsed JSON; undefined when any step is missing. */
export function jsonPath(value: unknown, path: string): unknown {
  if (path === '') return value;
  let cur: unknown = value;
  for (const part of path.split('.')) {
    const m = /^([^[\]]+)((?:\[\d+\])*)$/.exec(part);
    if (!m) return undefined;
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[m[1]!];
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) {
      if (!Array.isArray(cur)) return undefined;
      cur = cur[Number(idx[1])];
    }
  }
  return cur;
}

export function createMqttProfileTransport(options: MqttProfileTransportOptions): ProfileTransport {
  return new MqttProfileTransport(options);
}

class MqttProfileTransport implements ProfileTransport {
  private client: MqttClient | undefined;
  private readonly states = new Map<string, SourceState>();
  private readonly byTopic = new Map<string, Array<{ name: string; path: string; type: 'number' | 'boolean' | 'string' }>>();
  private online: boolean | undefined;
  private refreshTimer: TimerHandle | undefined;
  private readonly waiters = new Set<() => void>();
  private stopped = false;

  constructor(private readonly options: MqttProfileTransportOptions) {
    for (const [name, source] of Object.entries(options.section.sources)) {
      const topic = this.topic(source.topic);
      const list = this.byTopic.get(topic) ?? [];
      list.push({ name, path: source.path, type: source.type });
      this.byTopic.set(topic, list);
      this.states.set(name, {});
    }
  }

  private topic(template: string): string {
    return template.replaceAll('{topic}', this.options.topic);
  }

  describe(): string {
    return `mqtt ${this.options.topic} on ${this.options.url}`;
  }

  async start(signal?: AbortSignal): Promise<void> {
    if (this.client) return;
    const { options } = this;
    const client = mqtt.connect(options.url, {
      clientId: options.clientId ?? `flexgate-${options.topic.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 40)}-${Math.random().toString(16).slice(2, 8)}`,
      clean: true,
      reconnectPeriod: 1000,
      connectTimeout: 5000,
      protocolVersion: 4,
      ...(options.username !== undefined ? { username: options.username } : {}),
      ...(options.password !== undefined ? { password: options.password } : {}),
    });
    this.client = client;
    const topics = [...this.byTopic.keys(), ...(options.section.availability ? [this.topic(options.section.availability.topic)] : [])];
    client.on('connect', () => {
      client.subscribe(topics, { qos: 1 }, (err) => {
        if (err) options.log.warn({ err: err.message }, 'could not subscribe to the device topics');
      });
      this.sendRefresh();
    });
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
    client.on('error', (err) => options.log.debug({ err: err.message }, 'mqtt error'));
    client.on('offline', () => options.log.debug({}, 'mqtt broker unreachable; retrying'));
    signal?.addEventListener('abort', () => void this.stop(), { once: true });
    this.scheduleRefresh();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.refreshTimer) this.options.clock.clearTimeout(this.refreshTimer);
    this.refreshTimer = undefined;
    const client = this.client;
    this.client = undefined;
    for (const wake of this.waiters) wake();
    if (client) await client.endAsync(true).catch(() => undefined);
  }

  private scheduleRefresh(): void {
    const refresh = this.options.section.refresh;
    if (!refresh || this.stopped) return;
    this.refreshTimer = this.options.clock.setTimeout(() => {
      this.sendRefresh();
      this.scheduleRefresh();
    }, refresh.everyMs);
  }

  private sendRefresh(): void {
    const refresh = this.options.section.refresh;
    if (refresh && this.client?.connected) this.client.publish(this.topic(refresh.topic), refresh.payload, { qos: 0 });
  }

  private setProblem(name: string, kind: string, message: string): void {
    const state = this.states.get(name);
    if (!state) return;
    state.value = undefined;
    state.atMs = this.options.clock.now();
    if (state.problem?.kind !== kind) this.options.log.warn({ source: name, problem: message }, 'device value unusable');
    state.problem = { kind, message };
  }

  private onMessage(topic: string, payload: Buffer): void {
    try {
      const availability = this.options.section.availability;
      if (availability && topic === this.topic(availability.topic)) {
        const text = payload.toString('utf8');
        this.online = text === availability.online ? true : text === availability.offline ? false : this.online;
      }
      const sources = this.byTopic.get(topic);
      if (!sources) return;
      const text = payload.toString('utf8');
      let parsed: unknown;
      let parseError: string | undefined;
      if (sources.some((s) => s.path !== '')) {
        try {
          parsed = JSON.parse(text);
        } catch {
          parseError = `payload on ${topic} is not JSON`;
        }
      }
      const now = this.options.clock.now();
      for (const s of sources) {
        let raw: unknown;
        if (s.path === '') raw = plainValue(text, s.type);
        else if (parseError) {
          this.setProblem(s.name, 'not-json', parseError);
          continue;
        } else raw = jsonPath(parsed, s.path);
        if (raw === undefined) {
          this.setProblem(s.name, 'missing', `no field "${s.path}" in the payload on ${topic}`);
          continue;
        }
        if (typeof raw !== s.type || (typeof raw === 'number' && !Number.isFinite(raw))) {
          this.setProblem(s.name, 'type', `"${s.path || 'payload'}" on ${topic} is not a ${s.type}`);
          continue;
        }
        const state = this.states.get(s.name)!;
        if (state.problem) this.options.log.info({ source: s.name }, 'device value usable again');
        state.value = raw as SourceValue;
        state.atMs = now;
        state.problem = undefined;
      }
      for (const wake of this.waiters) wake();
    } catch (err) {
      // Nothing a broker sends may take the agent down.
      this.options.log.error({ err }, 'unexpected failure handling a device message');
    }
  }

  async read(): Promise<SourceSnapshot> {
    const now = this.options.clock.now();
    const staleAfterMs = this.options.section.staleAfterMs;
    const snapshot: SourceSnapshot = { values: {}, problems: {} };
    let fresh = 0;
    for (const [name, state] of this.states) {
      if (state.problem) {
        snapshot.problems[name] = state.problem.message;
      } else if (state.value === undefined || state.atMs === undefined) {
        snapshot.problems[name] = 'no message yet';
      } else if (now - state.atMs > staleAfterMs) {
        snapshot.problems[name] = `stale: no message for ${Math.round((now - state.atMs) / 1000)} s`;
      } else {
        snapshot.values[name] = state.value;
        fresh++;
      }
    }
    if (this.online === false) throw new StaleDataError(`${this.describe()}: the device says it is offline`);
    if (fresh === 0) {
      if (!this.client?.connected) throw new DisconnectedError(`${this.describe()}: not connected to the broker`);
      const problems = [...new Set(Object.values(snapshot.problems))];
      throw new StaleDataError(`${this.describe()}: no usable value (${problems.join('; ')})`);
    }
    return snapshot;
  }

  async act(name: string, value: SourceValue): Promise<void> {
    const action = this.options.section.actions[name];
    if (!action) throw new StaleDataError(`${this.describe()}: the profile has no action "${name}"`);
    const client = this.client;
    if (!client?.connected) throw new DisconnectedError(`${this.describe()}: not connected to the broker`);
    const payload = action.payload.replaceAll('{value}', String(value));
    const sentAtMs = this.options.clock.now();
    await client.publishAsync(this.topic(action.topic), payload, { qos: action.qos, retain: action.retain });
    const confirm = action.confirm;
    if (!confirm) return;
    const expected = confirm.values?.[String(value)] ?? value;
    const state = this.states.get(confirm.source);
    const shows = () => state !== undefined && state.atMs !== undefined && state.atMs >= sentAtMs && state.value === expected;
    if (shows()) return;
    await new Promise<void>((resolve, reject) => {
      const timer = this.options.clock.setTimeout(() => {
        this.waiters.delete(check);
        reject(new TimeoutError(`${this.describe()}: ${name} ${payload}: the device did not show ${confirm.source} = ${String(expected)} within ${confirm.timeoutMs} ms`, confirm.timeoutMs));
      }, confirm.timeoutMs);
      const check = () => {
        if (this.stopped) {
          this.options.clock.clearTimeout(timer);
          this.waiters.delete(check);
          reject(new DisconnectedError(`${this.describe()}: stopped`));
        } else if (shows()) {
          this.options.clock.clearTimeout(timer);
          this.waiters.delete(check);
          resolve();
        }
      };
      this.waiters.add(check);
    });
  }
}

function plainValue(text: string, type: 'number' | 'boolean' | 'string'): unknown {
  const t = text.trim();
  if (type === 'string') return t;
  if (type === 'boolean') return t === 'true' || t === 'on' || t === '1' ? true : t === 'false' || t === 'off' || t === '0' ? false : undefined;
  const n = Number(t);
  return t !== '' && Number.isFinite(n) ? n : undefined;
}
