/**
 * The SQLite side of the order book (agent/dispatch/, PROTOCOL.md §3), schema steps 4 and 5: the
 * replay sequences, the accepted order versions, the statuses waiting for (or past) their PUBACK,
 * and the queries `flexgate orders` runs. Writes are plain statements: the order book wraps each
 * decision in ONE transaction (`transaction`), committed and fsynced (synchronous = FULL) when it
 * returns — before any status leaves the gateway or any device is written.
 *
 * Statements are prepared on first use, so a read-only connection (the CLI beside a running agent)
 * only ever prepares the SELECTs it runs.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { Address, Hex } from '../../ledger-client/wire.js';

export type OrderState = 'accepted' | 'started' | 'completed' | 'cancelled' | 'superseded' | 'aborted';
export const LIVE_ORDER_STATES: readonly OrderState[] = ['accepted', 'started'];

/** One accepted version of an order (a `dispatch_orders` row). Times are unix ms. */
export interface StoredOrder {
  /** `${orderId}:${modification}` */
  readonly key: string;
  readonly orderId: Hex;
  readonly modification: number;
  readonly aggregator: Address;
  readonly sequence: number;
  /** 1–4 (CANCEL is never stored as a version). */
  readonly signal: number;
  readonly valueW: number;
  readonly priceMicros: number;
  readonly auctionId: Hex;
  /** The window as ordered (`start` 0 resolved to the time of receipt). */
  readonly windowStartMs: number;
  readonly windowEndMs: number;
  /** Uniform in [0, randomizeMs], drawn once when this version was accepted. */
  readonly randomOffsetMs: number;
  readonly effectiveStartMs: number;
  /** The window end, or the moment a newer order of the same aggregator takes over. */
  readonly endMs: number;
  /** What the version gets at `endMs`: 3 COMPLETED, or 7 SUPERSEDED when a newer order cut it short. */
  readonly endStatus: 3 | 7;
  readonly rampMs: number;
  readonly acceptedAtMs: number;
  readonly state: OrderState;
  readonly startedAtMs: number | undefined;
  readonly endedAtMs: number | undefined;
  readonly deliveredWh: number | undefined;
  readonly safetyLimited: boolean;
  /** The CANCEL's modification, when a CANCEL ended this version. */
  readonly cancelModification: number | undefined;
  /** The envelope as received (JSON text). */
  readonly envelope: string;
}

/** A `dispatch_statuses` row: one OrderStatus (its signed envelope once it was first published). */
export interface StoredStatus {
  /** Sending order. */
  readonly id: number;
  readonly orderId: Hex;
  readonly modification: number;
  readonly status: number;
  readonly reason: number;
  readonly atMs: number;
  readonly deliveredWh: number;
  /** The signed envelope exactly as published (JSON); undefined until it is first published
   * (StatusOutbox signs it then: the signature is deterministic, a function of this row). */
  readonly payload: string | undefined;
  readonly createdAtMs: number;
  readonly attempts: number;
  readonly lastAttemptMs: number | undefined;
  /** When the broker acknowledged it (PUBACK); undefined while pending. */
  readonly sentAtMs: number | undefined;
}

/** What the gateway knows about an orderId (for REPLAY and UNKNOWN_ORDER). */
export interface KnownOrderId {
  /** The aggregator of its accepted versions. */
  readonly aggregator: Address;
  /** The highest modification accepted for it, counting CANCELs. */
  readonly modification: number;
  /** Its latest version, when that is still accepted or running. */
  readonly live: StoredOrder | undefined;
}

/** A received message as the audit log holds it, joined for `flexgate orders`. */
export interface ReceivedRow {
  readonly auditId: number;
  readonly atMs: number;
  readonly orderId: Hex | undefined;
  readonly modification: number | undefined;
  readonly signer: Address | undefined;
  readonly verdict: 'accepted' | 'rejected';
  readonly reason: number;
  readonly detail: string | undefined;
  /** The raw payload (at most 16 KiB of it). */
  readonly raw: Buffer;
  readonly rawBytes: number;
}

/** A caller's mistake against the stored state (a bug, not bad luck). */
export class DispatchStoreError extends Error {
  override readonly name = 'DispatchStoreError';
}

interface OrderRow {
  order_key: string;
  order_id: string;
  modification: number;
  aggregator: string;
  sequence: number;
  signal: number;
  value_w: number;
  price_micros: number;
  auction_id: string;
  window_start_ms: number;
  window_end_ms: number;
  random_offset_ms: number;
  effective_start_ms: number;
  end_ms: number;
  end_status: number;
  ramp_ms: number;
  accepted_at_ms: number;
  state: OrderState;
  started_at_ms: number | null;
  ended_at_ms: number | null;
  delivered_wh: number | null;
  safety_limited: number;
  cancel_modification: number | null;
  envelope: string;
}

interface StatusRow {
  id: number;
  order_id: string;
  modification: number;
  status: number;
  reason: number;
  at_ms: number;
  delivered_wh: number;
  payload: string | null;
  created_at_ms: number;
  attempts: number;
  last_attempt_ms: number | null;
  sent_at_ms: number | null;
}

function toOrder(r: OrderRow): StoredOrder {
  return {
    key: r.order_key,
    orderId: r.order_id as Hex,
    modification: r.modification,
    aggregator: r.aggregator as Address,
    sequence: r.sequence,
    signal: r.signal,
    valueW: r.value_w,
    priceMicros: r.price_micros,
    auctionId: r.auction_id as Hex,
    windowStartMs: r.window_start_ms,
    windowEndMs: r.window_end_ms,
    randomOffsetMs: r.random_offset_ms,
    effectiveStartMs: r.effective_start_ms,
    endMs: r.end_ms,
    endStatus: r.end_status === 7 ? 7 : 3,
    rampMs: r.ramp_ms,
    acceptedAtMs: r.accepted_at_ms,
    state: r.state,
    startedAtMs: r.started_at_ms ?? undefined,
    endedAtMs: r.ended_at_ms ?? undefined,
    deliveredWh: r.delivered_wh ?? undefined,
    safetyLimited: r.safety_limited === 1,
    cancelModification: r.cancel_modification ?? undefined,
    envelope: r.envelope,
  };
}

function toStatus(r: StatusRow): StoredStatus {
  return {
    id: r.id,
    orderId: r.order_id as Hex,
    modification: r.modification,
    status: r.status,
    reason: r.reason,
    atMs: r.at_ms,
    deliveredWh: r.delivered_wh,
    payload: r.payload ?? undefined,
    createdAtMs: r.created_at_ms,
    attempts: r.attempts,
    lastAttemptMs: r.last_attempt_ms ?? undefined,
    sentAtMs: r.sent_at_ms ?? undefined,
  };
}

export function orderKey(orderId: string, modification: number): string {
  return `${orderId.toLowerCase()}:${modification}`;
}

export class DispatchStore {
  private readonly statements = new Map<string, BetterSqlite3.Statement>();
  /** The connection's WAL checkpoint threshold in pages, read on first use (SQLite's default is 1000). */
  private autocheckpoint: number | undefined;

  constructor(readonly db: BetterSqlite3.Database) {}

  private stmt(sql: string): BetterSqlite3.Statement {
    let s = this.statements.get(sql);
    if (s === undefined) {
      s = this.db.prepare(sql);
      this.statements.set(sql, s);
    }
    return s;
  }

  /**
   * Runs `fn` as one IMMEDIATE transaction (a savepoint when the caller already holds one):
   * committed and fsynced when this returns, rolled back when `fn` throws.
   *
   * These commits are on an order's path to the devices, so they never run SQLite's WAL checkpoint
   * (which SQLite otherwise runs inside the commit that takes the WAL past `wal_autocheckpoint`
   * pages: copying the pages into the database and two more fsyncs, several milliseconds). A
   * checkpoint that falls due here runs at the next commit that is not on that path (a `lazyTransaction`,
   * a batch of readings). Durability is the same: the commit's own fsync of the WAL is what makes it
   * durable, not the checkpoint.
   */
  transaction<T>(fn: () => T): T {
    if (this.db.inTransaction) return this.db.transaction(fn).immediate();
    const restore = this.autocheckpointPages();
    this.db.pragma('wal_autocheckpoint = 0'); // db.pragma, not a cached statement: SQLite applies a pragma when it is prepared
    try {
      return this.db.transaction(fn).immediate();
    } finally {
      this.db.pragma(`wal_autocheckpoint = ${restore}`);
    }
  }

  /**
   * Bookkeeping that can be lost in a power cut without harm (a status the broker acknowledged, which
   * would only be sent once more; audit rows of setpoints): one transaction committed with
   * synchronous = NORMAL — durable at the next fsynced commit or WAL checkpoint, not at once — so it
   * does not hold the control loop for an fsync. A WAL checkpoint that is due runs here. Inside
   * another transaction it simply joins it.
   */
  lazyTransaction<T>(fn: () => T): T {
    if (this.db.inTransaction) return this.transaction(fn);
    this.db.pragma('synchronous = NORMAL');
    try {
      return this.db.transaction(fn).immediate();
    } finally {
      this.db.pragma('synchronous = FULL');
    }
  }

  private autocheckpointPages(): number {
    if (this.autocheckpoint === undefined) {
      const v = this.db.pragma('wal_autocheckpoint', { simple: true });
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new DispatchStoreError(`PRAGMA wal_autocheckpoint returned ${String(v)}`);
      this.autocheckpoint = v;
    }
    return this.autocheckpoint;
  }

  // ---- sequences ----------------------------------------------------------------------------

  lastSequence(aggregator: string, gateway: string): number | undefined {
    const v = this.stmt('SELECT last_sequence FROM dispatch_sequences WHERE aggregator = ? AND gateway = ?').pluck().get(aggregator.toLowerCase(), gateway.toLowerCase());
    return typeof v === 'number' ? v : undefined;
  }

  /** Raises the stored sequence to `sequence` (never lowers it). Part of the caller's transaction. */
  raiseSequence(aggregator: string, gateway: string, sequence: number, atMs: number): void {
    this.stmt(
      `INSERT INTO dispatch_sequences (aggregator, gateway, last_sequence, updated_at_ms) VALUES (?, ?, ?, ?)
       ON CONFLICT (aggregator, gateway) DO UPDATE SET last_sequence = excluded.last_sequence, updated_at_ms = excluded.updated_at_ms
       WHERE excluded.last_sequence > dispatch_sequences.last_sequence`,
    ).run(aggregator.toLowerCase(), gateway.toLowerCase(), sequence, atMs);
  }

  // ---- orders -------------------------------------------------------------------------------

  insertOrder(o: Omit<StoredOrder, 'key' | 'state' | 'startedAtMs' | 'endedAtMs' | 'deliveredWh' | 'safetyLimited' | 'cancelModification'>): StoredOrder {
    const key = orderKey(o.orderId, o.modification);
    this.stmt(
      `INSERT INTO dispatch_orders (order_key, order_id, modification, aggregator, sequence, signal, value_w, price_micros, auction_id,
         window_start_ms, window_end_ms, random_offset_ms, effective_start_ms, end_ms, end_status, ramp_ms, accepted_at_ms, state, envelope)
       VALUES (@key, @orderId, @modification, @aggregator, @sequence, @signal, @valueW, @priceMicros, @auctionId,
         @windowStartMs, @windowEndMs, @randomOffsetMs, @effectiveStartMs, @endMs, @endStatus, @rampMs, @acceptedAtMs, 'accepted', @envelope)`,
    ).run({
      key,
      orderId: o.orderId.toLowerCase(),
      modification: o.modification,
      aggregator: o.aggregator.toLowerCase(),
      sequence: o.sequence,
      signal: o.signal,
      valueW: o.valueW,
      priceMicros: o.priceMicros,
      auctionId: o.auctionId.toLowerCase(),
      windowStartMs: o.windowStartMs,
      windowEndMs: o.windowEndMs,
      randomOffsetMs: o.randomOffsetMs,
      effectiveStartMs: o.effectiveStartMs,
      endMs: o.endMs,
      endStatus: o.endStatus,
      rampMs: o.rampMs,
      acceptedAtMs: o.acceptedAtMs,
      envelope: o.envelope,
    });
    const stored = this.order(key);
    if (!stored) throw new DispatchStoreError(`order ${key} vanished right after its insert`);
    return stored;
  }

  order(key: string): StoredOrder | undefined {
    const r = this.stmt('SELECT * FROM dispatch_orders WHERE order_key = ?').get(key) as OrderRow | undefined;
    return r ? toOrder(r) : undefined;
  }

  /** Every version of an orderId, oldest first. */
  versionsOf(orderId: string): StoredOrder[] {
    return (this.stmt('SELECT * FROM dispatch_orders WHERE order_id = ? ORDER BY modification').all(orderId.toLowerCase()) as OrderRow[]).map(toOrder);
  }

  /** Versions still accepted or running, in the order they were accepted. */
  liveOrders(): StoredOrder[] {
    return (this.stmt(`SELECT * FROM dispatch_orders WHERE state IN ('accepted', 'started') ORDER BY accepted_at_ms, rowid`).all() as OrderRow[]).map(toOrder);
  }

  /** Accepted versions, newest first. */
  recentOrders(limit: number): StoredOrder[] {
    return (this.stmt('SELECT * FROM dispatch_orders ORDER BY accepted_at_ms DESC, rowid DESC LIMIT ?').all(limit) as OrderRow[]).map(toOrder);
  }

  knownOrderId(orderId: string): KnownOrderId | undefined {
    const versions = this.versionsOf(orderId);
    const latest = versions[versions.length - 1];
    if (!latest) return undefined;
    let modification = 0;
    for (const v of versions) modification = Math.max(modification, v.modification, v.cancelModification ?? 0);
    return { aggregator: latest.aggregator, modification, live: latest.state === 'accepted' || latest.state === 'started' ? latest : undefined };
  }

  /** A newer order takes over at `endMs`: this version gets SUPERSEDED then instead of COMPLETED. */
  cutShort(key: string, endMs: number): void {
    const { changes } = this.stmt(`UPDATE dispatch_orders SET end_ms = ?, end_status = 7 WHERE order_key = ? AND state IN ('accepted', 'started') AND end_ms > ?`).run(endMs, key, endMs);
    if (changes !== 1) throw new DispatchStoreError(`order ${key} is not live or already ends by ${endMs}`);
  }

  markStarted(key: string, atMs: number, safetyLimited: boolean): void {
    const { changes } = this.stmt(`UPDATE dispatch_orders SET state = 'started', started_at_ms = ?, safety_limited = max(safety_limited, ?) WHERE order_key = ? AND state = 'accepted'`).run(
      atMs,
      safetyLimited ? 1 : 0,
      key,
    );
    if (changes !== 1) throw new DispatchStoreError(`order ${key} is not waiting to start`);
  }

  /** Ends a live version. */
  finish(key: string, end: { state: 'completed' | 'cancelled' | 'superseded' | 'aborted'; atMs: number; deliveredWh: number; safetyLimited: boolean; cancelModification?: number }): void {
    const { changes } = this.stmt(
      `UPDATE dispatch_orders SET state = ?, ended_at_ms = ?, delivered_wh = ?, safety_limited = max(safety_limited, ?), cancel_modification = ?
       WHERE order_key = ? AND state IN ('accepted', 'started')`,
    ).run(end.state, end.atMs, Math.round(end.deliveredWh), end.safetyLimited ? 1 : 0, end.cancelModification ?? null, key);
    if (changes !== 1) throw new DispatchStoreError(`order ${key} is not live`);
  }

  // ---- statuses -----------------------------------------------------------------------------

  hasStatus(orderId: string, modification: number, status: number): boolean {
    return this.stmt('SELECT 1 FROM dispatch_statuses WHERE order_id = ? AND modification = ? AND status = ?').pluck().get(orderId.toLowerCase(), modification, status) !== undefined;
  }

  /** Inserts a status (signed or not yet); returns its id, or undefined when (orderId, modification, status) exists. */
  insertStatus(s: Omit<StoredStatus, 'id' | 'attempts' | 'lastAttemptMs' | 'sentAtMs'>): number | undefined {
    const { changes, lastInsertRowid } = this.stmt(
      `INSERT INTO dispatch_statuses (order_id, modification, status, reason, at_ms, delivered_wh, payload, created_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (order_id, modification, status) DO NOTHING`,
    ).run(s.orderId.toLowerCase(), s.modification, s.status, s.reason, s.atMs, s.deliveredWh, s.payload ?? null, s.createdAtMs);
    return changes === 1 ? Number(lastInsertRowid) : undefined;
  }

  /** Statuses without a PUBACK yet, in sending order. */
  unsentStatuses(limit = 100): StoredStatus[] {
    return (this.stmt('SELECT * FROM dispatch_statuses WHERE sent_at_ms IS NULL ORDER BY id LIMIT ?').all(limit) as StatusRow[]).map(toStatus);
  }

  pendingStatusCount(): number {
    return this.stmt('SELECT count(*) FROM dispatch_statuses WHERE sent_at_ms IS NULL').pluck().get() as number;
  }

  /**
   * Records the PUBACK of a status, how many times it was published (attempts are counted in
   * memory and written here, so a publish costs no write of its own) and, when the row has none yet,
   * the signed envelope that was published; false when recorded already.
   */
  markStatusSent(id: number, atMs: number, attempts: number, lastAttemptMs: number, payload?: string): boolean {
    return (
      this.stmt('UPDATE dispatch_statuses SET sent_at_ms = ?, attempts = attempts + ?, last_attempt_ms = ?, payload = coalesce(payload, ?) WHERE id = ? AND sent_at_ms IS NULL').run(
        atMs,
        attempts,
        lastAttemptMs,
        payload ?? null,
        id,
      ).changes === 1
    );
  }

  status(id: number): StoredStatus | undefined {
    const r = this.stmt('SELECT * FROM dispatch_statuses WHERE id = ?').get(id) as StatusRow | undefined;
    return r ? toStatus(r) : undefined;
  }

  statusesOf(orderId: string): StoredStatus[] {
    return (this.stmt('SELECT * FROM dispatch_statuses WHERE order_id = ? ORDER BY id').all(orderId.toLowerCase()) as StatusRow[]).map(toStatus);
  }

  allStatuses(): StoredStatus[] {
    return (this.stmt('SELECT * FROM dispatch_statuses ORDER BY id').all() as StatusRow[]).map(toStatus);
  }

  // ---- received messages (audit), for the CLI -------------------------------------------------

  /** Received messages, newest first. */
  recentReceived(limit: number): ReceivedRow[] {
    return (
      this.stmt(
        `SELECT id, at_ms, order_id, modification, signer, verdict, reason, detail, raw, raw_bytes FROM dispatch_audit
         WHERE kind = 'received' ORDER BY id DESC LIMIT ?`,
      ).all(limit) as {
        id: number;
        at_ms: number;
        order_id: string | null;
        modification: number | null;
        signer: string | null;
        verdict: 'accepted' | 'rejected';
        reason: number;
        detail: string | null;
        raw: Buffer | null;
        raw_bytes: number | null;
      }[]
    ).map((r) => ({
      auditId: r.id,
      atMs: r.at_ms,
      orderId: (r.order_id ?? undefined) as Hex | undefined,
      modification: r.modification ?? undefined,
      signer: (r.signer ?? undefined) as Address | undefined,
      verdict: r.verdict,
      reason: r.reason,
      detail: r.detail ?? undefined,
      raw: r.raw ?? Buffer.alloc(0),
      rawBytes: r.raw_bytes ?? 0,
    }));
  }
}
