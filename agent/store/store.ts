import { mkdirSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type BetterSqlite3 from 'better-sqlite3';
import type { Clock } from '../../drivers/clock.js';
import type { Log } from '../../drivers/log.js';
import { StoreError, StoreOpenError, errorMessage } from './errors.js';
import { applyMigrations, checkMigrationList, latestVersion, migrations as defaultMigrations, readUserVersion } from './migrations.js';
import type { Migration } from './migrations.js';
import { ReadingWriter } from './reading-writer.js';
import type { ReadingWriterOptions, BatchSink } from './reading-writer.js';
import { Retention } from './retention.js';
import type { RetentionSettings } from './retention.js';
import type {
  AggregateRow,
  AvailabilityRecord,
  BatchInfo,
  LatestDeviceReadings,
  LatestValue,
  ReadingRow,
  RetentionResult,
  StoreStats,
  StoredBatch,
} from './types.js';

const DAY_MS = 24 * 60 * 60 * 1000;

export const storeDefaults = {
  busyTimeoutMs: 5000,
  rawRetentionMs: 7 * DAY_MS,
  aggregateRetentionMs: 2 * 365 * DAY_MS,
  aggregateBucketMs: 15 * 60 * 1000,
  retentionMaxRows: 5000,
} as const;

export interface StoreOptions {
  /** Database file; its directory is created if missing. */
  readonly path: string;
  readonly clock: Clock;
  readonly log: Log;
  /** How long a statement waits for a lock held by another connection (e.g. the CLI). */
  readonly busyTimeoutMs?: number;
  readonly rawRetentionMs?: number;
  readonly aggregateRetentionMs?: number;
  /**
   * Bucket of the aggregates. Fixed when the file is created: a file that already has a bucket
   * size keeps it (a warning is logged when the option differs).
   */
  readonly aggregateBucketMs?: number;
  /** For the CLI reading beside a running agent: no migrations, no writes. */
  readonly readOnly?: boolean;
  /** Tests only: another migration list. */
  readonly migrations?: readonly Migration[];
}

/**
 * Opens (creating or migrating) the agent's SQLite store. One process writes (the agent); others
 * may open it `readOnly`. Throws StoreOpenError (not a database, unreadable), StoreVersionError
 * (written by a newer flexgate) or StoreMigrationError, each naming the path.
 */
export function openStore(options: StoreOptions): Store {
  const { path } = options;
  const readOnly = options.readOnly ?? false;
  const busyTimeoutMs = options.busyTimeoutMs ?? storeDefaults.busyTimeoutMs;
  const log = options.log.child({ module: 'store' });
  const list = options.migrations ?? defaultMigrations;
  checkMigrationList(list);
  let db: BetterSqlite3.Database | undefined;
  try {
    if (!readOnly && path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    db = new Database(path, { readonly: readOnly, fileMustExist: readOnly, timeout: busyTimeoutMs });
    db.pragma(`busy_timeout = ${Math.floor(busyTimeoutMs)}`);
    // The first statement that reads the file: a non-SQLite file fails here ("file is not a database").
    const schemaVersion = readUserVersion(db);
    if (!readOnly) {
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal' && path !== ':memory:') {
        throw new StoreOpenError(`store ${path}: cannot switch to WAL journal mode (got ${String(mode)})`, path);
      }
    }
    // FULL: every commit is fsynced, so what is reported as stored survives a power cut.
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    if (readOnly) {
      const supported = latestVersion(list);
      if (schemaVersion > supported) {
        applyMigrations(db, path, list, log); // throws StoreVersionError
      } else if (schemaVersion < supported) {
        throw new StoreOpenError(
          `store ${path} has schema version ${schemaVersion}, expected ${supported}: start the agent once to migrate it`,
          path,
        );
      }
    } else {
      const { fromVersion, toVersion } = applyMigrations(db, path, list, log);
      log.debug({ path, fromVersion, toVersion }, 'store open');
    }
    return new Store(db, path, options, readOnly, log);
  } catch (err) {
    try {
      db?.close();
    } catch {
      // already failing; the original error is the one to report
    }
    if (err instanceof StoreError) throw err;
    const code = (err as { code?: unknown }).code;
    const hint =
      code === 'SQLITE_CORRUPT' || code === 'SQLITE_NOTADB'
        ? ' (move it aside to start with an empty store, or point the config at another file)'
        : '';
    throw new StoreOpenError(`cannot open store ${path}: ${errorMessage(err)}${hint}`, path, { cause: err });
  }
}

/** The agent's store. Create with `openStore`. */
export class Store implements BatchSink {
  /**
   * The connection, for other store modules in agent/store/ (orders, outbox … with their own
   * migrations). Nothing outside agent/store/ should use it.
   */
  readonly database: BetterSqlite3.Database;
  readonly path: string;
  readonly readOnly: boolean;
  readonly settings: RetentionSettings;
  private readonly clock: Clock;
  private readonly log: Log;
  private readonly retention: Retention | undefined;
  private writer: ReadingWriter | undefined;
  private lastBatchIdValue: number;

  private readonly deviceIds = new Map<string, number>();
  private readonly seriesIds = new Map<string, number>(); // key: `${deviceRowId}\u0000${metric}`
  private readonly availabilityCache = new Map<string, boolean>();

  private readonly stmt;

  /** @internal use openStore */
  constructor(db: BetterSqlite3.Database, path: string, options: StoreOptions, readOnly: boolean, log: Log) {
    this.database = db;
    this.path = path;
    this.readOnly = readOnly;
    this.clock = options.clock;
    this.log = log;
    this.stmt = {
      insertDevice: db.prepare<[string], number>('INSERT INTO devices (name) VALUES (?) RETURNING id').pluck(),
      insertSeries: db
        .prepare<[number, string], number>('INSERT INTO series (device_id, metric) VALUES (?, ?) RETURNING id')
        .pluck(),
      allDevices: db.prepare<[], [number, string]>('SELECT id, name FROM devices').raw(),
      allSeries: db
        .prepare<[], [number, number, string]>('SELECT id, device_id, metric FROM series')
        .raw(),
      insertReading: db.prepare<[number, number, number]>(
        `INSERT INTO readings (ts_ms, series_id, value) VALUES (?, ?, ?)
         ON CONFLICT (ts_ms, series_id) DO UPDATE SET value = excluded.value`,
      ),
      insertBatch: db.prepare<[number, number, number, number, number]>(
        'INSERT INTO reading_batches (batch_id, stored_at_ms, row_count, first_ts_ms, last_ts_ms) VALUES (?, ?, ?, ?, ?)',
      ),
      updateSeriesLatest: db.prepare<[number, number, number, number]>(
        'UPDATE series SET last_ts_ms = ?, last_value = ? WHERE id = ? AND (last_ts_ms IS NULL OR last_ts_ms <= ?)',
      ),
      lastBatchId: db.prepare<[], number>('SELECT coalesce(max(batch_id), 0) FROM reading_batches').pluck(),
      batch: db.prepare<[number], { batchId: number; storedAtMs: number; rowCount: number; firstTsMs: number; lastTsMs: number }>(
        `SELECT batch_id AS batchId, stored_at_ms AS storedAtMs, row_count AS rowCount,
                first_ts_ms AS firstTsMs, last_ts_ms AS lastTsMs FROM reading_batches WHERE batch_id = ?`,
      ),
      latestReadings: db
        .prepare<[], [string, string, number, number]>(
          `SELECT d.name, s.metric, s.last_ts_ms, s.last_value FROM series s JOIN devices d ON d.id = s.device_id
           WHERE s.last_ts_ms IS NOT NULL ORDER BY d.name, s.metric`,
        )
        .raw(),
      readingsBetween: db
        .prepare<[number, number, number, string | null, string | null, number], [number, string, number]>(
          `SELECT r.ts_ms, s.metric, r.value FROM readings r JOIN series s ON s.id = r.series_id
           WHERE r.ts_ms >= ? AND r.ts_ms < ? AND s.device_id = ?
             AND (? IS NULL OR s.metric IN (SELECT value FROM json_each(?)))
           ORDER BY r.ts_ms, s.metric LIMIT ?`,
        )
        .raw(),
      aggregatesBetween: db
        .prepare<
          [number, number, number, string | null, string | null, number],
          [number, string, number, number, number, number, number, number]
        >(
          `SELECT a.bucket_start_ms, s.metric, a.value_count, a.value_min, a.value_max, a.value_sum,
                  a.value_last, a.last_ts_ms
           FROM reading_aggregates a JOIN series s ON s.id = a.series_id
           WHERE a.bucket_start_ms >= ? AND a.bucket_start_ms < ? AND s.device_id = ?
             AND (? IS NULL OR s.metric IN (SELECT value FROM json_each(?)))
           ORDER BY a.bucket_start_ms, s.metric LIMIT ?`,
        )
        .raw(),
      insertAvailability: db.prepare<[number, number, number, string | null]>(
        `INSERT INTO device_availability (device_id, ts_ms, online, reason) VALUES (?, ?, ?, ?)
         ON CONFLICT (device_id, ts_ms) DO UPDATE SET online = excluded.online, reason = excluded.reason`,
      ),
      latestAvailability: db
        .prepare<[], [string, number, number, string | null]>(
          `SELECT d.name, a.ts_ms, a.online, a.reason FROM device_availability a JOIN devices d ON d.id = a.device_id
           WHERE a.ts_ms = (SELECT max(ts_ms) FROM device_availability b WHERE b.device_id = a.device_id)
           ORDER BY d.name`,
        )
        .raw(),
      availabilityBetween: db
        .prepare<[number, number, number], [number, number, string | null]>(
          `SELECT ts_ms, online, reason FROM device_availability
           WHERE device_id = ? AND ts_ms >= ? AND ts_ms < ? ORDER BY ts_ms`,
        )
        .raw(),
      getMeta: db.prepare<[string], number | string>('SELECT value FROM store_meta WHERE key = ?').pluck(),
      setMeta: db.prepare<[string, number | string]>('INSERT OR REPLACE INTO store_meta (key, value) VALUES (?, ?)'),
      count: {
        readings: db.prepare<[], number>('SELECT count(*) FROM readings').pluck(),
        aggregates: db.prepare<[], number>('SELECT count(*) FROM reading_aggregates').pluck(),
        availability: db.prepare<[], number>('SELECT count(*) FROM device_availability').pluck(),
        devices: db.prepare<[], number>('SELECT count(*) FROM devices').pluck(),
        series: db.prepare<[], number>('SELECT count(*) FROM series').pluck(),
        batches: db.prepare<[], number>('SELECT count(*) FROM reading_batches').pluck(),
        oldest: db.prepare<[], number>('SELECT ts_ms FROM readings ORDER BY ts_ms LIMIT 1').pluck(),
        newest: db.prepare<[], number>('SELECT ts_ms FROM readings ORDER BY ts_ms DESC LIMIT 1').pluck(),
      },
    };

    this.settings = {
      rawRetentionMs: options.rawRetentionMs ?? storeDefaults.rawRetentionMs,
      aggregateRetentionMs: options.aggregateRetentionMs ?? storeDefaults.aggregateRetentionMs,
      aggregateBucketMs: this.fixBucketMs(options.aggregateBucketMs ?? storeDefaults.aggregateBucketMs),
    };
    for (const [name, value] of Object.entries(this.settings)) {
      if (!Number.isInteger(value) || value <= 0) {
        throw new StoreError(`store ${path}: ${name} must be a positive integer, got ${value}`, path);
      }
    }
    this.retention = readOnly ? undefined : new Retention(db, this.settings);
    this.lastBatchIdValue = this.stmt.lastBatchId.get() ?? 0;
    this.reloadDictionaries();
    for (const a of this.latestAvailability()) this.availabilityCache.set(a.deviceId, a.online);
  }

  /** Highest committed batch id (0 when none). */
  get lastBatchId(): number {
    return this.lastBatchIdValue;
  }

  // ---- readings ---------------------------------------------------------------------------

  /**
   * The store's one ReadingWriter (it numbers batches, so there is only one). Its batches are
   * flushed and it is stopped by `close()`.
   */
  createReadingWriter(options: ReadingWriterOptions = {}): ReadingWriter {
    this.assertWritable();
    if (this.writer !== undefined) throw new StoreError(`store ${this.path} already has a reading writer`, this.path);
    this.writer = new ReadingWriter(this, this.clock, this.log.child({ module: 'store.readings' }), options);
    return this.writer;
  }

  /**
   * Commits rows as one batch in one transaction (fsynced: synchronous=FULL) and returns it.
   * Used by ReadingWriter; callers should go through the writer.
   */
  commitBatch(rows: readonly ReadingRow[]): StoredBatch {
    this.assertWritable();
    if (rows.length === 0) throw new StoreError('empty batch', this.path);
    const batchId = this.lastBatchIdValue + 1;
    const storedAtMs = this.clock.now();
    const tx = this.database.transaction(() => {
      let firstTsMs = Infinity;
      let lastTsMs = -Infinity;
      const latest = new Map<number, { tsMs: number; value: number }>();
      for (const r of rows) {
        const seriesId = this.seriesIdFor(r.deviceId, r.metric);
        this.stmt.insertReading.run(r.tsMs, seriesId, r.value);
        if (r.tsMs < firstTsMs) firstTsMs = r.tsMs;
        if (r.tsMs > lastTsMs) lastTsMs = r.tsMs;
        const l = latest.get(seriesId);
        if (l === undefined || r.tsMs >= l.tsMs) latest.set(seriesId, { tsMs: r.tsMs, value: r.value });
      }
      this.stmt.insertBatch.run(batchId, storedAtMs, rows.length, firstTsMs, lastTsMs);
      for (const [seriesId, l] of latest) this.stmt.updateSeriesLatest.run(l.tsMs, l.value, seriesId, l.tsMs);
    });
    try {
      tx.immediate();
    } catch (err) {
      this.reloadDictionaries(); // ids handed out inside the rolled-back transaction are gone
      throw err;
    }
    this.lastBatchIdValue = batchId;
    return { batchId, rows, storedAtMs };
  }

  /** What is recorded about a committed batch, or undefined (never stored, or past retention). */
  batch(batchId: number): BatchInfo | undefined {
    return this.stmt.batch.get(batchId);
  }

  /** Per device, the last stored value of each metric (flushed readings only). */
  latestReadings(): LatestDeviceReadings[] {
    const out: { deviceId: string; tsMs: number; values: Record<string, LatestValue> }[] = [];
    for (const [deviceId, metric, tsMs, value] of this.stmt.latestReadings.iterate()) {
      let d = out[out.length - 1];
      if (d === undefined || d.deviceId !== deviceId) {
        d = { deviceId, tsMs, values: {} };
        out.push(d);
      }
      d.values[metric] = { tsMs, value };
      if (tsMs > d.tsMs) d.tsMs = tsMs;
    }
    return out;
  }

  /** Raw readings of a device with `fromMs <= tsMs < toMs`, oldest first (then by metric). */
  readingsBetween(
    deviceId: string,
    fromMs: number,
    toMs: number,
    options: { metrics?: readonly string[]; limit?: number } = {},
  ): ReadingRow[] {
    const deviceRowId = this.lookupDevice(deviceId);
    if (deviceRowId === undefined) return [];
    const metricsJson = options.metrics === undefined ? null : JSON.stringify(options.metrics);
    return this.stmt.readingsBetween
      .all(fromMs, toMs, deviceRowId, metricsJson, metricsJson, options.limit ?? -1)
      .map(([tsMs, metric, value]) => ({ deviceId, metric, tsMs, value }));
  }

  /** Aggregates of a device whose bucket starts in `[fromMs, toMs)`, oldest first. */
  aggregatesBetween(
    deviceId: string,
    fromMs: number,
    toMs: number,
    options: { metrics?: readonly string[]; limit?: number } = {},
  ): AggregateRow[] {
    const deviceRowId = this.lookupDevice(deviceId);
    if (deviceRowId === undefined) return [];
    const metricsJson = options.metrics === undefined ? null : JSON.stringify(options.metrics);
    const bucketMs = this.settings.aggregateBucketMs;
    return this.stmt.aggregatesBetween
      .all(fromMs, toMs, deviceRowId, metricsJson, metricsJson, options.limit ?? -1)
      .map(([bucketStartMs, metric, count, min, max, sum, last, lastTsMs]) => ({
        deviceId,
        metric,
        bucketStartMs,
        bucketMs,
        count,
        min,
        max,
        sum,
        mean: sum / count,
        last,
        lastTsMs,
      }));
  }

  /**
   * One bounded retention step (see Retention.step): folds raw readings older than
   * `rawRetentionMs` into aggregates, deletes aggregates older than `aggregateRetentionMs`.
   * Touches only readings, aggregates, batch records and availability history.
   */
  retain(nowMs: number, options: { maxRows?: number } = {}): RetentionResult {
    this.assertWritable();
    // assertWritable guarantees retention exists
    return this.retention!.step(nowMs, options.maxRows ?? storeDefaults.retentionMaxRows);
  }

  // ---- availability -----------------------------------------------------------------------

  /**
   * Records that a device went online/offline at `tsMs`. Written (and fsynced) only when the state
   * differs from the last recorded one; returns whether it was written.
   */
  recordAvailability(deviceId: string, tsMs: number, online: boolean, reason?: string): boolean {
    this.assertWritable();
    if (this.availabilityCache.get(deviceId) === online) return false;
    const tx = this.database.transaction(() => {
      const deviceRowId = this.deviceIdFor(deviceId);
      this.stmt.insertAvailability.run(deviceRowId, Math.trunc(tsMs), online ? 1 : 0, reason ?? null);
    });
    try {
      tx.immediate();
    } catch (err) {
      this.reloadDictionaries();
      throw err;
    }
    this.availabilityCache.set(deviceId, online);
    return true;
  }

  /** Each device's last recorded availability. */
  latestAvailability(): AvailabilityRecord[] {
    return this.stmt.latestAvailability.all().map(([deviceId, tsMs, online, reason]) => ({
      deviceId,
      tsMs,
      online: online === 1,
      ...(reason === null ? {} : { reason }),
    }));
  }

  /** A device's availability changes with `fromMs <= tsMs < toMs`, oldest first. */
  availabilityBetween(deviceId: string, fromMs: number, toMs: number): AvailabilityRecord[] {
    const deviceRowId = this.lookupDevice(deviceId);
    if (deviceRowId === undefined) return [];
    return this.stmt.availabilityBetween.all(deviceRowId, fromMs, toMs).map(([tsMs, online, reason]) => ({
      deviceId,
      tsMs,
      online: online === 1,
      ...(reason === null ? {} : { reason }),
    }));
  }

  // ---- maintenance ------------------------------------------------------------------------

  /**
   * Runs `PRAGMA integrity_check` and `PRAGMA foreign_key_check`; returns the problems found
   * (empty when the file is sound). Damage so bad that the check itself stops is one problem.
   * Walks the whole file: seconds on a Pi with a week of readings, so run it on demand.
   */
  integrityCheck(): string[] {
    const problems: string[] = [];
    try {
      const rows = this.database.pragma('integrity_check') as { integrity_check: string }[];
      problems.push(...rows.map((r) => r.integrity_check).filter((m) => m !== 'ok'));
      const fk = this.database.pragma('foreign_key_check') as { table: string; rowid: number | null; parent: string }[];
      for (const v of fk) problems.push(`foreign key violation: ${v.table} row ${String(v.rowid)} → ${v.parent}`);
    } catch (err) {
      problems.push(`integrity check of ${this.path} stopped: ${errorMessage(err)}`);
    }
    return problems;
  }

  /**
   * Row counts (count(*) walks each table: on a Pi with a week of raw readings this takes about a
   * second, so call it on demand, not every cycle), file sizes and the last batch id.
   */
  stats(): StoreStats {
    const c = this.stmt.count;
    const size = (p: string) => {
      try {
        return statSync(p).size;
      } catch {
        return 0;
      }
    };
    return {
      path: this.path,
      schemaVersion: readUserVersion(this.database),
      readingRows: c.readings.get() ?? 0,
      aggregateRows: c.aggregates.get() ?? 0,
      availabilityRows: c.availability.get() ?? 0,
      deviceCount: c.devices.get() ?? 0,
      seriesCount: c.series.get() ?? 0,
      batchCount: c.batches.get() ?? 0,
      lastBatchId: this.readOnly ? (this.stmt.lastBatchId.get() ?? 0) : this.lastBatchIdValue,
      oldestReadingTsMs: c.oldest.get(),
      newestReadingTsMs: c.newest.get(),
      fileBytes: size(this.path),
      walBytes: size(`${this.path}-wal`),
      pageSizeBytes: this.database.pragma('page_size', { simple: true }) as number,
      pageCount: this.database.pragma('page_count', { simple: true }) as number,
      freePages: this.database.pragma('freelist_count', { simple: true }) as number,
    };
  }

  /** Flushes and stops the reading writer, then closes the file. Idempotent. */
  close(): void {
    if (!this.database.open) return;
    if (this.writer !== undefined) {
      try {
        this.writer.stop();
      } catch (err) {
        this.log.error({ err: errorMessage(err) }, 'final flush of readings failed; unflushed readings are lost');
      }
    }
    this.database.close();
  }

  // ---- internals --------------------------------------------------------------------------

  private assertWritable(): void {
    if (this.readOnly) throw new StoreError(`store ${this.path} is open read-only`, this.path);
    if (!this.database.open) throw new StoreError(`store ${this.path} is closed`, this.path);
  }

  private fixBucketMs(requested: number): number {
    const stored = this.stmt.getMeta.get('aggregateBucketMs');
    if (typeof stored === 'number') {
      if (stored !== requested) {
        this.log.warn(
          { path: this.path, storedBucketMs: stored, requestedBucketMs: requested },
          'aggregateBucketMs differs from the one this store was created with; keeping the stored one',
        );
      }
      return stored;
    }
    if (!this.readOnly) this.stmt.setMeta.run('aggregateBucketMs', requested);
    return requested;
  }

  private reloadDictionaries(): void {
    this.deviceIds.clear();
    this.seriesIds.clear();
    for (const [id, name] of this.stmt.allDevices.iterate()) this.deviceIds.set(name, id);
    for (const [id, deviceRowId, metric] of this.stmt.allSeries.iterate()) {
      this.seriesIds.set(`${deviceRowId}\u0000${metric}`, id);
    }
  }

  /** Device row id for queries; a read-only store re-reads the dictionary on a miss. */
  private lookupDevice(deviceId: string): number | undefined {
    let id = this.deviceIds.get(deviceId);
    if (id === undefined && this.readOnly) {
      this.reloadDictionaries();
      id = this.deviceIds.get(deviceId);
    }
    return id;
  }

  /** Inside a write transaction: the device's row id, inserting it when new. */
  private deviceIdFor(deviceId: string): number {
    let id = this.deviceIds.get(deviceId);
    if (id === undefined) {
      id = this.stmt.insertDevice.get(deviceId)!;
      this.deviceIds.set(deviceId, id);
    }
    return id;
  }

  /** Inside a write transaction: the series row id, inserting it when new. */
  private seriesIdFor(deviceId: string, metric: string): number {
    const deviceRowId = this.deviceIdFor(deviceId);
    const key = `${deviceRowId}\u0000${metric}`;
    let id = this.seriesIds.get(key);
    if (id === undefined) {
      id = this.stmt.insertSeries.get(deviceRowId, metric)!;
      this.seriesIds.set(key, id);
    }
    return id;
  }
}
