import type BetterSqlite3 from 'better-sqlite3';
import type { Log } from '../../drivers/log.js';
import { StoreMigrationError, StoreVersionError } from './errors.js';

/**
 * One schema step. `version` is the `PRAGMA user_version` the file has after the step; steps are
 * numbered 1, 2, 3 … without gaps and each runs in its own transaction together with the
 * `user_version` bump, so a crash leaves the file either before or after the step, never halfway.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  /** SQL run with `exec`, or a function for steps that need to compute (backfills). */
  readonly up: string | ((db: BetterSqlite3.Database) => void);
}

/**
 * THE schema. To add a feature's tables, append a step with the next number; never edit or
 * reorder a step that has shipped (files in the field already ran it).
 */
export const migrations: readonly Migration[] = [
  {
    version: 1,
    name: 'readings, aggregates, availability',
    up: `
      -- key/value settings that must not change under existing data (e.g. aggregateBucketMs)
      CREATE TABLE store_meta (
        key   TEXT PRIMARY KEY,
        value ANY NOT NULL
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE devices (
        id   INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
      ) STRICT;

      -- one row per (device, metric): readings refer to it by a 1-2 byte integer, and it keeps
      -- the latest value so latestReadings() never scans readings
      CREATE TABLE series (
        id         INTEGER PRIMARY KEY,
        device_id  INTEGER NOT NULL REFERENCES devices(id),
        metric     TEXT NOT NULL,
        last_ts_ms INTEGER,
        last_value REAL,
        UNIQUE (device_id, metric)
      ) STRICT;

      -- one row per committed ReadingWriter batch; the id is what the agent reports as stored
      CREATE TABLE reading_batches (
        batch_id     INTEGER PRIMARY KEY,
        stored_at_ms INTEGER NOT NULL,
        row_count    INTEGER NOT NULL,
        first_ts_ms  INTEGER NOT NULL,
        last_ts_ms   INTEGER NOT NULL
      ) STRICT;

      -- raw readings: time first, so a batch appends at the right edge of the b-tree (few dirty
      -- pages per commit) and retention deletes from the left edge
      CREATE TABLE readings (
        ts_ms     INTEGER NOT NULL,
        series_id INTEGER NOT NULL REFERENCES series(id),
        value     REAL NOT NULL,
        PRIMARY KEY (ts_ms, series_id)
      ) STRICT, WITHOUT ROWID;

      CREATE TABLE reading_aggregates (
        bucket_start_ms INTEGER NOT NULL,
        series_id       INTEGER NOT NULL REFERENCES series(id),
        value_count     INTEGER NOT NULL,
        value_min       REAL NOT NULL,
        value_max       REAL NOT NULL,
        value_sum       REAL NOT NULL,
        value_last      REAL NOT NULL,
        last_ts_ms      INTEGER NOT NULL,
        PRIMARY KEY (bucket_start_ms, series_id)
      ) STRICT, WITHOUT ROWID;

      -- written only when a device goes online/offline
      CREATE TABLE device_availability (
        device_id INTEGER NOT NULL REFERENCES devices(id),
        ts_ms     INTEGER NOT NULL,
        online    INTEGER NOT NULL CHECK (online IN (0, 1)),
        reason    TEXT,
        PRIMARY KEY (device_id, ts_ms)
      ) STRICT, WITHOUT ROWID;
      CREATE INDEX device_availability_ts ON device_availability (ts_ms);
    `,
  },
  {
    version: 2,
    name: 'metering: leaves and signed interval proofs',
    up: `
      -- one row per metering leaf (PROTOCOL.md §5): a site-meter reading with its secret salt,
      -- kept for the proof retention so any reading can be exported with its inclusion proof
      CREATE TABLE meter_leaves (
        interval_start_ms INTEGER NOT NULL,
        ts_ms             INTEGER NOT NULL,
        power_w           INTEGER NOT NULL,
        import_wh         INTEGER NOT NULL,
        export_wh         INTEGER NOT NULL,
        salt              BLOB NOT NULL CHECK (length(salt) = 32),
        PRIMARY KEY (interval_start_ms, ts_ms)
      ) STRICT, WITHOUT ROWID;

      -- one row per closed settlement interval: the signed MeterProof, written in the same
      -- transaction that closes the interval (and queues it for anchoring)
      CREATE TABLE meter_proofs (
        interval_start_ms INTEGER PRIMARY KEY,
        interval_end_ms   INTEGER NOT NULL,
        gateway           TEXT NOT NULL,
        leaf_count        INTEGER NOT NULL,
        root              TEXT NOT NULL,
        import_wh         INTEGER NOT NULL,
        export_wh         INTEGER NOT NULL,
        signature         TEXT NOT NULL,
        closed_at_ms      INTEGER NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 3,
    name: 'outbox: anchoring transactions and queued proofs',
    up: `
      -- one row per signed anchoring transaction, stored (raw bytes, nonce, hash) BEFORE it is
      -- broadcast: the outbox's own nonce source; after a restart the same raw bytes are resent.
      -- state: pending (stored, (re)broadcast until mined) → mined → confirmed, or dropped (it
      -- can never be mined: its nonce was used by another transaction, or it reverted)
      CREATE TABLE outbox_txs (
        id                INTEGER PRIMARY KEY,
        nonce             INTEGER NOT NULL CHECK (nonce >= 0),
        hash              TEXT NOT NULL UNIQUE,
        raw               BLOB NOT NULL,
        state             TEXT NOT NULL CHECK (state IN ('pending', 'mined', 'confirmed', 'dropped')),
        item_count        INTEGER NOT NULL,
        block_number      INTEGER,
        block_hash        TEXT,
        created_at_ms     INTEGER NOT NULL,
        broadcast_count   INTEGER NOT NULL DEFAULT 0,
        last_broadcast_ms INTEGER,
        updated_at_ms     INTEGER NOT NULL,
        reason            TEXT,
        CHECK ((state IN ('mined', 'confirmed')) = (block_number IS NOT NULL AND block_hash IS NOT NULL))
      ) STRICT;
      -- a nonce carries at most one live transaction
      CREATE UNIQUE INDEX outbox_txs_live_nonce ON outbox_txs (nonce) WHERE state <> 'dropped';
      CREATE INDEX outbox_txs_open ON outbox_txs (state, nonce) WHERE state IN ('pending', 'mined');

      -- one row per signed MeterProof to anchor, queued in the transaction that closes the interval.
      -- state: signed → broadcast (bound to a pending tx) → mined → confirmed, or rejected (the
      -- registry will never accept it; kept with the reason). anchor_*: where it is anchored.
      CREATE TABLE outbox_items (
        interval_start_ms   INTEGER PRIMARY KEY REFERENCES meter_proofs (interval_start_ms),
        state               TEXT NOT NULL CHECK (state IN ('signed', 'broadcast', 'mined', 'confirmed', 'rejected')),
        tx_id               INTEGER REFERENCES outbox_txs (id),
        anchor_tx_hash      TEXT,
        anchor_block_number INTEGER,
        anchor_block_hash   TEXT,
        notified            INTEGER NOT NULL DEFAULT 0 CHECK (notified IN (0, 1)),
        queued_at_ms        INTEGER NOT NULL,
        updated_at_ms       INTEGER NOT NULL,
        reason              TEXT,
        CHECK ((state IN ('broadcast', 'mined', 'confirmed')) = (tx_id IS NOT NULL) OR anchor_tx_hash IS NOT NULL)
      ) STRICT;
      CREATE INDEX outbox_items_state ON outbox_items (state, interval_start_ms);
      CREATE INDEX outbox_items_tx ON outbox_items (tx_id) WHERE tx_id IS NOT NULL;
    `,
  },
  {
    version: 4,
    name: 'dispatch: sequences, orders, statuses, audit log, changed devices',
    up: `
      -- PROTOCOL.md §3: the highest sequence that passed checks 1–6, per (aggregator, gateway).
      -- Raised in the transaction that decides on the order, before any status is sent.
      CREATE TABLE dispatch_sequences (
        aggregator    TEXT NOT NULL,
        gateway       TEXT NOT NULL,
        last_sequence INTEGER NOT NULL CHECK (last_sequence >= 0),
        updated_at_ms INTEGER NOT NULL,
        PRIMARY KEY (aggregator, gateway)
      ) STRICT, WITHOUT ROWID;

      -- one row per accepted version of an order (orderId, modification). CANCELs are not versions:
      -- they end the live version and leave their modification in cancel_modification.
      -- state: accepted (waiting for its start or running, STARTED not yet sent) → started, then
      -- completed / cancelled / superseded / aborted. end_ms: the window end, or when a newer order
      -- of the same aggregator takes over (end_status 7 = SUPERSEDED at end_ms, else 3 = COMPLETED).
      CREATE TABLE dispatch_orders (
        order_key           TEXT PRIMARY KEY,
        order_id            TEXT NOT NULL,
        modification        INTEGER NOT NULL CHECK (modification >= 0),
        aggregator          TEXT NOT NULL,
        sequence            INTEGER NOT NULL,
        signal              INTEGER NOT NULL CHECK (signal BETWEEN 1 AND 4),
        value_w             INTEGER NOT NULL,
        price_micros        INTEGER NOT NULL,
        auction_id          TEXT NOT NULL,
        window_start_ms     INTEGER NOT NULL,
        window_end_ms       INTEGER NOT NULL,
        random_offset_ms    INTEGER NOT NULL CHECK (random_offset_ms >= 0),
        effective_start_ms  INTEGER NOT NULL,
        end_ms              INTEGER NOT NULL,
        end_status          INTEGER NOT NULL CHECK (end_status IN (3, 7)),
        ramp_ms             INTEGER NOT NULL,
        accepted_at_ms      INTEGER NOT NULL,
        state               TEXT NOT NULL CHECK (state IN ('accepted', 'started', 'completed', 'cancelled', 'superseded', 'aborted')),
        started_at_ms       INTEGER,
        ended_at_ms         INTEGER,
        delivered_wh        INTEGER,
        safety_limited      INTEGER NOT NULL DEFAULT 0 CHECK (safety_limited IN (0, 1)),
        cancel_modification INTEGER,
        envelope            TEXT NOT NULL,
        UNIQUE (order_id, modification),
        CHECK ((state IN ('accepted', 'started')) = (ended_at_ms IS NULL))
      ) STRICT;
      CREATE INDEX dispatch_orders_live ON dispatch_orders (state) WHERE state IN ('accepted', 'started');

      -- every OrderStatus, signed and stored BEFORE it is published; at most one per
      -- (orderId, modification, status). id = the order they are sent in. sent_at_ms: PUBACK.
      CREATE TABLE dispatch_statuses (
        id              INTEGER PRIMARY KEY,
        order_id        TEXT NOT NULL,
        modification    INTEGER NOT NULL,
        status          INTEGER NOT NULL,
        reason          INTEGER NOT NULL,
        at_ms           INTEGER NOT NULL,
        delivered_wh    INTEGER NOT NULL,
        payload         TEXT NOT NULL,
        created_at_ms   INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_attempt_ms INTEGER,
        sent_at_ms      INTEGER,
        UNIQUE (order_id, modification, status)
      ) STRICT;
      CREATE INDEX dispatch_statuses_unsent ON dispatch_statuses (id) WHERE sent_at_ms IS NULL;

      -- the audit log: one row per order received (raw bytes, signer, verdict, reason), per decision,
      -- per setpoint written and per status sent
      CREATE TABLE dispatch_audit (
        id           INTEGER PRIMARY KEY,
        at_ms        INTEGER NOT NULL,
        kind         TEXT NOT NULL CHECK (kind IN ('received', 'accepted', 'superseded', 'cancelled', 'started', 'completed', 'aborted', 'setpoint', 'status_sent')),
        order_id     TEXT,
        modification INTEGER,
        order_key    TEXT,
        raw          BLOB,
        raw_bytes    INTEGER,
        signer       TEXT,
        verdict      TEXT CHECK (verdict IN ('accepted', 'rejected')),
        reason       INTEGER,
        status       INTEGER,
        delivered_wh INTEGER,
        device_id    TEXT,
        what         TEXT,
        value        REAL,
        ok           INTEGER CHECK (ok IN (0, 1)),
        detail       TEXT
      ) STRICT;
      CREATE INDEX dispatch_audit_order ON dispatch_audit (order_id, id) WHERE order_id IS NOT NULL;
      CREATE INDEX dispatch_audit_received ON dispatch_audit (id) WHERE kind = 'received';

      -- devices flexgate has changed and not yet restored (RestoreLedger): written before the
      -- first write that changes a device, deleted once its restore is confirmed
      CREATE TABLE changed_devices (
        device_id     TEXT PRIMARY KEY,
        changed_at_ms INTEGER NOT NULL
      ) STRICT, WITHOUT ROWID;
    `,
  },
  {
    version: 5,
    name: 'dispatch: a status is signed when it is published (payload NULL until its PUBACK)',
    up: `
      -- A status row is the message itself; its signature is a function of the row and the gateway
      -- key (RFC 6979, deterministic), so it is made when the status is published, after the devices
      -- were written, and stored with the PUBACK. SQLite cannot drop a NOT NULL: the table is rebuilt.
      CREATE TABLE dispatch_statuses_v5 (
        id              INTEGER PRIMARY KEY,
        order_id        TEXT NOT NULL,
        modification    INTEGER NOT NULL,
        status          INTEGER NOT NULL,
        reason          INTEGER NOT NULL,
        at_ms           INTEGER NOT NULL,
        delivered_wh    INTEGER NOT NULL,
        payload         TEXT,
        created_at_ms   INTEGER NOT NULL,
        attempts        INTEGER NOT NULL DEFAULT 0,
        last_attempt_ms INTEGER,
        sent_at_ms      INTEGER,
        UNIQUE (order_id, modification, status)
      ) STRICT;
      INSERT INTO dispatch_statuses_v5 SELECT * FROM dispatch_statuses;
      DROP TABLE dispatch_statuses;
      ALTER TABLE dispatch_statuses_v5 RENAME TO dispatch_statuses;
      CREATE INDEX dispatch_statuses_unsent ON dispatch_statuses (id) WHERE sent_at_ms IS NULL;
    `,
  },
];

export function latestVersion(list: readonly Migration[]): number {
  return list.length === 0 ? 0 : list[list.length - 1]!.version;
}

/** Throws if the list is not numbered 1..n. Run at open so a bad edit fails every test at once. */
export function checkMigrationList(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migration list out of order: step ${i} has version ${m.version}, expected ${i + 1}`);
    }
  });
}

export function readUserVersion(db: BetterSqlite3.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

export interface MigrationResult {
  readonly fromVersion: number;
  readonly toVersion: number;
}

/**
 * Brings the file to the latest version: refuses a file from a newer flexgate, then applies each
 * missing step in its own transaction (with the `user_version` bump inside it).
 */
export function applyMigrations(
  db: BetterSqlite3.Database,
  path: string,
  list: readonly Migration[],
  log: Log,
): MigrationResult {
  checkMigrationList(list);
  const supported = latestVersion(list);
  const fromVersion = readUserVersion(db);
  if (fromVersion > supported) throw new StoreVersionError(path, fromVersion, supported);
  for (const step of list) {
    if (step.version <= fromVersion) continue;
    const run = db.transaction(() => {
      if (typeof step.up === 'string') db.exec(step.up);
      else step.up(db);
      // pragmas cannot take bound parameters; version is a checked integer
      db.pragma(`user_version = ${step.version}`);
    });
    try {
      // IMMEDIATE: take the write lock before reading anything the step depends on
      run.immediate();
    } catch (err) {
      throw new StoreMigrationError(path, step.version, step.name, err);
    }
    log.info({ version: step.version, migration: step.name }, 'store migrated');
  }
  return { fromVersion, toVersion: Math.max(fromVersion, supported) };
}
