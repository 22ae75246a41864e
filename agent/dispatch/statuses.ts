/**
 * OrderStatus messages (PROTOCOL.md §3): signed with the gateway key (EIP-712, the dispatch chain
 * id), at most one per (orderId, modification, status), stored BEFORE they are published, published
 * at QoS 1 on `flex/v1/gw/{gateway}/ack` one after the other in the order they were made, marked
 * sent on the broker's PUBACK, and published again after an uplink outage (on reconnect) and every
 * `resendMs` until then.
 *
 * `record` runs inside the order book's transaction: the status (its message fields) commits with
 * the decision. It is signed when it is published and the envelope is stored with the PUBACK: the
 * signature (RFC 6979, deterministic) is a function of the stored message and the gateway key, so
 * nothing is lost by signing later, and the ~1 ms a signature costs on a gateway is not spent
 * between an order and its device writes. Publishing starts after the task that recorded the status
 * (`kick` defers it with setImmediate), so the dispatcher's writes for an order go out first;
 * it runs outside the control loop (timers and the uplink's connect event) and only touches the
 * store to mark a status sent (with its envelope).
 *
 * Delivery is at least once: a status whose PUBACK was lost is published again, byte for byte the
 * same, and the aggregator drops the repeat by (orderId, modification, status).
 */
import type { Clock, TimerHandle } from '../../drivers/clock.js';
import type { Log } from '../../drivers/log.js';
import { signEnvelope, type Envelope, type OrderStatus } from '../../ledger-client/eip712.js';
import type { Address, Hex } from '../../ledger-client/wire.js';
import type { AuditLog } from '../store/audit-log.js';
import type { DispatchStore, StoredStatus } from '../store/dispatch-store.js';

/** What the status outbox needs of the uplink (agent/uplink.ts `Uplink.statusTransport()`). */
export interface StatusTransport {
  readonly connected: boolean;
  /** Publishes on the ack topic at QoS 1; resolves on PUBACK, rejects when the publish fails. */
  publishStatus(payload: string): Promise<void>;
  /** `listener` runs after every (re)connect; returns a function that removes it. */
  onConnect(listener: () => void): () => void;
}

/** Signs an OrderStatus into its envelope. */
export type StatusSigner = (status: OrderStatus) => Envelope<'OrderStatus'>;

export interface StatusOutboxOptions {
  store: DispatchStore;
  audit: AuditLog;
  /** This gateway's address (the `gateway` of every status). */
  gateway: Address;
  /** The gateway key. Not needed when `sign` is given. */
  privateKey?: Hex;
  /** The chain id of the EIP-712 domain (config: dispatch.chainId, else chain.chainId). */
  chainId: number;
  clock: Clock;
  log: Log;
  /** dispatch.statusResendMs: statuses without a PUBACK are published again this often. */
  resendMs: number;
  /** How long one publish may wait for its PUBACK before the pass gives up until the next; default resendMs. */
  ackTimeoutMs?: number;
  transport?: StatusTransport;
  /** Default: EIP-712 with `privateKey` on `chainId`. Tests may wrap it (e.g. to count signatures). */
  sign?: StatusSigner;
  /**
   * Resolves once the decisions queued so far have run, their device writes answered (the control
   * loop's serial section is idle). A status is signed only then, so that the ~1 ms of a signature
   * never delays the next write of a decision; but never later than `maxSignHoldMs` after it was due.
   */
  whenLoopIdle?: () => Promise<unknown>;
  /** Default 250 ms. */
  maxSignHoldMs?: number;
}

export class StatusOutbox {
  private transport: StatusTransport | undefined;
  private unsubscribe: (() => void) | undefined;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private kickScheduled = false;
  private stopped = true;
  private readonly abort = new Set<() => void>();
  private readonly attempts = new Map<number, { count: number; lastMs: number }>();
  private readonly sign: StatusSigner;

  constructor(private readonly options: StatusOutboxOptions) {
    this.transport = options.transport;
    if (options.sign) {
      this.sign = options.sign;
    } else {
      const privateKey = options.privateKey;
      if (privateKey === undefined) throw new TypeError('StatusOutbox needs privateKey or sign');
      this.sign = (status) => signEnvelope(privateKey, 'OrderStatus', status, options.chainId);
    }
  }

  /**
   * Stores a status, unless one exists already for (orderId, modification, status): then nothing is
   * written and undefined is returned. Call it inside the decision's transaction; the status is
   * signed and published (by `kick`) only after that commits.
   */
  record(status: Omit<OrderStatus, 'gateway'>): StoredStatus | undefined {
    const { store } = this.options;
    if (store.hasStatus(status.orderId, status.modification, status.status)) return undefined;
    const message = this.message({ ...status, atMs: status.at });
    const id = store.insertStatus({
      orderId: message.orderId,
      modification: message.modification,
      status: message.status,
      reason: message.reason,
      atMs: message.at,
      deliveredWh: message.deliveredWh,
      payload: undefined,
      createdAtMs: this.options.clock.now(),
    });
    return id === undefined ? undefined : store.status(id);
  }

  /**
   * The signed envelope of a stored status, exactly as it is published: the stored one, or signed
   * now from the row (the same bytes every time: the signature is deterministic). It is stored with
   * the broker's PUBACK (`markStatusSent`), so signing costs no write of its own.
   */
  payload(status: StoredStatus): string {
    return status.payload ?? JSON.stringify(this.sign(this.message(status)));
  }

  private message(s: { orderId: string; modification: number; status: number; reason: number; atMs: number; deliveredWh: number }): OrderStatus {
    return {
      orderId: s.orderId.toLowerCase() as Hex,
      gateway: this.options.gateway.toLowerCase() as Address,
      modification: s.modification,
      status: s.status,
      reason: s.reason,
      at: s.atMs,
      deliveredWh: Math.round(s.deliveredWh),
    };
  }

  /** Statuses stored and not yet acknowledged by the broker. */
  get pendingCount(): number {
    return this.options.store.pendingStatusCount();
  }

  attachTransport(transport: StatusTransport): void {
    this.unsubscribe?.();
    this.transport = transport;
    this.unsubscribe = this.stopped ? undefined : transport.onConnect(() => this.kick());
  }

  /** Publishes what is pending now and after every reconnect, and retries every resendMs. */
  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    if (this.transport) this.unsubscribe = this.transport.onConnect(() => this.kick());
    this.scheduleResend();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    for (const abandon of this.abort) abandon();
    await this.running;
  }

  /**
   * Starts a publishing pass in the background (or makes the running one look again), once the
   * current task is over: an order's writes, queued by the same task, go out before any signing.
   */
  kick(): void {
    if (this.kickScheduled) return;
    this.kickScheduled = true;
    setImmediate(() => {
      this.kickScheduled = false;
      void this.flush();
    });
  }

  /**
   * Publishes the pending statuses in order, each after the previous one's PUBACK; stops at the
   * first failure (the next pass starts there). Resolves when the pass is over.
   */
  flush(): Promise<void> {
    if (this.running) {
      this.again = true;
      return this.running;
    }
    const run = (async () => {
      try {
        do {
          this.again = false;
          await this.pass();
        } while (this.again && !this.stopped);
      } catch (err) {
        this.options.log.error({ err }, 'publishing statuses failed; retrying later');
      } finally {
        this.running = undefined;
      }
    })();
    this.running = run;
    return run;
  }

  private async pass(): Promise<void> {
    const { store, audit, clock, log } = this.options;
    for (;;) {
      const batch = store.unsentStatuses(64);
      if (batch.length === 0) return;
      for (const s of batch) {
        const transport = this.transport;
        if (this.stopped || !transport?.connected) return;
        const attempt = this.attempts.get(s.id) ?? { count: 0, lastMs: 0 };
        attempt.count++;
        attempt.lastMs = clock.now();
        this.attempts.set(s.id, attempt);
        if (s.payload === undefined) await this.loopIdle();
        if (this.stopped || !transport.connected) return;
        const payload = this.payload(s);
        const outcome = await this.publishWithTimeout(transport, payload);
        if (outcome !== 'acked') {
          log.warn({ orderId: s.orderId, modification: s.modification, status: s.status, outcome }, 'status not acknowledged by the broker; it will be sent again');
          return;
        }
        const atMs = clock.now();
        // Lost in a power cut, it is only published once more (duplicates are allowed, §3).
        store.lazyTransaction(() => {
          if (store.markStatusSent(s.id, atMs, attempt.count, attempt.lastMs, payload)) {
            audit.statusSent({ atMs, orderId: s.orderId, modification: s.modification, status: s.status, reason: s.reason, deliveredWh: s.deliveredWh, attempts: attempt.count });
          }
        });
        this.attempts.delete(s.id);
      }
    }
  }

  /** `whenLoopIdle`, or `maxSignHoldMs`, whichever comes first (at once without the option). */
  private loopIdle(): Promise<void> {
    const idle = this.options.whenLoopIdle;
    if (!idle) return Promise.resolve();
    const { clock } = this.options;
    return new Promise((resolve) => {
      let timer: TimerHandle | undefined;
      const done = () => {
        if (timer !== undefined) clock.clearTimeout(timer);
        timer = undefined;
        this.abort.delete(done);
        resolve();
      };
      this.abort.add(done);
      timer = clock.setTimeout(done, this.options.maxSignHoldMs ?? 250);
      idle().then(done, done);
    });
  }

  private publishWithTimeout(transport: StatusTransport, payload: string): Promise<'acked' | 'failed' | 'timeout' | 'stopped'> {
    const { clock } = this.options;
    const timeoutMs = this.options.ackTimeoutMs ?? this.options.resendMs;
    return new Promise((resolve) => {
      let done = false;
      const finish = (outcome: 'acked' | 'failed' | 'timeout' | 'stopped') => {
        if (done) return;
        done = true;
        clock.clearTimeout(timer);
        this.abort.delete(abandon);
        resolve(outcome);
      };
      const abandon = () => finish('stopped');
      this.abort.add(abandon);
      const timer = clock.setTimeout(() => finish('timeout'), timeoutMs);
      let published: Promise<void>;
      try {
        published = transport.publishStatus(payload);
      } catch {
        finish('failed');
        return;
      }
      published.then(
        () => finish('acked'),
        () => finish('failed'),
      );
    });
  }

  private scheduleResend(): void {
    if (this.stopped) return;
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      this.kick();
      this.scheduleResend();
    }, this.options.resendMs);
  }
}
