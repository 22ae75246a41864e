import type { Clock, TimerHandle } from '../../drivers/clock.js';
import type { Log } from '../../drivers/log.js';
import { StoreError, errorMessage } from './errors.js';
import type { DeviceReadings, ReadingRow, StoredBatch } from './types.js';

/** Where a ReadingWriter commits its batches (the Store). */
export interface BatchSink {
  readonly path: string;
  /** Commits the rows as one batch in one durable transaction, or throws having written nothing. */
  commitBatch(rows: readonly ReadingRow[]): StoredBatch;
}

export interface ReadingWriterOptions {
  /** Longest time a reading waits in memory before it is written. Default 10 s. */
  readonly flushIntervalMs?: number;
  /** A batch is written as soon as this many rows wait. Default 2000. */
  readonly maxBatchRows?: number;
  /**
   * When writing keeps failing (disk full, I/O error), at most this many rows are kept in memory;
   * the oldest are dropped beyond it (logged). Default 50 000 (~5 MB).
   */
  readonly maxBufferedRows?: number;
  /**
   * Called after each batch is committed: the only moment a batch may be reported as stored.
   * Exceptions it throws are logged, never propagated (the batch is stored either way).
   */
  readonly onBatchStored?: (batchId: number, rows: readonly ReadingRow[]) => void;
}

export const readingWriterDefaults = {
  flushIntervalMs: 10_000,
  maxBatchRows: 2000,
  maxBufferedRows: 50_000,
} as const;

/**
 * Buffers readings in memory and writes them in batches (one transaction each) every
 * `flushIntervalMs` or `maxBatchRows`, whichever comes first: an SD card is slow and wears out.
 * Readings still in the buffer are the only thing a power cut may lose.
 *
 * better-sqlite3 is synchronous: `flush()` returns once the batches are committed and fsynced.
 */
export class ReadingWriter {
  private buffer: ReadingRow[] = [];
  private timer: TimerHandle | undefined;
  private stopped = false;
  private signal: AbortSignal | undefined;
  private readonly onAbort = () => {
    try {
      this.stop();
    } catch (err) {
      this.log.error({ err: errorMessage(err) }, 'final flush of readings failed');
    }
  };
  private readonly flushIntervalMs: number;
  private readonly maxBatchRows: number;
  private readonly maxBufferedRows: number;
  private droppedRows = 0;
  private failing = false;
  private skippedValues = 0;

  constructor(
    private readonly sink: BatchSink,
    private readonly clock: Clock,
    private readonly log: Log,
    private readonly options: ReadingWriterOptions = {},
  ) {
    this.flushIntervalMs = options.flushIntervalMs ?? readingWriterDefaults.flushIntervalMs;
    this.maxBatchRows = options.maxBatchRows ?? readingWriterDefaults.maxBatchRows;
    this.maxBufferedRows = Math.max(options.maxBufferedRows ?? readingWriterDefaults.maxBufferedRows, this.maxBatchRows);
    if (!(this.flushIntervalMs > 0) || !Number.isInteger(this.maxBatchRows) || this.maxBatchRows < 1) {
      throw new StoreError(
        `invalid reading writer options: flushIntervalMs ${this.flushIntervalMs}, maxBatchRows ${this.maxBatchRows}`,
        sink.path,
      );
    }
  }

  /** Ties `stop()` (final flush) to the signal. The flush timer itself runs from the first add. */
  start(signal: AbortSignal): void {
    if (signal.aborted) {
      this.onAbort();
      return;
    }
    this.signal = signal;
    signal.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Rows waiting in memory. */
  get bufferedRows(): number {
    return this.buffer.length;
  }

  /** Counters of data that did not make it: dropped (buffer overflow) and skipped (non-finite). */
  get losses(): { droppedRows: number; skippedValues: number } {
    return { droppedRows: this.droppedRows, skippedValues: this.skippedValues };
  }

  /**
   * Queues one cycle's readings. Writes (synchronously) only when `maxBatchRows` rows are waiting;
   * otherwise the batch goes out when the flush timer fires. Non-finite values are skipped.
   */
  add(snapshot: DeviceReadings | readonly DeviceReadings[]): void {
    if (this.stopped) throw new StoreError(`reading writer of ${this.sink.path} is stopped`, this.sink.path);
    const list: readonly DeviceReadings[] = isList(snapshot) ? snapshot : [snapshot];
    for (const device of list) {
      const tsMs = Math.trunc(device.tsMs);
      if (!Number.isFinite(tsMs)) {
        this.skippedValues += Object.keys(device.values).length;
        continue;
      }
      for (const [metric, value] of Object.entries(device.values)) {
        if (value === undefined) continue;
        if (typeof value !== 'number' || !Number.isFinite(value)) {
          this.skippedValues++;
          continue;
        }
        this.buffer.push({ deviceId: device.deviceId, metric, tsMs, value });
      }
    }
    // after a write error, retry on the timer only (not on every cycle's add)
    if (this.buffer.length >= this.maxBatchRows && !this.failing) {
      try {
        this.flushFull();
      } catch (err) {
        this.onWriteError(err);
      }
    }
    this.trimBuffer();
    this.armTimer();
  }

  /**
   * Writes everything buffered now, in batches of at most `maxBatchRows`, and returns the committed
   * batches (each durable when returned). Throws on a write error; rows not written stay buffered.
   */
  flush(): StoredBatch[] {
    const stored: StoredBatch[] = [];
    try {
      while (this.buffer.length > 0) stored.push(this.writeOne());
    } finally {
      this.disarmTimer();
      this.armTimer();
    }
    return stored;
  }

  /** Stops the timer and flushes what is buffered. Later `add` calls throw. */
  stop(): StoredBatch[] {
    if (this.stopped) return [];
    this.stopped = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.signal = undefined;
    this.disarmTimer();
    return this.flush();
  }

  private flushFull(): void {
    while (this.buffer.length >= this.maxBatchRows) this.writeOne();
    // the rows left are newer than the ones the timer was armed for: give them a full interval
    this.disarmTimer();
  }

  private writeOne(): StoredBatch {
    const rows = this.buffer.slice(0, this.maxBatchRows);
    let batch: StoredBatch;
    try {
      batch = this.sink.commitBatch(rows);
    } catch (err) {
      this.failing = true;
      throw err;
    }
    this.failing = false;
    this.buffer = this.buffer.slice(rows.length);
    try {
      this.options.onBatchStored?.(batch.batchId, batch.rows);
    } catch (err) {
      this.log.error({ err: errorMessage(err), batchId: batch.batchId }, 'onBatchStored listener failed');
    }
    return batch;
  }

  private onTimer(): void {
    this.timer = undefined;
    try {
      this.flush();
    } catch (err) {
      this.onWriteError(err);
    }
  }

  private onWriteError(err: unknown): void {
    this.log.error(
      { err: errorMessage(err), bufferedRows: this.buffer.length },
      'writing readings failed; keeping them in memory and retrying at the next interval',
    );
  }

  private trimBuffer(): void {
    const excess = this.buffer.length - this.maxBufferedRows;
    if (excess > 0) {
      this.buffer = this.buffer.slice(excess);
      this.droppedRows += excess;
      this.log.warn({ droppedRows: excess, totalDroppedRows: this.droppedRows }, 'reading buffer full; dropped the oldest readings');
    }
  }

  private armTimer(): void {
    if (this.timer !== undefined || this.buffer.length === 0 || this.stopped) return;
    this.timer = this.clock.setTimeout(() => this.onTimer(), this.flushIntervalMs);
  }

  private disarmTimer(): void {
    if (this.timer !== undefined) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }
}

function isList(x: DeviceReadings | readonly DeviceReadings[]): x is readonly DeviceReadings[] {
  return Array.isArray(x);
}
