/**
 * The order book (PROTOCOL.md §3): verifies each order received, keeps the accepted versions and
 * their lifecycle in the store, and tells the dispatcher which orders are active. Everything here
 * runs inside the control loop (the MQTT callback only queues the bytes; see intake.ts).
 *
 * One decision = one SQLite transaction (synchronous = FULL, so fsynced at commit): the raised
 * sequence (every order that passed checks 1–6), the audit rows, the order rows and the signed
 * statuses. Statuses are published only after it commits, and the dispatcher sees an order only
 * through `activeOrders` after it commits, so nothing leaves the gateway that a power cut could undo.
 *
 * Lifecycle of a version (`orderId:modification`):
 *   accepted ──started()──▶ started ──window end──▶ completed (COMPLETED, reason 12 if safety-limited)
 *       │                     │ aborted() ─────────▶ aborted   (ABORTED, reason 11)
 *       │                     │ CANCEL ────────────▶ cancelled (CANCELLED with the CANCEL's modification)
 *       └─────────────────────┴ newer version / overlapping newer order ▶ superseded (SUPERSEDED)
 *
 * - A higher modification of the same orderId replaces the live version at once (SUPERSEDED now).
 * - A new order of the same aggregator whose window overlaps a live one takes over at its own
 *   effective start: the earlier one runs until then and gets SUPERSEDED then (at once if it would
 *   not have started by then). If the new one starts after the earlier one's end, the earlier one
 *   completes normally.
 * - The random offset (uniform in [0, randomizeMs]) is drawn once per accepted version and stored;
 *   `effectiveStartMs` = window start + offset; the window end does not move.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../drivers/clock.js';
import type { Log } from '../../drivers/log.js';
import type { Address, Hex } from '../../ledger-client/wire.js';
import type { AuditLog } from '../store/audit-log.js';
import type { DispatchStore, StoredOrder, StoredStatus } from '../store/dispatch-store.js';
import { REASONS, STATUSES } from './protocol.js';
import type { StatusOutbox } from './statuses.js';
import type { ActiveOrder, DispatchFeedback, OrderExecution, SiteSignal } from './types.js';
import { OrderVerifier, type DeltaRangeW, type OrderVerdict, type AcceptedOrder } from './verify.js';

export interface OrderBookOptions {
  store: DispatchStore;
  audit: AuditLog;
  statuses: StatusOutbox;
  clock: Clock;
  log: Log;
  /** This gateway's address. */
  gateway: string;
  /** The chain id of the orders' EIP-712 domain (dispatch.chainId, else chain.chainId). */
  chainId: number;
  /** dispatch.trustedAggregators (any case). */
  trustedAggregators: readonly string[];
  siteMaxImportW: number;
  siteMaxExportW: number;
  /** The sum of the devices' configured ranges, for SITE_DELTA's range check. */
  deltaRangeW: () => DeltaRangeW;
  /** The dispatcher's side (deliveredWh, safetyLimited); may be attached later with `attachExecution`. */
  execution?: OrderExecution;
  /** Uniform in [0, 1); default: node:crypto. Draws the random start offsets. */
  random?: () => number;
  /** Called after every committed change (an order accepted or ended, started, aborted): wake the dispatcher. */
  onChange?: () => void;
}

/** What `submit` did. */
export interface SubmitResult {
  verdict: OrderVerdict;
  /** The statuses this submission produced (stored, and handed to the status outbox). */
  statuses: StoredStatus[];
  /** Set when the decision could not be stored (nothing of it was kept, no status was sent). */
  error?: Error;
}

/** Uniform in [0, 1) with 48 random bits. */
const cryptoRandom = (): number => randomBytes(6).readUIntBE(0, 6) / 2 ** 48;

function toActive(o: StoredOrder): ActiveOrder {
  return {
    key: o.key,
    orderId: o.orderId,
    modification: o.modification,
    aggregator: o.aggregator,
    signal: o.signal as SiteSignal,
    valueW: o.valueW,
    effectiveStartMs: o.effectiveStartMs,
    endMs: o.endMs,
    rampMs: o.rampMs,
    priceMicros: o.priceMicros,
    acceptedAtMs: o.acceptedAtMs,
  };
}

export class OrderBook implements DispatchFeedback {
  readonly verifier: OrderVerifier;
  private readonly gateway: Address;
  private execution: OrderExecution | undefined;
  private live: StoredOrder[] = [];
  private readonly random: () => number;

  constructor(private readonly options: OrderBookOptions) {
    this.gateway = options.gateway.toLowerCase() as Address;
    this.execution = options.execution;
    this.random = options.random ?? cryptoRandom;
    const { store } = options;
    this.verifier = new OrderVerifier({
      chainId: options.chainId,
      gateway: this.gateway,
      trustedAggregators: options.trustedAggregators,
      siteMaxImportW: options.siteMaxImportW,
      siteMaxExportW: options.siteMaxExportW,
      deltaRangeW: options.deltaRangeW,
      clock: options.clock,
      state: {
        lastSequence: (aggregator, gateway) => store.lastSequence(aggregator, gateway),
        knownOrderId: (orderId) => store.knownOrderId(orderId),
      },
    });
    this.reload();
  }

  /** The dispatcher, once it exists (it needs the book as its DispatchFeedback). */
  attachExecution(execution: OrderExecution): void {
    this.execution = execution;
  }

  /** Live versions (accepted or started), in the order they were accepted. */
  liveOrders(): readonly StoredOrder[] {
    return this.live;
  }

  /**
   * Verifies one payload from the order topic and records the decision durably; then hands its
   * statuses to the status outbox. Never throws: a failure to store is logged and returned.
   */
  submit(raw: Uint8Array | string): SubmitResult {
    const { store, audit, statuses, clock, log } = this.options;
    const bytes = typeof raw === 'string' ? Buffer.from(raw, 'utf8') : raw;
    const nowMs = clock.now();
    let verdict: OrderVerdict | undefined;
    const recorded: StoredStatus[] = [];
    try {
      this.tick(nowMs);
      const v = this.verifier.verify(bytes, nowMs);
      verdict = v;
      store.transaction(() => {
        if (v.raisesSequence && v.order) store.raiseSequence(v.order.aggregator, this.gateway, v.order.sequence, nowMs);
        const orderId = v.ok ? v.order.orderId : v.orderId;
        const modification = v.ok ? v.order.modification : v.modification;
        audit.received({
          atMs: nowMs,
          raw: bytes,
          signer: v.ok ? v.signer : v.signer,
          orderId,
          modification,
          verdict: v.ok ? 'accepted' : 'rejected',
          reason: v.ok ? 0 : v.reason,
          detail: v.ok ? v.kind : v.detail,
        });
        if (!v.ok) {
          this.recordStatus(recorded, { orderId, modification, status: v.status, reason: v.reason, at: nowMs, deliveredWh: 0 });
        } else if (v.kind === 'cancel') {
          this.cancelIn(v, nowMs, recorded);
        } else {
          this.acceptIn(v, nowMs, recorded);
        }
      });
    } catch (err) {
      const error = err instanceof Error ? err : new Error(String(err));
      log.error({ err: error }, 'an order could not be recorded: nothing of it was kept and no status was sent');
      this.reload();
      return { verdict: verdict ?? failedVerdict(error), statuses: [], error };
    }
    if (verdict.ok) log.info({ orderId: verdict.order.orderId, modification: verdict.order.modification, kind: verdict.kind }, 'order accepted');
    else log.warn({ orderId: verdict.orderId, modification: verdict.modification, reason: verdict.reasonName, detail: verdict.detail }, 'order rejected');
    this.reload();
    statuses.kick();
    if (verdict.ok) this.options.onChange?.();
    return { verdict, statuses: recorded };
  }

  /**
   * Ends the versions whose end has come (COMPLETED, or SUPERSEDED when a newer order took over).
   * Call it every control cycle (and at `nextChangeAtMs`); `submit` calls it first. Returns how many ended.
   */
  tick(nowMs: number = this.options.clock.now()): number {
    const due = this.live.filter((o) => o.endMs <= nowMs);
    if (due.length === 0) return 0;
    const recorded: StoredStatus[] = [];
    try {
      this.options.store.transaction(() => {
        for (const o of due) this.endIn(o, o.endStatus === STATUSES.SUPERSEDED ? 'superseded' : 'completed', o.endMs, recorded);
      });
    } catch (err) {
      this.options.log.error({ err }, 'could not record the end of orders; retrying next cycle');
      this.reload();
      return 0;
    }
    this.reload();
    this.options.statuses.kick();
    this.options.onChange?.();
    return due.length;
  }

  /** The orders the dispatcher executes now: effectiveStartMs ≤ now < endMs, oldest accepted first. */
  activeOrders(nowMs: number = this.options.clock.now()): ActiveOrder[] {
    return this.live.filter((o) => o.effectiveStartMs <= nowMs && nowMs < o.endMs).map(toActive);
  }

  /** The next time an order starts or ends (unix ms), `nowMs` when one is due, or undefined. */
  nextChangeAtMs(nowMs: number = this.options.clock.now()): number | undefined {
    let next: number | undefined;
    for (const o of this.live) {
      if (o.endMs <= nowMs) return nowMs;
      if (o.effectiveStartMs > nowMs && (next === undefined || o.effectiveStartMs < next)) next = o.effectiveStartMs;
      if (next === undefined || o.endMs < next) next = o.endMs;
    }
    return next;
  }

  /** DispatchFeedback: every setpoint of the order was acknowledged → STARTED (reason 12 when cut back). */
  started(key: string, info: { atMs: number; safetyLimited: boolean }): void {
    const o = this.live.find((l) => l.key === key);
    if (!o) {
      this.options.log.warn({ key }, 'started: no live order with this key (ended, superseded or unknown); ignored');
      return;
    }
    if (o.state === 'started') return;
    const recorded: StoredStatus[] = [];
    try {
      this.options.store.transaction(() => {
        this.options.store.markStarted(key, info.atMs, info.safetyLimited);
        this.options.audit.decision('started', key, info.atMs, { safetyLimited: info.safetyLimited, randomOffsetMs: o.randomOffsetMs });
        this.recordStatus(recorded, {
          orderId: o.orderId,
          modification: o.modification,
          status: STATUSES.STARTED,
          reason: info.safetyLimited ? REASONS.SAFETY_LIMIT : 0,
          at: info.atMs,
          deliveredWh: this.deliveredWh(key),
        });
      });
    } catch (err) {
      this.options.log.error({ err, key }, 'could not record that an order started');
    }
    this.reload();
    this.options.statuses.kick();
    this.options.onChange?.();
  }

  /** DispatchFeedback: actuation failed → the order ends, ABORTED with reason 11. */
  aborted(key: string, info: { atMs: number; deliveredWh: number }): void {
    const o = this.live.find((l) => l.key === key);
    if (!o) {
      this.options.log.warn({ key }, 'aborted: no live order with this key; ignored');
      return;
    }
    const recorded: StoredStatus[] = [];
    try {
      this.options.store.transaction(() => this.endIn(o, 'aborted', info.atMs, recorded, { deliveredWh: info.deliveredWh }));
    } catch (err) {
      this.options.log.error({ err, key }, 'could not record that an order was aborted');
    }
    this.reload();
    this.options.statuses.kick();
    this.options.onChange?.();
  }

  // ---- inside a transaction ------------------------------------------------------------------

  private acceptIn(v: AcceptedOrder, nowMs: number, recorded: StoredStatus[]): void {
    const { store, audit } = this.options;
    const o = v.order;
    const windowStartMs = o.start === 0 ? nowMs : o.start;
    const windowEndMs = windowStartMs + o.durationMs;
    const randomOffsetMs = o.randomizeMs === 0 ? 0 : Math.min(o.randomizeMs, Math.floor(this.random() * (o.randomizeMs + 1)));
    const effectiveStartMs = windowStartMs + randomOffsetMs;
    const prior = v.kind === 'modification' ? store.knownOrderId(o.orderId)?.live : undefined;
    const stored = store.insertOrder({
      orderId: o.orderId,
      modification: o.modification,
      aggregator: o.aggregator,
      sequence: o.sequence,
      signal: o.signal,
      valueW: o.valueW,
      priceMicros: o.priceMicros,
      auctionId: o.auctionId,
      windowStartMs,
      windowEndMs,
      randomOffsetMs,
      effectiveStartMs,
      endMs: windowEndMs,
      endStatus: STATUSES.COMPLETED,
      rampMs: o.rampMs,
      acceptedAtMs: nowMs,
      envelope: JSON.stringify(v.envelope),
    });
    // Earlier orders of the same aggregator whose window overlaps: cut at this one's start.
    const cuts: { key: string; atMs: number }[] = [];
    const endNow: StoredOrder[] = [];
    for (const other of store.liveOrders()) {
      if (other.key === stored.key || other.orderId === o.orderId || other.aggregator !== o.aggregator) continue;
      if (!(other.windowStartMs < windowEndMs && windowStartMs < other.endMs)) continue;
      const takeoverMs = Math.max(effectiveStartMs, nowMs);
      if (takeoverMs >= other.endMs) continue; // it ends before this one takes over
      if (takeoverMs <= nowMs || takeoverMs <= other.effectiveStartMs) endNow.push(other);
      else {
        store.cutShort(other.key, takeoverMs);
        cuts.push({ key: other.key, atMs: takeoverMs });
      }
    }
    audit.decision('accepted', stored.key, nowMs, {
      signal: o.signal,
      valueW: o.valueW,
      windowStartMs,
      windowEndMs,
      randomOffsetMs,
      effectiveStartMs,
      rampMs: o.rampMs,
      sequence: o.sequence,
      ...(prior ? { replaces: prior.key } : {}),
      ...(endNow.length > 0 ? { supersedesNow: endNow.map((e) => e.key) } : {}),
      ...(cuts.length > 0 ? { takesOverAt: cuts } : {}),
    });
    this.recordStatus(recorded, { orderId: o.orderId, modification: o.modification, status: STATUSES.RECEIVED, reason: 0, at: nowMs, deliveredWh: 0 });
    if (prior) this.endIn(prior, 'superseded', nowMs, recorded, { by: stored.key });
    for (const other of endNow) this.endIn(other, 'superseded', nowMs, recorded, { by: stored.key });
  }

  private cancelIn(v: AcceptedOrder, nowMs: number, recorded: StoredStatus[]): void {
    const target = this.options.store.knownOrderId(v.order.orderId)?.live;
    // The verifier accepted the CANCEL only for a live order of this aggregator.
    if (!target) throw new Error(`CANCEL of ${v.order.orderId}: no live version (the verifier should have said UNKNOWN_ORDER)`);
    this.endIn(target, 'cancelled', nowMs, recorded, { cancelModification: v.order.modification });
  }

  private endIn(
    o: StoredOrder,
    kind: 'completed' | 'superseded' | 'cancelled' | 'aborted',
    atMs: number,
    recorded: StoredStatus[],
    extra: { deliveredWh?: number; cancelModification?: number; by?: string } = {},
  ): void {
    const deliveredWh = Math.round(extra.deliveredWh ?? this.deliveredWh(o.key));
    const safetyLimited = this.safetyLimited(o.key) || o.safetyLimited;
    this.options.store.finish(o.key, {
      state: kind,
      atMs,
      deliveredWh,
      safetyLimited,
      ...(extra.cancelModification !== undefined ? { cancelModification: extra.cancelModification } : {}),
    });
    this.options.audit.decision(kind, o.key, atMs, {
      deliveredWh,
      safetyLimited,
      ...(extra.cancelModification !== undefined ? { cancelModification: extra.cancelModification } : {}),
      ...(extra.by !== undefined ? { by: extra.by } : {}),
    });
    const status =
      kind === 'completed'
        ? { status: STATUSES.COMPLETED, reason: safetyLimited ? REASONS.SAFETY_LIMIT : 0 }
        : kind === 'superseded'
          ? { status: STATUSES.SUPERSEDED, reason: 0 }
          : kind === 'cancelled'
            ? { status: STATUSES.CANCELLED, reason: 0 }
            : { status: STATUSES.ABORTED, reason: REASONS.DEVICE_FAULT };
    this.recordStatus(recorded, {
      orderId: o.orderId,
      modification: extra.cancelModification ?? o.modification,
      ...status,
      at: atMs,
      deliveredWh,
    });
  }

  private recordStatus(recorded: StoredStatus[], status: { orderId: Hex; modification: number; status: number; reason: number; at: number; deliveredWh: number }): void {
    const s = this.options.statuses.record(status);
    if (s) recorded.push(s);
  }

  private deliveredWh(key: string): number {
    const wh = this.execution?.deliveredWh(key) ?? 0;
    return Number.isFinite(wh) ? Math.round(wh) : 0;
  }

  private safetyLimited(key: string): boolean {
    return this.execution?.safetyLimited(key) ?? false;
  }

  private reload(): void {
    try {
      this.live = this.options.store.liveOrders();
    } catch (err) {
      this.options.log.error({ err }, 'could not read the live orders');
    }
  }
}

function failedVerdict(error: Error): OrderVerdict {
  return {
    ok: false,
    reason: REASONS.MALFORMED,
    reasonName: 'MALFORMED',
    status: 253,
    detail: `not processed: ${error.message}`,
    orderId: `0x${'00'.repeat(32)}`,
    modification: 0,
    signer: undefined,
    order: undefined,
    raisesSequence: false,
  };
}
