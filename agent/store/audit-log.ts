/**
 * The dispatch audit log (schema step 4, table `dispatch_audit`): one row per order received (its raw
 * bytes, the recovered signer, the verdict and reason), per decision of the order book (accepted,
 * superseded, cancelled, started, completed, aborted), per setpoint the dispatcher wrote, and per
 * status the broker acknowledged. Each call writes one row; outside a transaction it is its own
 * commit (fsynced), inside the order book's transaction it commits with the decision.
 *
 * `flexgate orders --id` prints an order's trail from here.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { Clock } from '../../drivers/clock.js';
import type { SetpointAudit } from '../dispatch/types.js';
import type { Address, Hex } from '../../ledger-client/wire.js';

/** The most of a received payload the log keeps (PROTOCOL.md §1's limit; anything longer is MALFORMED). */
export const AUDIT_RAW_MAX_BYTES = 16 * 1024;

export type DecisionKind = 'accepted' | 'superseded' | 'cancelled' | 'started' | 'completed' | 'aborted';
export type AuditKind = 'received' | DecisionKind | 'setpoint' | 'status_sent';

/** One row of the log, as read back. */
export interface AuditEntry {
  readonly id: number;
  readonly atMs: number;
  readonly kind: AuditKind;
  readonly orderId: Hex | undefined;
  readonly modification: number | undefined;
  readonly orderKey: string | undefined;
  /** received: the payload (at most AUDIT_RAW_MAX_BYTES of it) and its full size. */
  readonly raw: Buffer | undefined;
  readonly rawBytes: number | undefined;
  readonly signer: Address | undefined;
  readonly verdict: 'accepted' | 'rejected' | undefined;
  /** received: 0 when accepted, else the rejection reason; status_sent: the status's reason. */
  readonly reason: number | undefined;
  /** status_sent: the status code. */
  readonly status: number | undefined;
  readonly deliveredWh: number | undefined;
  /** setpoint: the device, what was written, the value, whether the device confirmed it. */
  readonly deviceId: string | undefined;
  readonly what: string | undefined;
  readonly value: number | undefined;
  readonly ok: boolean | undefined;
  /** Free text or JSON: the rejection detail, the decision's facts, the setpoint's error. */
  readonly detail: string | undefined;
}

interface AuditRow {
  id: number;
  at_ms: number;
  kind: AuditKind;
  order_id: string | null;
  modification: number | null;
  order_key: string | null;
  raw: Buffer | null;
  raw_bytes: number | null;
  signer: string | null;
  verdict: 'accepted' | 'rejected' | null;
  reason: number | null;
  status: number | null;
  delivered_wh: number | null;
  device_id: string | null;
  what: string | null;
  value: number | null;
  ok: number | null;
  detail: string | null;
}

function splitKey(orderKey: string | undefined): { orderId: string | null; modification: number | null } {
  if (orderKey === undefined) return { orderId: null, modification: null };
  const colon = orderKey.lastIndexOf(':');
  if (colon < 0) return { orderId: orderKey.toLowerCase(), modification: null };
  const modification = Number(orderKey.slice(colon + 1));
  return { orderId: orderKey.slice(0, colon).toLowerCase(), modification: Number.isSafeInteger(modification) ? modification : null };
}

export class AuditLog implements SetpointAudit {
  private readonly insert: BetterSqlite3.Statement;

  constructor(
    private readonly db: BetterSqlite3.Database,
    private readonly clock: Clock,
  ) {
    this.insert = db.prepare(
      `INSERT INTO dispatch_audit (at_ms, kind, order_id, modification, order_key, raw, raw_bytes, signer, verdict, reason, status, delivered_wh, device_id, what, value, ok, detail)
       VALUES (@atMs, @kind, @orderId, @modification, @orderKey, @raw, @rawBytes, @signer, @verdict, @reason, @status, @deliveredWh, @deviceId, @what, @value, @ok, @detail)`,
    );
  }

  private write(row: Partial<Record<string, unknown>> & { kind: AuditKind; atMs: number }): void {
    this.insert.run({
      orderId: null,
      modification: null,
      orderKey: null,
      raw: null,
      rawBytes: null,
      signer: null,
      verdict: null,
      reason: null,
      status: null,
      deliveredWh: null,
      deviceId: null,
      what: null,
      value: null,
      ok: null,
      detail: null,
      ...row,
    });
  }

  /** A message arrived on the order topic; `reason` 0 when accepted. */
  received(entry: {
    atMs: number;
    raw: Uint8Array;
    signer: string | undefined;
    orderId: string | undefined;
    modification: number | undefined;
    verdict: 'accepted' | 'rejected';
    reason: number;
    detail?: string | undefined;
  }): void {
    const kept = entry.raw.byteLength > AUDIT_RAW_MAX_BYTES ? entry.raw.subarray(0, AUDIT_RAW_MAX_BYTES) : entry.raw;
    this.write({
      kind: 'received',
      atMs: entry.atMs,
      orderId: entry.orderId?.toLowerCase() ?? null,
      modification: entry.modification ?? null,
      orderKey: entry.orderId !== undefined && entry.modification !== undefined ? `${entry.orderId.toLowerCase()}:${entry.modification}` : null,
      raw: Buffer.from(kept.buffer, kept.byteOffset, kept.byteLength),
      rawBytes: entry.raw.byteLength,
      signer: entry.signer?.toLowerCase() ?? null,
      verdict: entry.verdict,
      reason: entry.reason,
      detail: entry.detail ?? null,
    });
  }

  /** A decision of the order book about one version (`orderKey` = orderId:modification). */
  decision(kind: DecisionKind, orderKey: string, atMs: number, facts: Record<string, unknown> = {}): void {
    this.write({ kind, atMs, orderKey, ...splitKey(orderKey), detail: JSON.stringify(facts) });
  }

  /**
   * The dispatcher wrote a setpoint (`what`, e.g. `setPowerW`, with `value`) to a device for an
   * order (or, with no order key, while restoring a device); `ok` = the device confirmed it.
   */
  setpoint(orderKey: string | undefined, deviceId: string, what: string, value: number, ok: boolean, error?: string): void {
    this.write({
      kind: 'setpoint',
      atMs: this.clock.now(),
      ...(orderKey === undefined ? {} : { orderKey, ...splitKey(orderKey) }),
      deviceId,
      what,
      value,
      ok: ok ? 1 : 0,
      detail: error ?? null,
    });
  }

  /** The broker acknowledged (PUBACK) a status. */
  statusSent(entry: { atMs: number; orderId: string; modification: number; status: number; reason: number; deliveredWh: number; attempts: number }): void {
    this.write({
      kind: 'status_sent',
      atMs: entry.atMs,
      orderId: entry.orderId.toLowerCase(),
      modification: entry.modification,
      orderKey: `${entry.orderId.toLowerCase()}:${entry.modification}`,
      status: entry.status,
      reason: entry.reason,
      deliveredWh: entry.deliveredWh,
      detail: JSON.stringify({ attempts: entry.attempts }),
    });
  }

  /** Every row about an orderId (all its versions, CANCELs and rejections that named it), oldest first. */
  trail(orderId: string): AuditEntry[] {
    return readAuditTrail(this.db, orderId);
  }

  /** The newest rows of the log (all kinds), newest first. */
  recent(limit: number): AuditEntry[] {
    return (this.db.prepare('SELECT * FROM dispatch_audit ORDER BY id DESC LIMIT ?').all(limit) as AuditRow[]).map(toEntry);
  }
}

/** Read-only access to the log, for a read-only connection (`flexgate orders`). */
export function readAuditTrail(db: BetterSqlite3.Database, orderId: string): AuditEntry[] {
  return (db.prepare('SELECT * FROM dispatch_audit WHERE order_id = ? ORDER BY id').all(orderId.toLowerCase()) as AuditRow[]).map(toEntry);
}

function toEntry(r: AuditRow): AuditEntry {
  return {
    id: r.id,
    atMs: r.at_ms,
    kind: r.kind,
    orderId: (r.order_id ?? undefined) as Hex | undefined,
    modification: r.modification ?? undefined,
    orderKey: r.order_key ?? undefined,
    raw: r.raw ?? undefined,
    rawBytes: r.raw_bytes ?? undefined,
    signer: (r.signer ?? undefined) as Address | undefined,
    verdict: r.verdict ?? undefined,
    reason: r.reason ?? undefined,
    status: r.status ?? undefined,
    deliveredWh: r.delivered_wh ?? undefined,
    deviceId: r.device_id ?? undefined,
    what: r.what ?? undefined,
    value: r.value ?? undefined,
    ok: r.ok === null ? undefined : r.ok === 1,
    detail: r.detail ?? undefined,
  };
}
