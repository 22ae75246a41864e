import { join } from 'node:path';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLog } from '../../drivers/log.js';
import { RetentionRunner, bucketStartMs } from './retention.js';
import { openStore } from './store.js';
import type { Store, StoreOptions } from './store.js';
import { ManualClock } from './test-clock.js';
import { tempDir } from './test-helpers.js';
import type { ReadingRow } from './types.js';

const MIN = 60_000;
const DAY = 24 * 60 * MIN;
const BUCKET = 15 * MIN;

let dir: string;
let cleanup: () => void;
let clock: ManualClock;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  clock = new ManualClock(0);
});
afterEach(() => cleanup());

const memStore = (extra: Partial<StoreOptions> = {}) =>
  openStore({ path: ':memory:', clock, log: silentLog, rawRetentionMs: DAY, ...extra });

function aggregateTable(store: Store): unknown[] {
  return store.database.prepare('SELECT * FROM reading_aggregates ORDER BY bucket_start_ms, series_id').all();
}

function runToDone(store: Store, nowMs: number, maxRows: number): number {
  let steps = 0;
  for (;;) {
    steps++;
    if (store.retain(nowMs, { maxRows }).done) return steps;
    if (steps > 100_000) throw new Error('retention does not finish');
  }
}

/** Aggregates computed straight from raw rows (last write of a (ts, series) wins, as in the store). */
function expectedAggregates(rows: readonly ReadingRow[], cutoffMs: number) {
  const unique = new Map<string, ReadingRow>();
  for (const r of rows) unique.set(`${r.deviceId}/${r.metric}/${r.tsMs}`, r);
  const out = new Map<string, { count: number; sum: number; min: number; max: number; last: number; lastTsMs: number }>();
  for (const r of unique.values()) {
    if (r.tsMs >= cutoffMs) continue;
    const key = `${r.deviceId}/${r.metric}/${bucketStartMs(r.tsMs, BUCKET)}`;
    const a = out.get(key);
    if (a === undefined) out.set(key, { count: 1, sum: r.value, min: r.value, max: r.value, last: r.value, lastTsMs: r.tsMs });
    else {
      a.count++;
      a.sum += r.value;
      a.min = Math.min(a.min, r.value);
      a.max = Math.max(a.max, r.value);
      if (r.tsMs > a.lastTsMs) {
        a.last = r.value;
        a.lastTsMs = r.tsMs;
      }
    }
  }
  return out;
}

const rowArb = fc.record({
  deviceId: fc.constantFrom('meter', 'pv', 'battery'),
  metric: fc.constantFrom('powerW', 'socPct'),
  tsMs: fc.integer({ min: 0, max: 2 * 60 * MIN }).map((t) => t * 37), // ~3 days, spread over many buckets
  value: fc.integer({ min: -1_000_000, max: 1_000_000 }),
});

describe('retention', () => {
  it('folds raw rows into aggregates whose count/sum/min/max/last equal those computed from the raw rows', () => {
    fc.assert(
      fc.property(
        fc.array(fc.array(rowArb, { minLength: 1, maxLength: 60 }), { minLength: 1, maxLength: 6 }),
        fc.integer({ min: 1, max: 200 }),
        fc.integer({ min: 0, max: 3 * DAY }),
        (batches, maxRows, nowOffsetMs) => {
          const store = memStore();
          const nowMs = DAY + nowOffsetMs;
          for (const b of batches) store.commitBatch(b);
          const all = batches.flat();
          runToDone(store, nowMs, maxRows);

          const cutoffMs = bucketStartMs(nowMs - DAY, BUCKET);
          const expected = expectedAggregates(all, cutoffMs);
          const got = new Map<string, { count: number; sum: number; min: number; max: number; last: number; lastTsMs: number }>();
          for (const deviceId of ['meter', 'pv', 'battery']) {
            for (const a of store.aggregatesBetween(deviceId, 0, Number.MAX_SAFE_INTEGER)) {
              got.set(`${deviceId}/${a.metric}/${a.bucketStartMs}`, {
                count: a.count,
                sum: a.sum,
                min: a.min,
                max: a.max,
                last: a.last,
                lastTsMs: a.lastTsMs,
              });
            }
          }
          expect(got).toEqual(expected);
          // raw rows left are exactly those at or after the cut-off
          const rawLeft = new Set(all.filter((r) => r.tsMs >= cutoffMs).map((r) => `${r.deviceId}/${r.metric}/${r.tsMs}`));
          expect(store.stats().readingRows).toBe(rawLeft.size);

          // running it again changes nothing
          const before = aggregateTable(store);
          const again = store.retain(nowMs, { maxRows });
          expect(again).toMatchObject({ foldedRows: 0, aggregateRowsWritten: 0, done: true });
          expect(aggregateTable(store)).toEqual(before);

          // small steps give the same table as one big step
          const once = memStore();
          for (const b of batches) once.commitBatch(b);
          once.retain(nowMs, { maxRows: 1_000_000 });
          expect(aggregateTable(once)).toEqual(before);
          once.close();
          store.close();
        },
      ),
      { numRuns: 150 },
    );
  });

  it('merges rows that arrive late for a bucket already folded', () => {
    const store = memStore();
    store.commitBatch([
      { deviceId: 'meter', metric: 'powerW', tsMs: 1000, value: 10 },
      { deviceId: 'meter', metric: 'powerW', tsMs: 5000, value: 50 },
    ]);
    store.retain(2 * DAY);
    store.commitBatch([{ deviceId: 'meter', metric: 'powerW', tsMs: 3000, value: -7 }]); // late, older than last
    store.retain(2 * DAY);
    expect(store.aggregatesBetween('meter', 0, BUCKET)).toMatchObject([
      { count: 3, sum: 53, min: -7, max: 50, last: 50, lastTsMs: 5000 },
    ]);
    store.close();
  });

  it('a step that fails mid-way leaves no partial fold (fold and delete are one transaction)', () => {
    const path = join(dir, 'flexgate.db');
    const store = openStore({ path, clock, log: silentLog, rawRetentionMs: DAY });
    const rows = Array.from({ length: 500 }, (_, i) => ({ deviceId: 'pv', metric: 'powerW', tsMs: i * 1000, value: i }));
    store.commitBatch(rows);
    store.database.exec(`CREATE TEMP TRIGGER fail_delete BEFORE DELETE ON readings
                         BEGIN SELECT RAISE(ABORT, 'power cut'); END`);
    expect(() => store.retain(3 * DAY)).toThrow(/power cut/);
    expect(store.stats()).toMatchObject({ readingRows: 500, aggregateRows: 0 });
    store.database.exec('DROP TRIGGER fail_delete');
    expect(store.retain(3 * DAY).done).toBe(true);
    expect(store.stats()).toMatchObject({ readingRows: 0, aggregateRows: 1 });
    expect(store.aggregatesBetween('pv', 0, BUCKET)[0]).toMatchObject({ count: 500, sum: (499 * 500) / 2 });
    store.close();
  });

  it('keeps raw rows inside rawRetentionMs, deletes aggregates past aggregateRetentionMs, keeps the newest batch record', () => {
    const store = memStore({ aggregateRetentionMs: 10 * DAY });
    for (let day = 0; day < 20; day++) {
      store.commitBatch([{ deviceId: 'meter', metric: 'powerW', tsMs: day * DAY + 1000, value: day }]);
    }
    const nowMs = 20 * DAY;
    runToDone(store, nowMs, 3);
    // raw: only the row of day 19 (within 1 day)
    expect(store.readingsBetween('meter', 0, nowMs).map((r) => r.value)).toEqual([19]);
    // aggregates: days 10 … 18 (bucket ends after now - 10 days)
    expect(store.aggregatesBetween('meter', 0, nowMs).map((a) => a.sum)).toEqual([10, 11, 12, 13, 14, 15, 16, 17, 18]);
    expect(store.stats()).toMatchObject({ batchCount: 1, lastBatchId: 20 });
    // even once everything is past retention, the batch counter survives
    runToDone(store, 100 * DAY, 3);
    expect(store.stats()).toMatchObject({ readingRows: 0, aggregateRows: 0, batchCount: 1, lastBatchId: 20 });
    store.close();
  });

  it('prunes old availability records but keeps each device’s current state', () => {
    const store = memStore({ aggregateRetentionMs: 10 * DAY });
    store.recordAvailability('meter', 1 * DAY, true);
    store.recordAvailability('meter', 2 * DAY, false, 'timeout');
    store.recordAvailability('meter', 15 * DAY, true);
    store.recordAvailability('ev', 1 * DAY, false, 'unplugged');
    runToDone(store, 20 * DAY, 100);
    expect(store.availabilityBetween('meter', 0, 30 * DAY).map((a) => a.tsMs)).toEqual([15 * DAY]);
    expect(store.latestAvailability()).toEqual([
      { deviceId: 'ev', tsMs: 1 * DAY, online: false, reason: 'unplugged' },
      { deviceId: 'meter', tsMs: 15 * DAY, online: true },
    ]);
    store.close();
  });

  it('folds a whole timestamp even when it holds more rows than maxRows', () => {
    const store = memStore();
    store.commitBatch(Array.from({ length: 10 }, (_, i) => ({ deviceId: `d${i}`, metric: 'powerW', tsMs: 1000, value: i })));
    const r = store.retain(2 * DAY, { maxRows: 3 });
    expect(r).toMatchObject({ foldedRows: 10, done: true });
    store.close();
  });

  it('RetentionRunner works through a backlog in bounded steps, then idles at intervalMs', () => {
    clock = new ManualClock(10 * DAY);
    const store = memStore();
    const rows = Array.from({ length: 1000 }, (_, i) => ({ deviceId: 'meter', metric: 'powerW', tsMs: i * 60_000, value: i }));
    store.commitBatch(rows);
    const steps: number[] = [];
    const runner = new RetentionRunner(
      {
        retain: (nowMs, o) => {
          const r = store.retain(nowMs, o);
          steps.push(r.foldedRows);
          return r;
        },
      },
      { clock, log: silentLog, maxRowsPerStep: 100, backlogIntervalMs: 250, intervalMs: 60_000 },
    );
    const ac = new AbortController();
    runner.start(ac.signal);
    clock.advance(250 * 10);
    expect(steps).toEqual(Array(10).fill(100));
    // the 10th step emptied the backlog and said so: the next one comes after intervalMs
    clock.advance(59_999);
    expect(steps).toHaveLength(10);
    clock.advance(1);
    expect(steps).toEqual([...Array(10).fill(100), 0]);
    ac.abort();
    clock.advance(10 * 60_000);
    expect(steps).toHaveLength(11);
    expect(store.stats().readingRows).toBe(0);
    store.close();
  });
});
