/** One device's values from one control-loop cycle. Absent metrics are simply not in `values`. */
export interface DeviceReadings {
  readonly deviceId: string;
  readonly tsMs: number;
  readonly values: Readonly<Record<string, number | undefined>>;
}

/** One stored raw reading. */
export interface ReadingRow {
  readonly deviceId: string;
  readonly metric: string;
  readonly tsMs: number;
  readonly value: number;
}

/** A batch of readings that is committed (durable on disk). */
export interface StoredBatch {
  readonly batchId: number;
  readonly rows: readonly ReadingRow[];
  readonly storedAtMs: number;
}

/** What the store remembers about a committed batch (kept as long as raw readings are). */
export interface BatchInfo {
  readonly batchId: number;
  readonly storedAtMs: number;
  readonly rowCount: number;
  readonly firstTsMs: number;
  readonly lastTsMs: number;
}

export interface LatestValue {
  readonly tsMs: number;
  readonly value: number;
}

export interface LatestDeviceReadings {
  readonly deviceId: string;
  /** Newest tsMs of any of the device's values. */
  readonly tsMs: number;
  readonly values: Readonly<Record<string, LatestValue>>;
}

/** One metric of one device over one bucket `[bucketStartMs, bucketStartMs + bucketMs)`. */
export interface AggregateRow {
  readonly deviceId: string;
  readonly metric: string;
  readonly bucketStartMs: number;
  readonly bucketMs: number;
  readonly count: number;
  readonly min: number;
  readonly max: number;
  readonly sum: number;
  readonly mean: number;
  /** Value of the newest raw reading in the bucket, and its time. */
  readonly last: number;
  readonly lastTsMs: number;
}

export interface AvailabilityRecord {
  readonly deviceId: string;
  readonly tsMs: number;
  readonly online: boolean;
  readonly reason?: string;
}

export interface StoreStats {
  readonly path: string;
  readonly schemaVersion: number;
  readonly readingRows: number;
  readonly aggregateRows: number;
  readonly availabilityRows: number;
  readonly deviceCount: number;
  readonly seriesCount: number;
  readonly batchCount: number;
  /** Highest committed batch id, 0 when none was ever stored. */
  readonly lastBatchId: number;
  readonly oldestReadingTsMs: number | undefined;
  readonly newestReadingTsMs: number | undefined;
  /** Database file + WAL file sizes on disk. */
  readonly fileBytes: number;
  readonly walBytes: number;
  readonly pageSizeBytes: number;
  readonly pageCount: number;
  readonly freePages: number;
}

export interface RetentionResult {
  /** Raw readings folded into aggregates and deleted by this call. */
  readonly foldedRows: number;
  /** Aggregate rows inserted or updated. */
  readonly aggregateRowsWritten: number;
  readonly deletedAggregateRows: number;
  readonly deletedBatchRows: number;
  readonly deletedAvailabilityRows: number;
  /** True when nothing older than the cut-offs is left: the next call (same nowMs) does nothing. */
  readonly done: boolean;
}
