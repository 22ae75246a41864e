import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLog } from '../../drivers/log.js';
import type { Log } from '../../drivers/log.js';
import { ReadingWriter } from './reading-writer.js';
import { openStore } from './store.js';
import type { Store } from './store.js';
import { ManualClock } from './test-clock.js';
import { tempDir, walCommitCount } from './test-helpers.js';
import type { DeviceReadings, ReadingRow } from './types.js';

let dir: string;
let cleanup: () => void;
let clock: ManualClock;
let path: string;
let store: Store;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
  clock = new ManualClock();
  path = join(dir, 'flexgate.db');
  store = openStore({ path, clock, log: silentLog });
});
afterEach(() => {
  store.close();
  cleanup();
});

/** One cycle of a 5-device home: 2 values per device = 10 rows. */
function cycle(tsMs: number): DeviceReadings[] {
  return ['meter', 'pv', 'battery', 'ev', 'heatpump'].map((deviceId, i) => ({
    deviceId,
    tsMs,
    values: { powerW: i * 100 + (tsMs % 997), energyWh: tsMs / 1000 + i },
  }));
}

function rowsOnDisk(): number {
  const db = new Database(path, { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM readings').pluck().get() as number;
  } finally {
    db.close();
  }
}

describe('ReadingWriter', () => {
  it('writes nothing before flushIntervalMs, then one transaction for the whole batch', () => {
    const stored: [number, number][] = [];
    const w = store.createReadingWriter({ flushIntervalMs: 10_000, onBatchStored: (id, rows) => stored.push([id, rows.length]) });
    const commitsBefore = walCommitCount(path);
    for (let t = 0; t < 9; t++) {
      w.add(cycle(clock.now()));
      clock.advance(1000);
    }
    w.add(cycle(clock.now())); // 10 cycles, added at 0 … 9 s
    clock.advance(999); // 9.999 s after the first add
    expect(stored).toEqual([]);
    expect(walCommitCount(path)).toBe(commitsBefore);
    expect(rowsOnDisk()).toBe(0);
    expect(w.bufferedRows).toBe(100);

    clock.advance(1);
    expect(stored).toEqual([[1, 100]]);
    expect(walCommitCount(path)).toBe(commitsBefore + 1);
    expect(rowsOnDisk()).toBe(100);
    expect(w.bufferedRows).toBe(0);
    expect(clock.pendingTimers).toBe(0); // idle writer holds no timer

    // the next batch is timed from its own first row
    clock.advance(60_000);
    w.add(cycle(clock.now()));
    clock.advance(9_999);
    expect(stored).toHaveLength(1);
    clock.advance(1);
    expect(stored).toEqual([
      [1, 100],
      [2, 10],
    ]);
    expect(walCommitCount(path)).toBe(commitsBefore + 2);
  });

  it('writes as soon as maxBatchRows rows wait, in batches of at most maxBatchRows', () => {
    const stored: [number, number][] = [];
    const w = store.createReadingWriter({ maxBatchRows: 25, onBatchStored: (id, rows) => stored.push([id, rows.length]) });
    const commitsBefore = walCommitCount(path);
    w.add(cycle(1000)); // 10
    w.add(cycle(2000)); // 20
    expect(stored).toEqual([]);
    expect(walCommitCount(path)).toBe(commitsBefore);
    w.add(cycle(3000)); // 30 → one batch of 25, 5 left
    expect(stored).toEqual([[1, 25]]);
    expect(walCommitCount(path)).toBe(commitsBefore + 1);
    w.add([...cycle(4000), ...cycle(5000), ...cycle(6000), ...cycle(7000), ...cycle(8000)]); // 55 → 2 × 25, 5 left
    expect(stored).toEqual([
      [1, 25],
      [2, 25],
      [3, 25],
    ]);
    expect(walCommitCount(path)).toBe(commitsBefore + 3);
    expect(w.bufferedRows).toBe(5);
    // the 5 left go out a full interval after the size flush
    clock.advance(9_999);
    expect(stored).toHaveLength(3);
    clock.advance(1);
    expect(stored.at(-1)).toEqual([4, 5]);
    expect(rowsOnDisk()).toBe(80);
  });

  it('onBatchStored fires only after the batch is committed and visible to another connection', () => {
    const seen: number[] = [];
    const w = store.createReadingWriter({
      onBatchStored: (batchId, rows) => {
        const other = new Database(path, { readonly: true });
        const n = other.prepare('SELECT row_count FROM reading_batches WHERE batch_id = ?').pluck().get(batchId);
        other.close();
        seen.push(n as number);
        expect(rows).toHaveLength(10);
      },
    });
    w.add(cycle(1000));
    const batches = w.flush();
    expect(batches.map((b) => b.batchId)).toEqual([1]);
    expect(seen).toEqual([10]);
    expect(w.flush()).toEqual([]); // nothing buffered: no empty batch
  });

  it('numbers batches monotonically across re-opens', () => {
    const w = store.createReadingWriter();
    w.add(cycle(1000));
    w.flush();
    w.add(cycle(2000));
    w.flush();
    store.close();
    store = openStore({ path, clock, log: silentLog });
    const w2 = store.createReadingWriter();
    w2.add(cycle(3000));
    expect(w2.flush().map((b) => b.batchId)).toEqual([3]);
    expect(store.stats().lastBatchId).toBe(3);
  });

  it('close() and stop() flush what is buffered; add after stop throws', () => {
    const w = store.createReadingWriter();
    w.add(cycle(1000));
    store.close();
    store = openStore({ path, clock, log: silentLog });
    expect(store.stats().readingRows).toBe(10);
    const w2 = store.createReadingWriter();
    const ac = new AbortController();
    w2.start(ac.signal);
    w2.add(cycle(2000));
    ac.abort();
    expect(store.stats().readingRows).toBe(20);
    expect(() => w2.add(cycle(3000))).toThrow(/stopped/);
  });

  it('skips absent and non-finite values, keeps zero and negative ones', () => {
    const w = store.createReadingWriter();
    w.add({ deviceId: 'meter', tsMs: 1000.7, values: { a: 0, b: -1.5, c: undefined, d: NaN, e: Infinity } });
    w.flush();
    expect(store.readingsBetween('meter', 0, 2000)).toEqual([
      { deviceId: 'meter', metric: 'a', tsMs: 1000, value: 0 },
      { deviceId: 'meter', metric: 'b', tsMs: 1000, value: -1.5 },
    ]);
    expect(w.losses).toEqual({ droppedRows: 0, skippedValues: 2 });
  });

  it('a throwing onBatchStored listener is logged and does not lose or repeat the batch', () => {
    const errors: object[] = [];
    const log: Log = { ...silentLog, error: (o) => errors.push(o), child: () => log };
    store.close();
    store = openStore({ path, clock, log });
    const w = store.createReadingWriter({
      onBatchStored: () => {
        throw new Error('listener broke');
      },
    });
    w.add(cycle(1000));
    expect(w.flush()).toHaveLength(1);
    expect(errors).toEqual([expect.objectContaining({ err: 'listener broke', batchId: 1 })]);
    expect(w.bufferedRows).toBe(0);
  });

  it('keeps rows in memory when a write fails and writes them on a later tick', () => {
    const committed: ReadingRow[][] = [];
    let failing = true;
    const sink = {
      path: 'mem',
      commitBatch(rows: readonly ReadingRow[]) {
        if (failing) throw new Error('SQLITE_FULL: database or disk is full');
        committed.push([...rows]);
        return { batchId: committed.length, rows, storedAtMs: clock.now() };
      },
    };
    const w = new ReadingWriter(sink, clock, silentLog, { flushIntervalMs: 1000, maxBatchRows: 15, maxBufferedRows: 40 });
    w.add(cycle(1000)); // 10
    w.add(cycle(2000)); // 20 ≥ 15 → write fails, rows kept
    expect(w.bufferedRows).toBe(20);
    expect(() => w.flush()).toThrow(/disk is full/);
    w.add(cycle(3000));
    w.add(cycle(4000));
    w.add(cycle(5000)); // 50 > 40: oldest 10 dropped
    expect(w.bufferedRows).toBe(40);
    expect(w.losses.droppedRows).toBe(10);
    failing = false;
    clock.advance(1000);
    expect(committed.map((b) => b.length)).toEqual([15, 15, 10]);
    expect(committed[0]![0]!.tsMs).toBe(2000);
  });

  it('allows only one writer per store', () => {
    store.createReadingWriter();
    expect(() => store.createReadingWriter()).toThrow(/already has a reading writer/);
  });
});
