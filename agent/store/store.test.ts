import { writeFileSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLog } from '../../drivers/log.js';
import { StoreMigrationError, StoreOpenError, StoreVersionError } from './errors.js';
import { latestVersion, migrations } from './migrations.js';
import type { Migration } from './migrations.js';
import { openStore } from './store.js';
import { ManualClock } from './test-clock.js';
import { tempDir } from './test-helpers.js';

let dir: string;
let cleanup: () => void;
let clock: ManualClock;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  clock = new ManualClock();
});
afterEach(() => cleanup());

const open = (path: string, extra: Partial<Parameters<typeof openStore>[0]> = {}) =>
  openStore({ path, clock, log: silentLog, ...extra });

describe('openStore', () => {
  it('creates a new file at the latest schema version in WAL mode with synchronous=FULL and foreign keys', () => {
    const path = join(dir, 'sub', 'flexgate.db');
    const store = open(path);
    const db = store.database;
    expect(db.pragma('user_version', { simple: true })).toBe(latestVersion(migrations));
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('synchronous', { simple: true })).toBe(2); // FULL
    expect(db.pragma('foreign_keys', { simple: true })).toBe(1);
    expect(db.pragma('busy_timeout', { simple: true })).toBe(5000);
    const tables = db.prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name").pluck().all();
    expect(tables).toEqual([
      'changed_devices',
      'device_availability',
      'devices',
      'dispatch_audit',
      'dispatch_orders',
      'dispatch_sequences',
      'dispatch_statuses',
      'meter_leaves',
      'meter_proofs',
      'outbox_items',
      'outbox_txs',
      'reading_aggregates',
      'reading_batches',
      'readings',
      'series',
      'store_meta',
    ]);
    expect(store.integrityCheck()).toEqual([]);
    store.close();
  });

  it('re-opens an existing file without migrating again and keeps its data', () => {
    const path = join(dir, 'flexgate.db');
    const s1 = open(path);
    s1.commitBatch([{ deviceId: 'meter', metric: 'powerW', tsMs: 1000, value: 42 }]);
    s1.close();
    const applied: number[] = [];
    const s2 = open(path, {
      migrations: migrations.map((m) => ({ ...m, up: () => applied.push(m.version) })),
    });
    expect(applied).toEqual([]);
    expect(s2.lastBatchId).toBe(1);
    expect(s2.readingsBetween('meter', 0, 2000)).toEqual([{ deviceId: 'meter', metric: 'powerW', tsMs: 1000, value: 42 }]);
    s2.close();
  });

  it('applies a newly added migration step to an older file, once', () => {
    const path = join(dir, 'flexgate.db');
    open(path).close();
    const nextVersion = latestVersion(migrations) + 1;
    const next: Migration[] = [...migrations, { version: nextVersion, name: 'extra', up: 'CREATE TABLE extra (id INTEGER PRIMARY KEY) STRICT;' }];
    const s = open(path, { migrations: next });
    expect(s.database.pragma('user_version', { simple: true })).toBe(nextVersion);
    expect(s.database.prepare('SELECT count(*) FROM extra').pluck().get()).toBe(0);
    s.close();
    open(path, { migrations: next }).close(); // second open: nothing to do, no "table exists" error
  });

  it('rolls back a failing migration step and leaves the file at the previous version', () => {
    const path = join(dir, 'flexgate.db');
    open(path).close();
    const bad: Migration[] = [
      ...migrations,
      { version: latestVersion(migrations) + 1, name: 'half-done', up: 'CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);' },
    ];
    expect(() => open(path, { migrations: bad })).toThrow(StoreMigrationError);
    const db = new Database(path);
    expect(db.pragma('user_version', { simple: true })).toBe(latestVersion(migrations));
    expect(db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'half'").pluck().get()).toBe(0);
    db.close();
  });

  it('refuses a file written by a newer flexgate, naming the path and both versions, and leaves it untouched', () => {
    const path = join(dir, 'flexgate.db');
    open(path).close();
    const db = new Database(path);
    db.pragma('user_version = 99');
    db.close();
    const before = readFileSync(path);
    let err: unknown;
    try {
      open(path);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StoreVersionError);
    expect((err as Error).message).toContain(path);
    expect((err as Error).message).toMatch(new RegExp(`version 99.*up to ${latestVersion(migrations)}.*newer flexgate`));
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(() => open(path, { readOnly: true })).toThrow(StoreVersionError);
  });

  it('gives a clear error naming the path for a file that is not SQLite', () => {
    const path = join(dir, 'notes.txt');
    writeFileSync(path, 'this is a config file, not a database\n'.repeat(200));
    const err = (() => {
      try {
        open(path);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(err).toBeInstanceOf(StoreOpenError);
    expect((err as StoreOpenError).path).toBe(path);
    expect((err as Error).message).toMatch(new RegExp(`^cannot open store ${path}: file is not a database \\(move it aside`));
  });

  it('gives a clear error for a directory it cannot create', () => {
    const blocker = join(dir, 'file');
    writeFileSync(blocker, 'x');
    expect(() => open(join(blocker, 'flexgate.db'))).toThrow(new RegExp(`cannot open store ${blocker}/flexgate.db`));
  });

  it('integrityCheck reports damage in a readings page; damage on a page read at open fails with the path', () => {
    const path = join(dir, 'flexgate.db');
    const s = open(path);
    const rows = Array.from({ length: 5000 }, (_, i) => ({ deviceId: 'meter', metric: 'powerW', tsMs: i * 1000, value: i }));
    s.commitBatch(rows);
    const pageOf = (name: string) =>
      s.database.prepare("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno LIMIT 1 OFFSET 2").pluck().get(name) as number;
    const readingsLeaf = pageOf('readings');
    const schemaPage = 1;
    s.close(); // checkpoints the WAL into the file
    const pristine = readFileSync(path);
    const pageSize = 4096;
    const damage = (pageno: number) => {
      const buf = Buffer.from(pristine);
      buf.fill(0x5a, (pageno - 1) * pageSize + 100 * Number(pageno === 1), pageno * pageSize);
      writeFileSync(path, buf);
    };

    damage(readingsLeaf);
    const damaged = open(path);
    const problems = damaged.integrityCheck();
    damaged.close();
    expect(problems.length).toBeGreaterThan(0);
    expect(problems.join('\n')).toMatch(/page|tree|malformed|corrupt/i);

    damage(schemaPage);
    expect(() => open(path)).toThrow(new RegExp(`cannot open store ${path}: .*malformed.*move it aside`));
  });

  it('opens read-only beside a writer and sees committed batches', () => {
    const path = join(dir, 'flexgate.db');
    const w = open(path);
    w.commitBatch([{ deviceId: 'pv', metric: 'powerW', tsMs: 5000, value: 3000 }]);
    const r = open(path, { readOnly: true });
    expect(r.latestReadings()).toEqual([{ deviceId: 'pv', tsMs: 5000, values: { powerW: { tsMs: 5000, value: 3000 } } }]);
    w.commitBatch([{ deviceId: 'battery', metric: 'socPct', tsMs: 6000, value: 55 }]);
    expect(r.readingsBetween('battery', 0, 10_000)).toHaveLength(1); // new device seen without reopening
    expect(r.stats().lastBatchId).toBe(2);
    expect(() => r.recordAvailability('pv', 1, true)).toThrow(/read-only/);
    r.close();
    w.close();
  });
});

describe('availability', () => {
  it('records only changes and remembers the latest state across re-opens', () => {
    const path = join(dir, 'flexgate.db');
    const s = open(path);
    expect(s.recordAvailability('meter', 1000, true)).toBe(true);
    expect(s.recordAvailability('meter', 2000, true)).toBe(false);
    expect(s.recordAvailability('meter', 3000, false, 'timeout after 3 retries')).toBe(true);
    expect(s.recordAvailability('meter', 4000, false, 'timeout')).toBe(false);
    expect(s.recordAvailability('ev', 3500, true)).toBe(true);
    s.close();
    const s2 = open(path);
    expect(s2.latestAvailability()).toEqual([
      { deviceId: 'ev', tsMs: 3500, online: true },
      { deviceId: 'meter', tsMs: 3000, online: false, reason: 'timeout after 3 retries' },
    ]);
    expect(s2.recordAvailability('meter', 5000, false)).toBe(false); // state survived the re-open
    expect(s2.recordAvailability('meter', 6000, true)).toBe(true);
    expect(s2.availabilityBetween('meter', 0, 10_000).map((a) => a.online)).toEqual([true, false, true]);
    s2.close();
  });
});

describe('queries', () => {
  it('latestReadings, readingsBetween, aggregatesBetween and stats', () => {
    const path = join(dir, 'flexgate.db');
    const s = open(path);
    s.commitBatch([
      { deviceId: 'meter', metric: 'powerW', tsMs: 1000, value: 100 },
      { deviceId: 'meter', metric: 'importWh', tsMs: 1000, value: 5e6 },
      { deviceId: 'pv', metric: 'powerW', tsMs: 1000, value: -2000 },
    ]);
    s.commitBatch([
      { deviceId: 'meter', metric: 'powerW', tsMs: 2000, value: 150 },
      { deviceId: 'pv', metric: 'powerW', tsMs: 2000, value: -2100.5 },
    ]);
    expect(s.latestReadings()).toEqual([
      { deviceId: 'meter', tsMs: 2000, values: { importWh: { tsMs: 1000, value: 5e6 }, powerW: { tsMs: 2000, value: 150 } } },
      { deviceId: 'pv', tsMs: 2000, values: { powerW: { tsMs: 2000, value: -2100.5 } } },
    ]);
    expect(s.readingsBetween('meter', 1000, 2000)).toEqual([
      { deviceId: 'meter', metric: 'importWh', tsMs: 1000, value: 5e6 },
      { deviceId: 'meter', metric: 'powerW', tsMs: 1000, value: 100 },
    ]);
    expect(s.readingsBetween('meter', 0, 3000, { metrics: ['powerW'] }).map((r) => r.value)).toEqual([100, 150]);
    expect(s.readingsBetween('nope', 0, 3000)).toEqual([]);
    expect(s.batch(2)).toEqual({ batchId: 2, storedAtMs: clock.now(), rowCount: 2, firstTsMs: 2000, lastTsMs: 2000 });

    const st = s.stats();
    expect(st).toMatchObject({
      readingRows: 5,
      deviceCount: 2,
      seriesCount: 3,
      batchCount: 2,
      lastBatchId: 2,
      oldestReadingTsMs: 1000,
      newestReadingTsMs: 2000,
      schemaVersion: latestVersion(migrations),
    });
    expect(st.fileBytes + st.walBytes).toBeGreaterThan(0);

    // fold everything (retention 1 ms) and read the aggregates back; the bucket size is fixed
    // when the file is created (15 min default), a different option later is ignored with a warning
    s.close();
    const s2 = open(path, { rawRetentionMs: 1, aggregateBucketMs: 60_000 });
    expect(s2.settings.aggregateBucketMs).toBe(900_000);
    expect(s2.retain(60 * 60_000).done).toBe(true);
    expect(s2.aggregatesBetween('meter', 0, 60_000, { metrics: ['powerW'] })).toEqual([
      { deviceId: 'meter', metric: 'powerW', bucketStartMs: 0, bucketMs: 900_000, count: 2, min: 100, max: 150, sum: 250, mean: 125, last: 150, lastTsMs: 2000 },
    ]);
    expect(s2.stats()).toMatchObject({ readingRows: 0, aggregateRows: 3, batchCount: 1, lastBatchId: 2 });
    expect(s2.latestReadings()).toHaveLength(2); // latest values outlive raw retention
    s2.close();
  });
});
