import type BetterSqlite3 from 'better-sqlite3';
import type { Clock } from '../../drivers/clock.js';
import type { Log } from '../../drivers/log.js';
import { errorMessage } from './errors.js';
import type { RetentionResult } from './types.js';

export interface RetentionSettings {
  readonly rawRetentionMs: number;
  readonly aggregateRetentionMs: number;
  readonly aggregateBucketMs: number;
}

interface Fold {
  count: number;
  min: number;
  max: number;
  sum: number;
  last: number;
  lastTsMs: number;
}

/**
 * Start of the bucket that holds `tsMs`. Buckets are aligned to the unix epoch, so a 15 min bucket
 * starts at :00, :15, :30, :45 UTC.
 */
export function bucketStartMs(tsMs: number, bucketMs: number): number {
  return Math.floor(tsMs / bucketMs) * bucketMs;
}

/**
 * Raw readings older than this are folded. Aligned down to a bucket start so that a bucket is
 * always folded from all of its raw rows at once in the normal case.
 */
export function rawCutoffMs(nowMs: number, s: RetentionSettings): number {
  return bucketStartMs(nowMs - s.rawRetentionMs, s.aggregateBucketMs);
}

/**
 * Prepared statements of one database for retention. Readings are keyed (ts_ms, series_id), so all
 * of this walks the left edge of the b-trees.
 */
export class Retention {
  private readonly firstReadingTs: BetterSqlite3.Statement<[], number>;
  private readonly nthReadingTsBefore: BetterSqlite3.Statement<[number, number], number>;
  private readonly readingsBefore: BetterSqlite3.Statement<[number], [number, number, number]>;
  private readonly upsertAggregate: BetterSqlite3.Statement<[number, number, number, number, number, number, number, number]>;
  private readonly deleteReadingsBefore: BetterSqlite3.Statement<[number]>;
  private readonly deleteAggregates: BetterSqlite3.Statement<[number, number]>;
  private readonly deleteBatches: BetterSqlite3.Statement<[number, number]>;
  private readonly deleteAvailability: BetterSqlite3.Statement<[number, number]>;

  constructor(
    private readonly db: BetterSqlite3.Database,
    private readonly settings: RetentionSettings,
  ) {
    this.firstReadingTs = db.prepare<[], number>('SELECT ts_ms FROM readings ORDER BY ts_ms LIMIT 1').pluck();
    this.nthReadingTsBefore = db
      .prepare<[number, number], number>('SELECT ts_ms FROM readings WHERE ts_ms < ? ORDER BY ts_ms LIMIT 1 OFFSET ?')
      .pluck();
    this.readingsBefore = db
      .prepare<[number], [number, number, number]>(
        'SELECT ts_ms, series_id, value FROM readings WHERE ts_ms < ? ORDER BY ts_ms, series_id',
      )
      .raw();
    this.upsertAggregate = db.prepare(`
      INSERT INTO reading_aggregates
        (bucket_start_ms, series_id, value_count, value_min, value_max, value_sum, value_last, last_ts_ms)
      VALUES (?, ?, ?, ?, ?, ?, ?, ?)
      ON CONFLICT (bucket_start_ms, series_id) DO UPDATE SET
        value_count = value_count + excluded.value_count,
        value_min   = min(value_min, excluded.value_min),
        value_max   = max(value_max, excluded.value_max),
        value_sum   = value_sum + excluded.value_sum,
        value_last  = CASE WHEN excluded.last_ts_ms >= last_ts_ms THEN excluded.value_last ELSE value_last END,
        last_ts_ms  = max(last_ts_ms, excluded.last_ts_ms)`);
    this.deleteReadingsBefore = db.prepare('DELETE FROM readings WHERE ts_ms < ?');
    this.deleteAggregates = db.prepare(`
      DELETE FROM reading_aggregates WHERE (bucket_start_ms, series_id) IN (
        SELECT bucket_start_ms, series_id FROM reading_aggregates
        WHERE bucket_start_ms < ? ORDER BY bucket_start_ms LIMIT ?)`);
    // keep the newest batch row always: it carries the last batch id across restarts
    this.deleteBatches = db.prepare(`
      DELETE FROM reading_batches WHERE batch_id IN (
        SELECT batch_id FROM reading_batches
        WHERE last_ts_ms < ? AND batch_id < (SELECT max(batch_id) FROM reading_batches)
        ORDER BY batch_id LIMIT ?)`);
    // keep each device's newest availability record, however old: it is its current state
    this.deleteAvailability = db.prepare(`
      DELETE FROM device_availability WHERE (device_id, ts_ms) IN (
        SELECT device_id, ts_ms FROM device_availability AS a
        WHERE ts_ms < ?
          AND ts_ms < (SELECT max(ts_ms) FROM device_availability AS b WHERE b.device_id = a.device_id)
        ORDER BY ts_ms LIMIT ?)`);
  }

  /**
   * One bounded step, in one transaction: folds at most about `maxRows` raw readings older than
   * the raw cut-off into aggregates and deletes them, and deletes at most `maxRows` expired
   * aggregates, batch records and availability records. Fold and delete commit together, so a
   * crash cannot fold a row twice; calling again with the same `nowMs` after `done` changes
   * nothing. If a single timestamp holds more than `maxRows` rows it is still folded whole.
   */
  step(nowMs: number, maxRows: number): RetentionResult {
    const limit = Math.max(1, Math.floor(maxRows));
    const run = this.db.transaction((): RetentionResult => {
      const s = this.settings;
      const rawCutoff = rawCutoffMs(nowMs, s);
      let foldedRows = 0;
      let aggregateRowsWritten = 0;
      let rawDone = true;
      let foldedBeforeMs = rawCutoff;
      const firstTs = this.firstReadingTs.get();
      if (firstTs !== undefined && firstTs < rawCutoff) {
        const boundary = this.nthReadingTsBefore.get(rawCutoff, limit);
        let upTo = rawCutoff;
        if (boundary !== undefined) upTo = boundary === firstTs ? firstTs + 1 : boundary;
        foldedBeforeMs = upTo;
        const folds = new Map<string, { bucket: number; series: number; f: Fold }>();
        for (const [tsMs, seriesId, value] of this.readingsBefore.iterate(upTo)) {
          const bucket = bucketStartMs(tsMs, s.aggregateBucketMs);
          const key = `${bucket}:${seriesId}`;
          const entry = folds.get(key);
          foldedRows++;
          if (entry === undefined) {
            folds.set(key, {
              bucket,
              series: seriesId,
              f: { count: 1, min: value, max: value, sum: value, last: value, lastTsMs: tsMs },
            });
            continue;
          }
          const f = entry.f;
          f.count++;
          if (value < f.min) f.min = value;
          if (value > f.max) f.max = value;
          f.sum += value;
          if (tsMs >= f.lastTsMs) {
            f.last = value;
            f.lastTsMs = tsMs;
          }
        }
        for (const { bucket, series, f } of folds.values()) {
          this.upsertAggregate.run(bucket, series, f.count, f.min, f.max, f.sum, f.last, f.lastTsMs);
          aggregateRowsWritten++;
        }
        this.deleteReadingsBefore.run(upTo);
        const nextTs = this.firstReadingTs.get();
        rawDone = nextTs === undefined || nextTs >= rawCutoff;
      }
      // aggregates whose whole bucket is older than the aggregate retention
      const aggregateCutoff = nowMs - s.aggregateRetentionMs - s.aggregateBucketMs + 1;
      const deletedAggregateRows = this.deleteAggregates.run(aggregateCutoff, limit).changes;
      const deletedBatchRows = this.deleteBatches.run(foldedBeforeMs, limit).changes;
      const deletedAvailabilityRows = this.deleteAvailability.run(nowMs - s.aggregateRetentionMs, limit).changes;
      return {
        foldedRows,
        aggregateRowsWritten,
        deletedAggregateRows,
        deletedBatchRows,
        deletedAvailabilityRows,
        done:
          rawDone &&
          deletedAggregateRows < limit &&
          deletedBatchRows < limit &&
          deletedAvailabilityRows < limit,
      };
    });
    return run.immediate();
  }
}

export interface RetentionTarget {
  retain(nowMs: number, options?: { maxRows?: number }): RetentionResult;
}

export interface RetentionRunnerOptions {
  readonly clock: Clock;
  readonly log: Log;
  /** Pause between steps when there is nothing left to do. Default 60 s. */
  readonly intervalMs?: number;
  /** Pause between steps while catching up a backlog. Default 250 ms. */
  readonly backlogIntervalMs?: number;
  /** Bound on the work of one step (≈ 10–30 ms on a Pi at the default 5000). */
  readonly maxRowsPerStep?: number;
}

/**
 * Runs retention in the background in small steps so the control loop is never blocked for
 * long: one step every `intervalMs`, or every `backlogIntervalMs` while a backlog remains.
 * A failing step is logged and retried at the next interval.
 */
export class RetentionRunner {
  private timer: ReturnType<Clock['setTimeout']> | undefined;
  private running = false;
  private readonly intervalMs: number;
  private readonly backlogIntervalMs: number;
  private readonly maxRowsPerStep: number;
  private readonly onAbort = () => this.stop();
  private signal: AbortSignal | undefined;

  constructor(
    private readonly target: RetentionTarget,
    private readonly options: RetentionRunnerOptions,
  ) {
    this.intervalMs = options.intervalMs ?? 60_000;
    this.backlogIntervalMs = options.backlogIntervalMs ?? 250;
    this.maxRowsPerStep = options.maxRowsPerStep ?? 5000;
  }

  start(signal?: AbortSignal): void {
    if (this.running) return;
    if (signal?.aborted) return;
    this.running = true;
    this.signal = signal;
    signal?.addEventListener('abort', this.onAbort, { once: true });
    this.schedule(this.backlogIntervalMs);
  }

  stop(): void {
    this.running = false;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.signal = undefined;
    if (this.timer !== undefined) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Runs one step now; returns its result (or undefined when it failed, which is logged). */
  runOnce(): RetentionResult | undefined {
    try {
      const result = this.target.retain(this.options.clock.now(), { maxRows: this.maxRowsPerStep });
      if (result.foldedRows > 0 || result.deletedAggregateRows > 0) {
        this.options.log.debug({ ...result }, 'retention step');
      }
      return result;
    } catch (err) {
      this.options.log.error({ err: errorMessage(err) }, 'retention step failed');
      return undefined;
    }
  }

  private schedule(delayMs: number): void {
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      if (!this.running) return;
      const result = this.runOnce();
      if (this.running) this.schedule(result !== undefined && !result.done ? this.backlogIntervalMs : this.intervalMs);
    }, delayMs);
  }
}
