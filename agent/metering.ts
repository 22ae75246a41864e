/**
 * Metering proofs (PROTOCOL.md §5) on the agent's side: the site meter's readings become leaves
 * (one every `leafIntervalMs`, each with a fresh secret salt, stored at once), and at each interval
 * boundary the interval is closed: its tree's root and energy are computed, the MeterProof is signed
 * with the gateway key, and the proof and its anchoring job are written in ONE transaction. Intervals
 * missed while the agent was down are closed at the next start (count 0 and the null root when they
 * hold no leaf), so an outage shows on the chain. Called from the control loop only.
 */
import { randomBytes } from 'node:crypto';
import type BetterSqlite3 from 'better-sqlite3';
import type { MeterReading } from '../drivers/classes.js';
import type { Clock } from '../drivers/clock.js';
import type { Log } from '../drivers/log.js';
import { sign, type Hex, type MeterProof } from '../ledger-client/eip712.js';
import { intervalEnergy, merkleRoot, NULL_ROOT, readingLeafHash, type MeterReading as MeterLeaf } from '../ledger-client/merkle.js';
import type { SiteSnapshot } from './snapshot.js';

export interface SignedMeterProof {
  message: MeterProof;
  signature: Hex;
}

/** Queues a closed interval for anchoring, inside the closing transaction. */
export type EnqueueProof = (db: BetterSqlite3.Database, proof: SignedMeterProof) => void;

export interface MeteringOptions {
  db: BetterSqlite3.Database;
  clock: Clock;
  log: Log;
  gateway: Hex;
  siteMeterId: string;
  leafIntervalMs: number;
  intervalMs: number;
  /** Leaves (readings and salts) of anchored intervals older than this are deleted. Default: keep. */
  proofRetentionMs?: number;
  /** The gateway's private key: proofs are signed with it. */
  privateKey: Hex;
  chainId: number;
  enqueue?: EnqueueProof;
  onClosed?: (proof: SignedMeterProof) => void;
}

export function intervalStartOf(tsMs: number, intervalMs: number): number {
  return Math.floor(tsMs / intervalMs) * intervalMs;
}

interface LeafRow {
  ts_ms: number;
  power_w: number;
  import_wh: number;
  export_wh: number;
  salt: Buffer;
}

export class Metering {
  private nextLeafAtMs = 0;
  private readonly insertLeaf: BetterSqlite3.Statement;
  private readonly leavesOf: BetterSqlite3.Statement<[number]>;
  private readonly lastLeafBefore: BetterSqlite3.Statement<[number]>;
  private readonly insertProof: BetterSqlite3.Statement;
  private readonly lastClosed: BetterSqlite3.Statement<[]>;
  private readonly firstLeaf: BetterSqlite3.Statement<[]>;
  private openIntervalStartMs: number | undefined;

  constructor(private readonly options: MeteringOptions) {
    const { db } = options;
    // A closed interval never gains a leaf: its root is signed (and maybe anchored) already.
    this.insertLeaf = db.prepare(
      `INSERT OR IGNORE INTO meter_leaves (interval_start_ms, ts_ms, power_w, import_wh, export_wh, salt)
       SELECT @start, @ts, @powerW, @importWh, @exportWh, @salt WHERE NOT EXISTS (SELECT 1 FROM meter_proofs WHERE interval_start_ms >= @start)`,
    );
    this.leavesOf = db.prepare('SELECT ts_ms, power_w, import_wh, export_wh, salt FROM meter_leaves WHERE interval_start_ms = ? ORDER BY ts_ms');
    this.lastLeafBefore = db.prepare('SELECT ts_ms, import_wh, export_wh FROM meter_leaves WHERE ts_ms < ? ORDER BY interval_start_ms DESC, ts_ms DESC LIMIT 1');
    this.insertProof = db.prepare(
      `INSERT INTO meter_proofs (interval_start_ms, interval_end_ms, gateway, leaf_count, root, import_wh, export_wh, signature, closed_at_ms)
       VALUES (@intervalStart, @intervalEnd, @gateway, @count, @root, @importWh, @exportWh, @signature, @closedAtMs)`,
    );
    this.lastClosed = db.prepare('SELECT max(interval_start_ms) FROM meter_proofs').pluck();
    this.firstLeaf = db.prepare('SELECT min(interval_start_ms) FROM meter_leaves').pluck();
  }

  /** The interval leaves are being added to now, or undefined before the first leaf. */
  get currentIntervalStartMs(): number | undefined {
    return this.openIntervalStartMs;
  }

  /** Closes every interval that ended while the agent was not running. */
  start(): void {
    this.closeDueIntervals(this.options.clock.now());
  }

  /** Called once per control cycle with its snapshot: first its leaf (a reading taken just before
   * a boundary belongs to the interval that is ending), then the intervals that have ended. */
  onSnapshot(snapshot: SiteSnapshot): void {
    this.takeLeaf(snapshot);
    this.closeDueIntervals(this.options.clock.now());
  }

  private takeLeaf(snapshot: SiteSnapshot): void {
    const meter = snapshot.devices.find((d) => d.id === this.options.siteMeterId);
    if (!meter?.fresh || meter.availability.state !== 'online' || meter.readAtMs === undefined) return;
    if (meter.readAtMs < this.nextLeafAtMs) return;
    const reading = meter.reading as MeterReading;
    if (reading.importWh === undefined || reading.exportWh === undefined) {
      this.options.log.warn({ device: this.options.siteMeterId }, 'site meter reports no import/export counters: no metering leaf');
      return;
    }
    const tsMs = meter.readAtMs;
    const intervalStartMs = intervalStartOf(tsMs, this.options.intervalMs);
    const { changes } = this.insertLeaf.run({
      start: intervalStartMs,
      ts: tsMs,
      powerW: Math.round(reading.powerW),
      importWh: Math.round(reading.importWh),
      exportWh: Math.round(reading.exportWh),
      salt: randomBytes(32),
    });
    if (changes === 0) {
      this.options.log.warn({ tsMs, intervalStart: intervalStartMs }, 'reading belongs to an interval already closed: not a leaf');
      return;
    }
    this.openIntervalStartMs = intervalStartMs;
    // The next leaf on the grid of leafIntervalMs, never two in one slot.
    this.nextLeafAtMs = (Math.floor(tsMs / this.options.leafIntervalMs) + 1) * this.options.leafIntervalMs;
  }

  /** Closes, in order, every interval that has ended and is not closed yet. */
  closeDueIntervals(nowMs: number): SignedMeterProof[] {
    const { intervalMs } = this.options;
    const currentStartMs = intervalStartOf(nowMs, intervalMs);
    const last = this.lastClosed.get() as number | null;
    const first = last === null ? (this.firstLeaf.get() as number | null) : last + intervalMs;
    if (first === null) return [];
    const closed: SignedMeterProof[] = [];
    for (let startMs = first; startMs < currentStartMs; startMs += intervalMs) closed.push(this.close(startMs));
    if (closed.length > 0) this.retain(nowMs);
    return closed;
  }

  /**
   * Deletes the leaves (readings and salts) of intervals older than the proof retention, but only of
   * intervals whose proof is confirmed on the chain: what is not anchored yet is never thrown away.
   * The signed proofs themselves are kept (about 200 bytes an interval). Bounded work per call.
   */
  retain(nowMs: number, maxRows = 5000): number {
    const retentionMs = this.options.proofRetentionMs;
    if (retentionMs === undefined) return 0;
    const cutoffMs = nowMs - retentionMs;
    const result = this.options.db
      .prepare(
        `DELETE FROM meter_leaves WHERE (interval_start_ms, ts_ms) IN (
           SELECT l.interval_start_ms, l.ts_ms FROM meter_leaves l
           JOIN outbox_items o ON o.interval_start_ms = l.interval_start_ms AND o.state = 'confirmed'
           WHERE l.interval_start_ms + ? <= ? LIMIT ?)`,
      )
      .run(this.options.intervalMs, cutoffMs, maxRows);
    if (result.changes > 0) this.options.log.info({ deletedLeaves: result.changes, olderThanMs: cutoffMs }, 'proof retention: old readings deleted');
    return result.changes;
  }

  private close(intervalStartMs: number): SignedMeterProof {
    const { db, gateway, intervalMs } = this.options;
    const proof = db
      .transaction((): SignedMeterProof => {
        const rows = this.leavesOf.all(intervalStartMs) as LeafRow[];
        const leaves: MeterLeaf[] = rows.map((r) => ({
          gateway,
          ts: r.ts_ms,
          powerW: r.power_w,
          importWh: r.import_wh,
          exportWh: r.export_wh,
          salt: `0x${r.salt.toString('hex')}`,
        }));
        const before = this.lastLeafBefore.get(intervalStartMs) as { ts_ms: number; import_wh: number; export_wh: number } | undefined;
        const interval = { intervalStart: intervalStartMs, intervalEnd: intervalStartMs + intervalMs };
        const counters = before ? [{ ts: before.ts_ms, importWh: before.import_wh, exportWh: before.export_wh }, ...leaves] : leaves;
        const message: MeterProof = {
          gateway,
          ...interval,
          count: leaves.length,
          root: leaves.length === 0 ? NULL_ROOT : merkleRoot(leaves.map((leaf) => readingLeafHash(leaf))),
          ...intervalEnergy(counters, interval),
        };
        const signed: SignedMeterProof = { message, signature: sign(this.options.privateKey, 'MeterProof', message, this.options.chainId) };
        this.insertProof.run({ ...message, signature: signed.signature, closedAtMs: this.options.clock.now() });
        this.options.enqueue?.(db, signed);
        return signed;
      })
      .immediate();
    this.options.log.info({ intervalStart: intervalStartMs, count: proof.message.count, root: proof.message.root }, 'interval closed and signed');
    this.options.onClosed?.(proof);
    return proof;
  }
}
