/**
 * The Modbus bus: one connection, one request in flight, a priority queue (write > interactive >
 * poll, FIFO within a priority), a timeout on every request (injected clock), reconnect with
 * back-off, per-unit back-off, and block coalescing for `readRanges`. See README.md for the rules.
 */
import type { Clock, TimerHandle } from '../clock.js';
import {
  BackedOffError,
  BadDataError,
  DeviceError,
  DisconnectedError,
  ModbusExceptionError,
  TimeoutError,
} from '../errors.js';
import type { Log } from '../log.js';
import { mapWireError } from './map-error.js';
import { joinsInside, MAX_READ_REGISTERS, planReads, sliceRanges, type ReadBlock } from './plan.js';
import type {
  BusStats,
  ModbusBus,
  ModbusBusOptions,
  ModbusUnit,
  ReadOptions,
  RegisterKind,
  RegisterRange,
  RequestPriority,
  UnitOptions,
  UnitStats,
  WriteOptions,
} from './types.js';
import { describeConnection, openWire, type ModbusClient, type Wire } from './wire.js';

export const DEFAULT_TIMEOUT_MS = 1000;
export const DEFAULT_CONNECT_TIMEOUT_MS = 3000;
export const DEFAULT_RECONNECT = { initialMs: 500, maxMs: 30_000 } as const;
export const DEFAULT_UNIT_BACKOFF = { failuresBeforeBackoff: 3, initialMs: 1000, maxMs: 60_000 } as const;
export const DEFAULT_RTU_QUIET_MS = 50;
/** FC16 carries at most 123 registers. */
export const MAX_WRITE_REGISTERS = 123;

const PRIORITY_INDEX: Record<RequestPriority, number> = { write: 0, interactive: 1, poll: 2 };

type Callback<T> = (err: unknown, value: T) => void;

interface Job {
  readonly unit: UnitImpl;
  readonly priority: number;
  readonly functionCode: number;
  /** e.g. "FC3 40000+10", for messages */
  readonly what: string;
  readonly timeoutMs: number;
  /** Puts the request on the wire through modbus-serial; `done` may be called late or never. */
  readonly send: (client: ModbusClient, done: Callback<unknown>) => void;
  /** Checks and converts modbus-serial's result; throws BadDataError when it cannot be right. */
  readonly decode: (raw: unknown) => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  readonly signal: AbortSignal | undefined;
  onAbort?: () => void;
  /** Waiting for a connection: fails with DisconnectedError when this fires. */
  waitTimer?: TimerHandle;
  /** This request is the one probe of a backed-off unit. */
  probe: boolean;
}

interface ResolvedBackoff {
  failuresBeforeBackoff: number;
  initialMs: number;
  maxMs: number;
}

function positiveInt(name: string, value: number, min = 1): number {
  if (!Number.isInteger(value) || value < min) throw new RangeError(`${name} must be an integer ≥ ${min}, got ${value}`);
  return value;
}

function emptyBusStats(): BusStats {
  return { transactions: 0, timeouts: 0, exceptions: 0, reconnects: 0, badFrames: 0, disconnects: 0, backedOffRejections: 0, connectFailures: 0 };
}

export function createModbusBus(options: ModbusBusOptions): ModbusBus {
  return new Bus(options);
}

class Bus implements ModbusBus {
  readonly label: string;
  readonly clock: Clock;
  readonly log: Log;
  readonly isRtu: boolean;
  readonly timeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly reconnectInitialMs: number;
  readonly reconnectMaxMs: number;
  readonly unitBackoff: ResolvedBackoff;
  readonly rtuQuietMs: number;
  private readonly counters = emptyBusStats();
  private readonly units = new Map<number, UnitImpl>();
  private readonly queues: Job[][] = [[], [], []];

  private lifecycle: 'idle' | 'running' | 'stopped' = 'idle';
  private wire: Wire | undefined;
  /** Aborts connecting and the current wire's waits; renewed per start. */
  private lifetime = new AbortController();
  /** The lifetime a connect attempt is running for (one attempt at a time per lifetime). */
  private connectingFor: AbortController | undefined;
  private everConnected = false;
  private reconnectDelayMs: number;
  private reconnectTimer: TimerHandle | undefined;
  private reconnectNow = false;
  /** Why the last connect attempt failed (refused, no such serial device, ...), for error messages. */
  private lastConnectError: string | undefined;
  private firstAttempt: Promise<void> | undefined;
  private stopping: Promise<void> | undefined;
  /** A request is on the wire, or the wire is being prepared for the next one. */
  private busy = false;
  private current: { job: Job; finish: (err: unknown, value?: unknown) => void } | undefined;

  constructor(readonly options: ModbusBusOptions) {
    this.label = describeConnection(options.connection);
    this.isRtu = 'rtu' in options.connection;
    this.clock = options.clock;
    this.log = options.log.child({ module: 'modbus', bus: this.label });
    this.timeoutMs = positiveInt('timeoutMs', options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    this.connectTimeoutMs = positiveInt('connectTimeoutMs', options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS);
    this.reconnectInitialMs = positiveInt('reconnect.initialMs', options.reconnect?.initialMs ?? DEFAULT_RECONNECT.initialMs);
    this.reconnectMaxMs = Math.max(this.reconnectInitialMs, options.reconnect?.maxMs ?? DEFAULT_RECONNECT.maxMs);
    this.reconnectDelayMs = this.reconnectInitialMs;
    this.unitBackoff = resolveBackoff(options.unitBackoff, DEFAULT_UNIT_BACKOFF);
    this.rtuQuietMs = positiveInt('rtuQuietMs', options.rtuQuietMs ?? DEFAULT_RTU_QUIET_MS, 0);
  }

  get stats(): BusStats {
    return { ...this.counters };
  }

  get connected(): boolean {
    return this.wire !== undefined;
  }

  unit(unitId: number, options: UnitOptions = {}): ModbusUnit {
    const maxId = this.isRtu ? 247 : 255;
    const minId = this.isRtu ? 1 : 0;
    if (!Number.isInteger(unitId) || unitId < minId || unitId > maxId) {
      throw new RangeError(`${this.label}: unit id must be ${minId}..${maxId}, got ${unitId}`);
    }
    let unit = this.units.get(unitId);
    if (unit === undefined) {
      unit = new UnitImpl(this, unitId, options);
      this.units.set(unitId, unit);
    }
    return unit;
  }

  // ---- lifecycle -------------------------------------------------------------------------------

  start(signal?: AbortSignal): Promise<void> {
    if (this.lifecycle === 'running') return this.firstAttempt ?? Promise.resolve();
    this.lifecycle = 'running';
    this.stopping = undefined;
    this.lifetime = new AbortController();
    this.reconnectDelayMs = this.reconnectInitialMs;
    if (signal !== undefined) {
      if (signal.aborted) {
        void this.stop();
        return Promise.resolve();
      }
      const lifetime = this.lifetime.signal;
      const onAbort = () => void this.stop();
      signal.addEventListener('abort', onAbort, { once: true });
      lifetime.addEventListener('abort', () => signal.removeEventListener('abort', onAbort), { once: true });
    }
    this.firstAttempt = this.connect();
    return this.firstAttempt;
  }

  stop(): Promise<void> {
    if (this.stopping !== undefined) return this.stopping;
    const wasRunning = this.lifecycle === 'running';
    this.lifecycle = 'stopped';
    this.lifetime.abort(new DisconnectedError(`${this.label}: bus stopped`));
    if (this.reconnectTimer !== undefined) {
      this.clock.clearTimeout(this.reconnectTimer);
      this.reconnectTimer = undefined;
    }
    this.current?.finish(new DisconnectedError(`${this.label}: bus stopped`));
    for (const queue of this.queues) {
      for (const job of queue.splice(0)) this.settleQueued(job, new DisconnectedError(`${job.unit.label}: bus stopped`));
    }
    const wire = this.wire;
    this.wire = undefined;
    if (wasRunning) this.log.info({}, 'bus stopped');
    this.stopping = wire !== undefined ? wire.close() : Promise.resolve();
    return this.stopping;
  }

  private async connect(): Promise<void> {
    const lifetime = this.lifetime;
    if (this.connectingFor === lifetime || this.lifecycle !== 'running') return;
    this.connectingFor = lifetime;
    try {
      const wire = await openWire(this.options.connection, {
        clock: this.clock,
        log: this.log,
        connectTimeoutMs: this.connectTimeoutMs,
        rtuQuietMs: this.rtuQuietMs,
        signal: lifetime.signal,
        onLost: (lost, error) => this.onLost(lost, error),
        onBadFrame: (from, error) => {
          if (this.wire === from) this.current?.finish(error);
        },
      });
      if (this.lifecycle !== 'running' || lifetime.signal.aborted) {
        await wire.close();
        return;
      }
      this.wire = wire;
      this.lastConnectError = undefined;
      if (this.everConnected) this.counters.reconnects++;
      this.everConnected = true;
      this.reconnectDelayMs = this.reconnectInitialMs;
      this.log.info({}, 'connected');
      for (const queue of this.queues) for (const job of queue) this.clearWait(job);
      this.pump();
    } catch (error) {
      if (this.lifecycle !== 'running' || lifetime.signal.aborted) return;
      this.counters.connectFailures++;
      this.lastConnectError = error instanceof Error ? error.message : String(error);
      this.log.warn({ err: error instanceof Error ? error.message : String(error), retryInMs: this.reconnectDelayMs }, 'connect failed');
      this.scheduleReconnect();
    } finally {
      if (this.connectingFor === lifetime) this.connectingFor = undefined;
    }
  }

  private scheduleReconnect(): void {
    if (this.lifecycle !== 'running' || this.reconnectTimer !== undefined) return;
    // A connection we dropped ourselves (its byte stream could not be trusted) is reopened at once:
    // the device is there, and its neighbours on the bus must not wait for a back-off.
    const immediate = this.reconnectNow;
    this.reconnectNow = false;
    const delayMs = immediate ? 0 : this.reconnectDelayMs;
    if (!immediate) this.reconnectDelayMs = Math.min(delayMs * 2, this.reconnectMaxMs);
    this.reconnectTimer = this.clock.setTimeout(() => {
      this.reconnectTimer = undefined;
      void this.connect();
    }, delayMs);
  }

  private onLost(wire: Wire, error: DisconnectedError): void {
    if (this.wire !== wire) return;
    this.wire = undefined;
    this.log.warn({ err: error.message, retryInMs: this.reconnectDelayMs }, 'connection lost');
    this.current?.finish(error);
    void wire.close();
    for (const queue of this.queues) for (const job of queue) this.startWait(job);
    this.scheduleReconnect();
  }

  /** Drops a connection whose byte stream can no longer be trusted and reopens it at once. */
  private drop(wire: Wire, reason: string): void {
    this.reconnectNow = true;
    this.onLost(wire, new DisconnectedError(`${this.label}: ${reason}`));
  }

  // ---- queue -------------------------------------------------------------------------------------

  submit<T>(
    unit: UnitImpl,
    spec: { priority: RequestPriority; functionCode: number; what: string; signal: AbortSignal | undefined; send: (client: ModbusClient, done: Callback<unknown>) => void; decode: (raw: unknown) => T },
  ): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (this.lifecycle !== 'running') {
        this.counters.disconnects++;
        reject(new DisconnectedError(`${unit.label}: bus ${this.lifecycle === 'idle' ? 'not started' : 'stopped'}`));
        return;
      }
      if (spec.signal?.aborted) {
        reject(spec.signal.reason);
        return;
      }
      const admission = unit.admit();
      if (admission instanceof BackedOffError) {
        this.counters.backedOffRejections++;
        unit.counters.backedOffRejections++;
        reject(admission);
        return;
      }
      const job: Job = {
        unit,
        priority: PRIORITY_INDEX[spec.priority],
        functionCode: spec.functionCode,
        what: spec.what,
        timeoutMs: unit.timeoutMs,
        send: spec.send,
        decode: spec.decode,
        resolve: resolve as (value: unknown) => void, // `decode` produced a T
        reject,
        signal: spec.signal,
        probe: admission.probe,
      };
      if (job.signal !== undefined) {
        const signal = job.signal;
        job.onAbort = () => this.abortQueued(job, signal.reason);
        signal.addEventListener('abort', job.onAbort, { once: true });
      }
      this.queues[job.priority]!.push(job);
      if (this.wire === undefined) this.startWait(job);
      this.pump();
    });
  }

  private startWait(job: Job): void {
    if (job.waitTimer !== undefined) return;
    job.waitTimer = this.clock.setTimeout(() => {
      job.waitTimer = undefined;
      if (this.removeQueued(job)) {
        this.counters.disconnects++;
        const why = this.lastConnectError ? ` (last connect attempt: ${this.lastConnectError})` : '';
        this.settleQueued(job, new DisconnectedError(`${job.unit.label}: ${job.what}: not connected within ${job.timeoutMs} ms${why}`));
      }
    }, job.timeoutMs);
  }

  private clearWait(job: Job): void {
    if (job.waitTimer !== undefined) {
      this.clock.clearTimeout(job.waitTimer);
      job.waitTimer = undefined;
    }
  }

  private removeQueued(job: Job): boolean {
    const queue = this.queues[job.priority]!;
    const i = queue.indexOf(job);
    if (i < 0) return false;
    queue.splice(i, 1);
    return true;
  }

  private abortQueued(job: Job, reason: unknown): void {
    if (this.removeQueued(job)) this.settleQueued(job, reason);
  }

  /** Rejects a job that never went on the wire. */
  private settleQueued(job: Job, error: unknown): void {
    this.clearWait(job);
    if (job.onAbort !== undefined) job.signal?.removeEventListener('abort', job.onAbort);
    if (job.probe) job.unit.releaseProbe();
    job.reject(error);
  }

  /** Rejects every queued request of a unit that just entered back-off. */
  rejectQueuedOf(unit: UnitImpl, error: () => BackedOffError): void {
    for (const queue of this.queues) {
      for (let i = queue.length - 1; i >= 0; i--) {
        const job = queue[i]!;
        if (job.unit !== unit) continue;
        queue.splice(i, 1);
        this.counters.backedOffRejections++;
        unit.counters.backedOffRejections++;
        this.settleQueued(job, error());
      }
    }
  }

  private pump(): void {
    if (this.busy || this.lifecycle !== 'running') return;
    const wire = this.wire;
    if (wire === undefined) return;
    if (!this.queues.some((q) => q.length > 0)) return;
    const preparing = wire.prepare();
    if (preparing !== undefined) {
      // RTU after a failure: wait for a quiet line first, then pick the most urgent request.
      this.busy = true;
      preparing.then(
        () => {
          this.busy = false;
          this.pump();
        },
        () => {
          this.busy = false;
        },
      );
      return;
    }
    const job = this.queues.find((q) => q.length > 0)!.shift()!;
    this.clearWait(job);
    if (job.onAbort !== undefined) job.signal?.removeEventListener('abort', job.onAbort);
    this.transmit(job, wire);
  }

  private transmit(job: Job, wire: Wire): void {
    this.busy = true;
    this.counters.transactions++;
    job.unit.counters.transactions++;
    let done = false;
    const timer = this.clock.setTimeout(() => {
      finish(new TimeoutError(`${job.unit.label}: ${job.what}: no answer within ${job.timeoutMs} ms`, job.timeoutMs));
    }, job.timeoutMs);
    const finish = (err: unknown, value?: unknown) => {
      if (done) return; // a late answer, or the timeout after an answer: ignored
      done = true;
      this.clock.clearTimeout(timer);
      this.current = undefined;
      let checkStream = false;
      let result: unknown;
      if (err === undefined || err === null) {
        try {
          result = job.decode(value);
        } catch (decodeError) {
          err = decodeError;
        }
      }
      if (err === undefined || err === null) {
        job.unit.onAlive();
        job.resolve(result);
      } else {
        const error = mapWireError(err, { label: job.unit.label, functionCode: job.functionCode, timeoutMs: job.timeoutMs });
        checkStream = this.account(job, error, wire);
        job.reject(error);
      }
      // The bus stays busy until this microtask: modbus-serial finishes consuming the frame that
      // called us back only after we return, and the next request must see the stream's state.
      queueMicrotask(() => {
        if (checkStream && this.wire === wire && wire.afterFailure()) this.drop(wire, 'a failed request left a partial frame; reconnecting');
        this.busy = false;
        this.pump();
      });
    };
    this.current = { job, finish };
    try {
      job.send(wire.client, (err, value) => finish(err, value));
    } catch (error) {
      finish(error);
    }
  }

  /** Counts the failure and updates the unit; true when the wire's byte stream must be checked. */
  private account(job: Job, error: DeviceError, wire: Wire): boolean {
    const unit = job.unit;
    if (error instanceof TimeoutError || error instanceof BadDataError) {
      if (error instanceof TimeoutError) {
        this.counters.timeouts++;
        unit.counters.timeouts++;
      } else {
        this.counters.badFrames++;
        unit.counters.badFrames++;
      }
      unit.onFailure(job.probe, error);
      return true;
    } else if (error instanceof ModbusExceptionError) {
      this.counters.exceptions++;
      unit.counters.exceptions++;
      if (error.exceptionCode <= 3) unit.onAlive(); // a permanent answer: the device is there
      else unit.onFailure(job.probe, error);
    } else {
      // Disconnected (or anything that says nothing about the device): no verdict on the unit.
      this.counters.disconnects++;
      if (job.probe) unit.releaseProbe();
      if (error instanceof DisconnectedError && this.wire === wire && !isWireOpen(wire)) this.drop(wire, 'port not open');
    }
    return false;
  }
}

function isWireOpen(wire: Wire): boolean {
  return wire.client.isOpen;
}

function resolveBackoff(options: UnitOptions['backoff'], defaults: ResolvedBackoff): ResolvedBackoff {
  const failuresBeforeBackoff = positiveInt('backoff.failuresBeforeBackoff', options?.failuresBeforeBackoff ?? defaults.failuresBeforeBackoff);
  const initialMs = positiveInt('backoff.initialMs', options?.initialMs ?? defaults.initialMs);
  const maxMs = Math.max(initialMs, options?.maxMs ?? defaults.maxMs);
  return { failuresBeforeBackoff, initialMs, maxMs };
}

class UnitImpl implements ModbusUnit {
  readonly label: string;
  readonly timeoutMs: number;
  readonly counters = { transactions: 0, timeouts: 0, exceptions: 0, badFrames: 0, backedOffRejections: 0 };
  private readonly backoff: ResolvedBackoff;
  private readonly useFc6: boolean;
  private readonly maxGapRegisters: number;
  private readonly maxReadRegisters: number;
  /** Joins this device rejected (exception 2 on a merged read), per register kind. */
  private readonly rejectedJoins: Record<RegisterKind, Set<number>> = { holding: new Set(), input: new Set() };
  private consecutiveFailures = 0;
  /** The last real failure, so a back-off says why the unit is backed off. */
  private lastFailure: DeviceError | undefined;
  private backoffMs = 0;
  private retryAtMs = 0;
  private probeClaimed = false;

  constructor(
    private readonly bus: Bus,
    readonly unitId: number,
    options: UnitOptions,
  ) {
    this.label = `${bus.label} unit ${unitId}`;
    this.timeoutMs = positiveInt('timeoutMs', options.timeoutMs ?? bus.timeoutMs);
    this.backoff = resolveBackoff(options.backoff, bus.unitBackoff);
    this.useFc6 = options.useFc6ForSingleRegister ?? false;
    this.maxReadRegisters = maxReadOption('maxReadRegisters', options.maxReadRegisters ?? MAX_READ_REGISTERS);
    this.maxGapRegisters = positiveInt('maxGapRegisters', options.maxGapRegisters ?? 0, 0);
  }

  get stats(): UnitStats {
    return {
      ...this.counters,
      consecutiveFailures: this.consecutiveFailures,
      backoffMs: this.backoffMs,
      retryAtMs: this.backoffMs > 0 ? this.retryAtMs : 0,
    };
  }

  // ---- back-off --------------------------------------------------------------------------------

  /** Whether a request may be queued (and whether it is the probe), or the error to reject with. */
  admit(): { probe: boolean } | BackedOffError {
    if (this.backoffMs === 0) return { probe: false };
    if (this.bus.clock.now() < this.retryAtMs || this.probeClaimed) return this.backedOffError();
    this.probeClaimed = true;
    return { probe: true };
  }

  private backedOffError(): BackedOffError {
    return new BackedOffError(
      `${this.label}: backed off after ${this.consecutiveFailures} failures (last: ${this.lastFailure?.message.replace(`${this.label}: `, '') ?? 'unknown'}); next try at ${new Date(this.retryAtMs).toISOString()}`,
      this.retryAtMs,
      this.lastFailure ? { cause: this.lastFailure } : undefined,
    );
  }

  releaseProbe(): void {
    this.probeClaimed = false;
  }

  onAlive(): void {
    if (this.backoffMs > 0) this.bus.log.info({ unit: this.unitId }, 'unit answers again; back-off cleared');
    this.consecutiveFailures = 0;
    this.backoffMs = 0;
    this.retryAtMs = 0;
    this.probeClaimed = false;
  }

  onFailure(probe: boolean, error: DeviceError): void {
    this.consecutiveFailures++;
    this.lastFailure = error;
    const now = this.bus.clock.now();
    if (probe) {
      this.probeClaimed = false;
      this.backoffMs = Math.min(this.backoffMs * 2, this.backoff.maxMs);
      this.retryAtMs = now + this.backoffMs;
      this.bus.log.debug({ unit: this.unitId, backoffMs: this.backoffMs, err: error.message }, 'probe failed');
    } else if (this.backoffMs === 0 && this.consecutiveFailures >= this.backoff.failuresBeforeBackoff) {
      this.backoffMs = this.backoff.initialMs;
      this.retryAtMs = now + this.backoffMs;
      this.bus.log.warn({ unit: this.unitId, failures: this.consecutiveFailures, backoffMs: this.backoffMs, err: error.message }, 'unit backed off');
      this.bus.rejectQueuedOf(this, () => this.backedOffError());
    }
  }

  // ---- requests --------------------------------------------------------------------------------

  readRegisters(kind: RegisterKind, address: number, count: number, options: ReadOptions = {}): Promise<Uint16Array> {
    try {
      checkAddress(address, count, MAX_READ_REGISTERS);
    } catch (error) {
      return Promise.reject(error);
    }
    const functionCode = kind === 'holding' ? 3 : 4;
    const unitId = this.unitId;
    return this.bus.submit(this, {
      priority: options.priority ?? 'poll',
      functionCode,
      what: `FC${functionCode} ${address}+${count}`,
      signal: options.signal,
      send: (client, done) =>
        functionCode === 3 ? client.writeFC3(unitId, address, count, done) : client.writeFC4(unitId, address, count, done),
      decode: (raw) => {
        const data = (raw as { data?: unknown } | undefined)?.data;
        if (!Array.isArray(data) || data.length !== count) {
          throw new BadDataError(`${this.label}: FC${functionCode} ${address}+${count}: answer has ${Array.isArray(data) ? data.length : 'no'} registers`);
        }
        return Uint16Array.from(data as number[]);
      },
    });
  }

  async readRanges(kind: RegisterKind, ranges: readonly RegisterRange[], options: ReadOptions = {}): Promise<Uint16Array[]> {
    const maxGapRegisters = options.maxGapRegisters ?? this.maxGapRegisters;
    if (!Number.isInteger(maxGapRegisters) || maxGapRegisters < 0) {
      throw new RangeError(`${this.label}: maxGapRegisters must be an integer ≥ 0, got ${maxGapRegisters}`);
    }
    const maxReadRegisters = Math.min(this.maxReadRegisters, maxReadOption('maxReadRegisters', options.maxReadRegisters ?? this.maxReadRegisters));
    if (ranges.length === 0) return [];
    const forbidden = this.rejectedJoins[kind];
    const read = new Map<string, Uint16Array>();
    const key = (b: ReadBlock) => `${b.address}+${b.count}`;
    // Each round either succeeds, fails, or learns one more rejected join: bounded by the joins.
    for (;;) {
      const blocks = planReads(ranges, { forbidden, maxGapRegisters, maxRegisters: maxReadRegisters });
      const pending = blocks.filter((b) => !read.has(key(b)));
      const results = await Promise.allSettled(pending.map((b) => this.readRegisters(kind, b.address, b.count, options)));
      let learned = false;
      let failure: unknown;
      results.forEach((result, i) => {
        const block = pending[i]!;
        if (result.status === 'fulfilled') {
          read.set(key(block), result.value);
          return;
        }
        const joins = isIllegalAddress(result.reason) ? joinsInside(block, ranges).filter((j) => !forbidden.has(j)) : [];
        if (joins.length > 0) {
          // Bisect: forbid the middle join; if the halves still fail, the next round splits further.
          const join = joins[joins.length >> 1]!;
          forbidden.add(join);
          learned = true;
          this.bus.log.info({ unit: this.unitId, kind, join, block }, 'device rejected a merged read; not joining there again');
        } else {
          failure ??= result.reason;
        }
      });
      if (failure !== undefined) throw failure;
      if (!learned) return sliceRanges(ranges, blocks, blocks.map((b) => read.get(key(b))!));
    }
  }

  readCoils(address: number, count: number, options: ReadOptions = {}): Promise<boolean[]> {
    try {
      checkAddress(address, count, 2000);
    } catch (error) {
      return Promise.reject(error);
    }
    const unitId = this.unitId;
    return this.bus.submit(this, {
      priority: options.priority ?? 'poll',
      functionCode: 1,
      what: `FC1 ${address}+${count}`,
      signal: options.signal,
      send: (client, done) => client.writeFC1(unitId, address, count, done),
      decode: (raw) => {
        const data = (raw as { data?: unknown } | undefined)?.data;
        // modbus-serial returns whole bytes of bits: the first `count` are the coils asked for.
        if (!Array.isArray(data) || data.length < count) {
          throw new BadDataError(`${this.label}: FC1 ${address}+${count}: answer has ${Array.isArray(data) ? data.length : 'no'} coils`);
        }
        return (data as unknown[]).slice(0, count).map((b) => b === true);
      },
    });
  }

  writeCoil(address: number, value: boolean, options: WriteOptions = {}): Promise<void> {
    try {
      checkAddress(address, 1, 1);
    } catch (error) {
      return Promise.reject(error);
    }
    const unitId = this.unitId;
    const what = `FC5 ${address}=${value ? 'on' : 'off'}`;
    return this.bus.submit(this, {
      priority: 'write',
      functionCode: 5,
      what,
      signal: options.signal,
      send: (client, done) => client.writeFC5(unitId, address, value, done),
      decode: (raw) => {
        const echo = raw as { address?: unknown; state?: unknown } | undefined;
        if (echo?.address !== address || echo?.state !== value) {
          throw new BadDataError(`${this.label}: ${what}: the answer does not echo the request (${JSON.stringify(echo)})`);
        }
      },
    });
  }

  writeRegisters(address: number, values: readonly number[], options: WriteOptions = {}): Promise<void> {
    try {
      checkAddress(address, values.length, MAX_WRITE_REGISTERS);
      for (const v of values) {
        if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`${this.label}: register value ${v} is not 0..65535`);
      }
    } catch (error) {
      return Promise.reject(error);
    }
    const unitId = this.unitId;
    const copy = [...values];
    if (options.functionCode === 6 && copy.length !== 1) return Promise.reject(new RangeError(`${this.label}: FC6 writes exactly one register, not ${copy.length}`));
    const single = options.functionCode !== undefined ? options.functionCode === 6 : this.useFc6 && copy.length === 1;
    const functionCode = single ? 6 : 16;
    const what = `FC${functionCode} ${address}+${copy.length}`;
    return this.bus.submit(this, {
      priority: 'write',
      functionCode,
      what,
      signal: options.signal,
      send: (client, done) => (single ? client.writeFC6(unitId, address, copy[0]!, done) : client.writeFC16(unitId, address, copy, done)),
      decode: (raw) => {
        const echo = raw as { address?: unknown; value?: unknown; length?: unknown } | undefined;
        const ok = single ? echo?.address === address && echo?.value === copy[0] : echo?.address === address && echo?.length === copy.length;
        if (!ok) throw new BadDataError(`${this.label}: ${what}: the answer does not echo the request (${JSON.stringify(echo)})`);
      },
    });
  }
}

function maxReadOption(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > MAX_READ_REGISTERS) throw new RangeError(`${name} must be an integer 1..${MAX_READ_REGISTERS}, got ${value}`);
  return value;
}

function checkAddress(address: number, count: number, max: number): void {
  if (!Number.isInteger(address) || address < 0 || address > 0xffff) throw new RangeError(`register address ${address} is not 0..65535`);
  if (!Number.isInteger(count) || count < 1 || count > max) throw new RangeError(`register count ${count} is not 1..${max}`);
  if (address + count > 0x10000) throw new RangeError(`registers ${address}+${count} run past 65535`);
}

function isIllegalAddress(error: unknown): boolean {
  return error instanceof ModbusExceptionError && error.exceptionCode === 2;
}
