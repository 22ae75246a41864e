/**
 * `flexgate orders [--config FILE] [--id ORDERID] [--limit N] [--json]`: the orders this gateway
 * received, newest first (id, aggregator, signal, value, window, state, statuses), or with --id the
 * whole audit trail of one order. Opens the store read-only, so it works beside a running agent
 * (WAL). Exit codes (PROTOCOL.md §8): 0 printed, 1 no such store or order, 2 usage (by the caller).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { systemClock } from '../../drivers/clock.js';
import { silentLog } from '../../drivers/log.js';
import type { Config } from '../config/schema.js';
import { STORE_FILE } from '../agent.js';
import { readAuditTrail, type AuditEntry } from '../store/audit-log.js';
import { DispatchStore, type ReceivedRow, type StoredOrder, type StoredStatus } from '../store/dispatch-store.js';
import { openStore, StoreError } from '../store/index.js';
import { REASON_NAMES, SIGNAL_NAMES, STATUS_NAMES } from './protocol.js';

export interface OrdersCliOptions {
  /** 0x + 64 hex: print this order's audit trail. */
  id?: string;
  /** How many received messages to list (default 20). */
  limit: number;
  json: boolean;
}

interface StatusView {
  status: number;
  name: string;
  reason: number;
  reasonName: string | null;
  at: number;
  deliveredWh: number;
  sentAtMs: number | null;
}

interface OrderView {
  receivedAtMs: number;
  orderId: string | null;
  modification: number | null;
  aggregator: string | null;
  signer: string | null;
  signal: number | null;
  signalName: string | null;
  valueW: number | null;
  windowStartMs: number | null;
  windowEndMs: number | null;
  effectiveStartMs: number | null;
  verdict: 'accepted' | 'rejected';
  reason: number;
  reasonName: string | null;
  detail: string | null;
  state: string;
  statuses: StatusView[];
}

function statusView(s: StoredStatus): StatusView {
  return {
    status: s.status,
    name: STATUS_NAMES[s.status] ?? String(s.status),
    reason: s.reason,
    reasonName: s.reason === 0 ? null : (REASON_NAMES[s.reason] ?? String(s.reason)),
    at: s.atMs,
    deliveredWh: s.deliveredWh,
    sentAtMs: s.sentAtMs ?? null,
  };
}

/** The message fields of a received payload, as far as they can be read. */
function readMessage(raw: Buffer): Record<string, unknown> {
  try {
    const value = JSON.parse(raw.toString('utf8')) as unknown;
    const message = typeof value === 'object' && value !== null ? (value as Record<string, unknown>)['message'] : undefined;
    return typeof message === 'object' && message !== null && !Array.isArray(message) ? (message as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v: unknown): string | null => (typeof v === 'string' ? v.toLowerCase() : null);

function stateOf(row: ReceivedRow, version: StoredOrder | undefined, kind: string | null, nowMs: number): string {
  if (row.verdict === 'rejected') return `rejected: ${REASON_NAMES[row.reason] ?? row.reason}`;
  if (kind === 'cancel') return 'cancel (ended the order)';
  if (!version) return 'accepted';
  if (version.state === 'accepted') return nowMs < version.effectiveStartMs ? 'pending' : nowMs < version.endMs ? 'active (not yet STARTED)' : 'ending';
  if (version.state === 'started') return nowMs < version.endMs ? 'active' : 'ending';
  return version.state;
}

function orderViews(store: DispatchStore, limit: number, nowMs: number): OrderView[] {
  return store.recentReceived(limit).map((row) => {
    const m = readMessage(row.raw);
    const key = row.orderId !== undefined && row.modification !== undefined ? `${row.orderId}:${row.modification}` : undefined;
    const kind = row.verdict === 'accepted' ? (row.detail ?? null) : null;
    const version = key !== undefined && row.verdict === 'accepted' && kind !== 'cancel' ? store.order(key) : undefined;
    const signal = num(m['signal']);
    const start = num(m['start']);
    const duration = num(m['durationMs']);
    const statuses = row.orderId === undefined ? [] : store.statusesOf(row.orderId).filter((s) => s.modification === row.modification);
    return {
      receivedAtMs: row.atMs,
      orderId: row.orderId ?? null,
      modification: row.modification ?? null,
      aggregator: str(m['aggregator']),
      signer: row.signer ?? null,
      signal,
      signalName: signal === null ? null : (SIGNAL_NAMES[signal] ?? `unknown (${signal})`),
      valueW: num(m['valueW']),
      windowStartMs: version?.windowStartMs ?? (start === null ? null : start === 0 ? row.atMs : start),
      windowEndMs: version?.endMs ?? (start === null || duration === null ? null : (start === 0 ? row.atMs : start) + duration),
      effectiveStartMs: version?.effectiveStartMs ?? null,
      verdict: row.verdict,
      reason: row.reason,
      reasonName: row.reason === 0 ? null : (REASON_NAMES[row.reason] ?? String(row.reason)),
      detail: row.verdict === 'rejected' ? (row.detail ?? null) : null,
      state: stateOf(row, version, kind, nowMs),
      statuses: statuses.map(statusView),
    };
  });
}

const iso = (ms: number | null): string => (ms === null ? '?' : new Date(ms).toISOString());

function durationText(ms: number): string {
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000} h`;
  if (ms % 60_000 === 0) return `${ms / 60_000} min`;
  if (ms % 1000 === 0) return `${ms / 1000} s`;
  return `${ms} ms`;
}

function statusText(s: StatusView): string {
  const parts = [s.name];
  if (s.reasonName) parts.push(`(${s.reasonName})`);
  if (s.status === 2 || s.status === 3 || s.status === 6 || s.status === 7 || s.status === 10) parts.push(`${s.deliveredWh} Wh`);
  if (s.sentAtMs === null) parts.push('[not yet acknowledged by the broker]');
  return parts.join(' ');
}

function renderList(views: OrderView[]): string {
  if (views.length === 0) return 'no orders received yet\n';
  const out: string[] = [];
  for (const v of views) {
    const what = v.signalName === null ? '' : v.signal === 0 ? 'CANCEL' : `${v.signalName} ${v.valueW ?? '?'} W`;
    out.push(`${iso(v.receivedAtMs)}  ${v.orderId ?? '?'}  mod ${v.modification ?? '?'}  ${what}  ${v.state}`);
    if (v.aggregator) out.push(`  aggregator ${v.aggregator}${v.signer && v.signer !== v.aggregator ? ` (signed by ${v.signer})` : ''}`);
    if (v.signal !== 0 && v.windowStartMs !== null && v.windowEndMs !== null) {
      const offset = v.effectiveStartMs !== null && v.effectiveStartMs !== v.windowStartMs ? `; devices from ${iso(v.effectiveStartMs)}` : '';
      out.push(`  window     ${iso(v.windowStartMs)} – ${iso(v.windowEndMs)} (${durationText(v.windowEndMs - v.windowStartMs)}${offset})`);
    }
    if (v.detail) out.push(`  why        ${v.detail}`);
    out.push(`  statuses   ${v.statuses.length === 0 ? 'none' : v.statuses.map(statusText).join(', ')}`);
  }
  return `${out.join('\n')}\n`;
}

function trailEntryJson(e: AuditEntry): Record<string, unknown> {
  let raw: string | undefined;
  let rawBase64: string | undefined;
  if (e.raw) {
    const text = e.raw.toString('utf8');
    if (Buffer.from(text, 'utf8').equals(e.raw)) raw = text;
    else rawBase64 = e.raw.toString('base64');
  }
  const detail = e.detail !== undefined && e.detail.startsWith('{') ? (JSON.parse(e.detail) as unknown) : e.detail;
  return Object.fromEntries(
    Object.entries({ ...e, raw, rawBase64, detail, reasonName: e.reason ? REASON_NAMES[e.reason] : undefined, statusName: e.status !== undefined ? STATUS_NAMES[e.status] : undefined }).filter(
      ([, v]) => v !== undefined,
    ),
  );
}

function renderTrail(orderId: string, versions: StoredOrder[], statuses: StoredStatus[], trail: AuditEntry[]): string {
  const out: string[] = [`order ${orderId}`];
  for (const v of versions) {
    out.push(
      `  version ${v.modification}: ${SIGNAL_NAMES[v.signal]} ${v.valueW} W, window ${iso(v.windowStartMs)} – ${iso(v.windowEndMs)}, devices from ${iso(v.effectiveStartMs)} (random offset ${v.randomOffsetMs} ms), ` +
        `ramp ${v.rampMs} ms, state ${v.state}${v.deliveredWh !== undefined ? `, delivered ${v.deliveredWh} Wh` : ''}${v.safetyLimited ? ', cut back for safety' : ''}`,
    );
  }
  out.push('statuses:');
  for (const s of statuses) out.push(`  ${iso(s.atMs)}  mod ${s.modification}  ${statusText(statusView(s))}`);
  out.push('audit trail:');
  for (const e of trail) {
    const mod = e.modification === undefined ? '' : `mod ${e.modification}  `;
    let what: string;
    switch (e.kind) {
      case 'received':
        what = `${e.verdict}${e.reason ? ` ${REASON_NAMES[e.reason] ?? e.reason}` : ''}  signer ${e.signer ?? '?'}  ${e.rawBytes ?? 0} bytes${e.verdict === 'rejected' && e.detail ? `  (${e.detail})` : ''}`;
        break;
      case 'setpoint':
        what = `${e.deviceId} ${e.what} = ${e.value} ${e.ok ? 'confirmed' : `FAILED${e.detail ? ` (${e.detail})` : ''}`}`;
        break;
      case 'status_sent':
        what = `${STATUS_NAMES[e.status ?? 0] ?? e.status} acknowledged by the broker${e.reason ? ` (reason ${REASON_NAMES[e.reason] ?? e.reason})` : ''}`;
        break;
      default:
        what = e.detail ?? '';
    }
    out.push(`  ${iso(e.atMs)}  ${e.kind.padEnd(11)} ${mod}${what}`);
  }
  return `${out.join('\n')}\n`;
}

/** Runs the command; returns the exit code. */
export function runOrders(config: Config, options: OrdersCliOptions, out: (text: string) => void = (t) => process.stdout.write(t), err: (text: string) => void = (t) => process.stderr.write(t)): number {
  const path = join(config.gateway.dataDir, STORE_FILE);
  if (!existsSync(path)) {
    err(`flexgate orders: no store at ${path} yet (has the agent run with this config?)\n`);
    return 1;
  }
  let store;
  try {
    store = openStore({ path, clock: systemClock, log: silentLog, readOnly: true });
  } catch (e) {
    if (e instanceof StoreError) {
      err(`flexgate orders: ${e.message}\n`);
      return 1;
    }
    throw e;
  }
  try {
    const dispatch = new DispatchStore(store.database);
    if (options.id !== undefined) {
      const orderId = options.id.toLowerCase();
      const versions = dispatch.versionsOf(orderId);
      const statuses = dispatch.statusesOf(orderId);
      const trail = readAuditTrail(store.database, orderId);
      if (versions.length === 0 && trail.length === 0) {
        err(`flexgate orders: no order ${orderId} in ${path}\n`);
        return 1;
      }
      if (options.json) out(`${JSON.stringify({ orderId, versions, statuses: statuses.map((s) => ({ ...statusView(s), modification: s.modification, payload: s.payload === undefined ? null : (JSON.parse(s.payload) as unknown) })), trail: trail.map(trailEntryJson) }, null, 2)}\n`);
      else out(renderTrail(orderId, versions, statuses, trail));
      return 0;
    }
    const views = orderViews(dispatch, options.limit, systemClock.now());
    out(options.json ? `${JSON.stringify(views, null, 2)}\n` : renderList(views));
    return 0;
  } finally {
    store.close();
  }
}
