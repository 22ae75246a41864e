/**
 * The SQLite side of the ledger-client's outbox (ledger-client/outbox.ts `OutboxStore`): queued
 * proofs (`outbox_items`, one per `meter_proofs` row) and the anchoring transactions with their raw
 * bytes and nonces (`outbox_txs`), schema step 3. Every method is one transaction, committed and
 * fsynced (synchronous = FULL) when it returns.
 *
 * It implements ledger-client's `OutboxStore` interface (types only are imported from there).
 */
import type BetterSqlite3 from 'better-sqlite3';

import type { Hex } from '../../ledger-client/eip712.js';
import type { OutboxItem, OutboxItemState, OutboxStore, OutboxTx, OutboxTxState } from '../../ledger-client/outbox.js';

export type { OutboxItemState, OutboxTxState };

/** A `meter_proofs` row (schema step 2): the signed MeterProof of one closed interval. */
export interface MeterProofRow {
  readonly intervalStartMs: number;
  readonly intervalEndMs: number;
  /** The gateway's address, lowercase 0x hex. */
  readonly gateway: Hex;
  readonly leafCount: number;
  readonly root: Hex;
  readonly importWh: number;
  readonly exportWh: number;
  /** 65-byte EIP-712 signature, 0x hex. */
  readonly signature: Hex;
  readonly closedAtMs: number;
}

/** The outbox's own types: this store keeps exactly what ledger-client/outbox.ts works with. */
export type StoredOutboxItem = OutboxItem;
export type StoredOutboxTx = OutboxTx;

/** Thrown when a call does not fit the stored state (a bug in the caller, never bad luck). */
export class OutboxStoreError extends Error {
  override readonly name = 'OutboxStoreError';
}

/**
 * Queues an interval's proof for anchoring: inserts its outbox item (state signed). Call it inside
 * the transaction that inserts the `meter_proofs` row, or use `insertMeterProofAndQueue`.
 */
export function queueProof(db: BetterSqlite3.Database, intervalStartMs: number, atMs: number): void {
  db.prepare(
    `INSERT INTO outbox_items (interval_start_ms, state, queued_at_ms, updated_at_ms) VALUES (?, 'signed', ?, ?)`,
  ).run(intervalStartMs, atMs, atMs);
}

/**
 * Closes an interval durably: its `meter_proofs` row and its outbox item in ONE transaction (nested
 * in the caller's transaction as a savepoint when there is one, so the agent can add the leaves too).
 */
export function insertMeterProofAndQueue(db: BetterSqlite3.Database, proof: MeterProofRow): void {
  db.transaction(() => {
    db.prepare(
      `INSERT INTO meter_proofs (interval_start_ms, interval_end_ms, gateway, leaf_count, root, import_wh, export_wh, signature, closed_at_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(
      proof.intervalStartMs,
      proof.intervalEndMs,
      proof.gateway.toLowerCase(),
      proof.leafCount,
      proof.root.toLowerCase(),
      proof.importWh,
      proof.exportWh,
      proof.signature.toLowerCase(),
      proof.closedAtMs,
    );
    queueProof(db, proof.intervalStartMs, proof.closedAtMs);
  })();
}

interface ItemRow {
  interval_start_ms: number;
  state: OutboxItemState;
  tx_id: number | null;
  anchor_tx_hash: string | null;
  anchor_block_number: number | null;
  anchor_block_hash: string | null;
  notified: number;
  reason: string | null;
  interval_end_ms: number;
  gateway: string;
  leaf_count: number;
  root: string;
  import_wh: number;
  export_wh: number;
  signature: string;
}

interface TxRow {
  id: number;
  nonce: number;
  hash: string;
  raw: Buffer;
  state: OutboxTxState;
  block_number: number | null;
  block_hash: string | null;
  broadcast_count: number;
}

const ITEM_SELECT = `
  SELECT o.interval_start_ms, o.state, o.tx_id, o.anchor_tx_hash, o.anchor_block_number, o.anchor_block_hash,
         o.notified, o.reason, p.interval_end_ms, p.gateway, p.leaf_count, p.root, p.import_wh, p.export_wh, p.signature
  FROM outbox_items o JOIN meter_proofs p ON p.interval_start_ms = o.interval_start_ms`;

function toItem(r: ItemRow): StoredOutboxItem {
  return {
    intervalStart: r.interval_start_ms,
    proof: {
      gateway: r.gateway as Hex,
      intervalStart: r.interval_start_ms,
      intervalEnd: r.interval_end_ms,
      count: r.leaf_count,
      root: r.root as Hex,
      importWh: r.import_wh,
      exportWh: r.export_wh,
    },
    signature: r.signature as Hex,
    state: r.state,
    txId: r.tx_id ?? undefined,
    anchor:
      r.anchor_tx_hash !== null && r.anchor_block_number !== null && r.anchor_block_hash !== null
        ? { txHash: r.anchor_tx_hash as Hex, blockNumber: r.anchor_block_number, blockHash: r.anchor_block_hash as Hex }
        : undefined,
    notified: r.notified === 1,
    reason: r.reason ?? undefined,
  };
}

function toTx(r: TxRow): StoredOutboxTx {
  return {
    id: r.id,
    nonce: r.nonce,
    hash: r.hash as Hex,
    raw: `0x${r.raw.toString('hex')}`,
    state: r.state,
    blockNumber: r.block_number ?? undefined,
    blockHash: (r.block_hash ?? undefined) as Hex | undefined,
    broadcastCount: r.broadcast_count,
  };
}

const TX_COLUMNS = 'id, nonce, hash, raw, state, block_number, block_hash, broadcast_count';

/** `OutboxStore` (ledger-client/outbox.ts) on the agent's SQLite file (`store.database`). */
export class SqliteOutboxStore implements OutboxStore {
  private readonly db: BetterSqlite3.Database;

  constructor(db: BetterSqlite3.Database) {
    this.db = db;
  }

  signedItems(limit: number): StoredOutboxItem[] {
    const rows = this.db
      .prepare(`${ITEM_SELECT} WHERE o.state = 'signed' ORDER BY o.interval_start_ms LIMIT ?`)
      .all(limit) as ItemRow[];
    return rows.map(toItem);
  }

  /** Every item in interval order (status page, tests). */
  allItems(): StoredOutboxItem[] {
    return (this.db.prepare(`${ITEM_SELECT} ORDER BY o.interval_start_ms`).all() as ItemRow[]).map(toItem);
  }

  item(intervalStart: number): StoredOutboxItem | undefined {
    const row = this.db.prepare(`${ITEM_SELECT} WHERE o.interval_start_ms = ?`).get(intervalStart) as ItemRow | undefined;
    return row === undefined ? undefined : toItem(row);
  }

  /** Items per state (status page). */
  counts(): Record<OutboxItemState, number> {
    const out: Record<OutboxItemState, number> = { signed: 0, broadcast: 0, mined: 0, confirmed: 0, rejected: 0 };
    for (const r of this.db.prepare(`SELECT state, count(*) AS n FROM outbox_items GROUP BY state`).all() as Array<{ state: OutboxItemState; n: number }>) {
      out[r.state] = r.n;
    }
    return out;
  }

  openTransactions(): StoredOutboxTx[] {
    const rows = this.db
      .prepare(`SELECT ${TX_COLUMNS} FROM outbox_txs WHERE state IN ('pending', 'mined') ORDER BY nonce`)
      .all() as TxRow[];
    return rows.map(toTx);
  }

  /** Every transaction by id (tests, diagnostics). */
  allTransactions(): StoredOutboxTx[] {
    return (this.db.prepare(`SELECT ${TX_COLUMNS} FROM outbox_txs ORDER BY id`).all() as TxRow[]).map(toTx);
  }

  transaction(txId: number): StoredOutboxTx | undefined {
    const row = this.db.prepare(`SELECT ${TX_COLUMNS} FROM outbox_txs WHERE id = ?`).get(txId) as TxRow | undefined;
    return row === undefined ? undefined : toTx(row);
  }

  itemsOfTransaction(txId: number): StoredOutboxItem[] {
    const rows = this.db.prepare(`${ITEM_SELECT} WHERE o.tx_id = ? ORDER BY o.interval_start_ms`).all(txId) as ItemRow[];
    return rows.map(toItem);
  }

  unnotifiedItems(): StoredOutboxItem[] {
    const rows = this.db
      .prepare(`${ITEM_SELECT} WHERE o.state IN ('mined', 'confirmed') AND o.notified = 0 ORDER BY o.interval_start_ms`)
      .all() as ItemRow[];
    return rows.map(toItem);
  }

  maxNonce(): number | undefined {
    const row = this.db.prepare(`SELECT max(nonce) AS n FROM outbox_txs`).get() as { n: number | null };
    return row.n ?? undefined;
  }

  insertTransaction(tx: { nonce: number; hash: Hex; raw: Hex }, intervalStarts: readonly number[], atMs: number): StoredOutboxTx {
    if (intervalStarts.length === 0) throw new OutboxStoreError('insertTransaction: no items');
    const run = this.db.transaction((): StoredOutboxTx => {
      const { lastInsertRowid } = this.db
        .prepare(
          `INSERT INTO outbox_txs (nonce, hash, raw, state, item_count, created_at_ms, updated_at_ms)
           VALUES (?, ?, ?, 'pending', ?, ?, ?)`,
        )
        .run(tx.nonce, tx.hash.toLowerCase(), Buffer.from(tx.raw.slice(2), 'hex'), intervalStarts.length, atMs, atMs);
      const id = Number(lastInsertRowid);
      const bind = this.db.prepare(
        `UPDATE outbox_items SET state = 'broadcast', tx_id = ?, updated_at_ms = ?, reason = NULL
         WHERE interval_start_ms = ? AND state = 'signed'`,
      );
      for (const start of intervalStarts) {
        if (bind.run(id, atMs, start).changes !== 1) {
          throw new OutboxStoreError(`insertTransaction: interval ${start} is not a signed outbox item`);
        }
      }
      return this.transaction(id)!;
    });
    return run.immediate();
  }

  recordBroadcast(txId: number, atMs: number): void {
    this.db
      .prepare(`UPDATE outbox_txs SET broadcast_count = broadcast_count + 1, last_broadcast_ms = ?, updated_at_ms = ? WHERE id = ?`)
      .run(atMs, atMs, txId);
  }

  markMined(txId: number, anchor: { blockNumber: number; blockHash: Hex }, atMs: number): void {
    this.db.transaction(() => {
      const tx = this.requireTx(txId, ['pending', 'mined', 'confirmed']);
      const blockHash = anchor.blockHash.toLowerCase();
      const moved = tx.block_hash !== blockHash;
      this.db
        .prepare(`UPDATE outbox_txs SET state = CASE WHEN state = 'confirmed' AND NOT ? THEN 'confirmed' ELSE 'mined' END,
                  block_number = ?, block_hash = ?, updated_at_ms = ? WHERE id = ?`)
        .run(moved ? 1 : 0, anchor.blockNumber, blockHash, atMs, txId);
      this.db
        .prepare(
          `UPDATE outbox_items SET state = CASE WHEN state = 'confirmed' AND NOT ? THEN 'confirmed' ELSE 'mined' END,
           anchor_tx_hash = ?, anchor_block_number = ?, anchor_block_hash = ?,
           notified = CASE WHEN ? THEN 0 ELSE notified END, updated_at_ms = ? WHERE tx_id = ?`,
        )
        .run(moved ? 1 : 0, tx.hash, anchor.blockNumber, blockHash, moved ? 1 : 0, atMs, txId);
    })();
  }

  markConfirmed(txId: number, atMs: number): void {
    this.db.transaction(() => {
      this.requireTx(txId, ['mined', 'confirmed']);
      this.db.prepare(`UPDATE outbox_txs SET state = 'confirmed', updated_at_ms = ? WHERE id = ?`).run(atMs, txId);
      this.db.prepare(`UPDATE outbox_items SET state = 'confirmed', updated_at_ms = ? WHERE tx_id = ?`).run(atMs, txId);
    })();
  }

  markReorged(txId: number, atMs: number): void {
    this.db.transaction(() => {
      this.requireTx(txId, ['mined', 'confirmed']);
      this.db
        .prepare(`UPDATE outbox_txs SET state = 'pending', block_number = NULL, block_hash = NULL, updated_at_ms = ? WHERE id = ?`)
        .run(atMs, txId);
      this.db
        .prepare(
          `UPDATE outbox_items SET state = 'broadcast', anchor_tx_hash = NULL, anchor_block_number = NULL,
           anchor_block_hash = NULL, notified = 0, updated_at_ms = ? WHERE tx_id = ?`,
        )
        .run(atMs, txId);
    })();
  }

  markDropped(txId: number, reason: string, atMs: number): void {
    this.db.transaction(() => {
      this.requireTx(txId, ['pending']);
      this.db.prepare(`UPDATE outbox_txs SET state = 'dropped', reason = ?, updated_at_ms = ? WHERE id = ?`).run(reason, atMs, txId);
      this.db
        .prepare(
          `UPDATE outbox_items SET state = 'signed', tx_id = NULL, anchor_tx_hash = NULL, anchor_block_number = NULL,
           anchor_block_hash = NULL, notified = 0, reason = ?, updated_at_ms = ? WHERE tx_id = ?`,
        )
        .run(reason, atMs, txId);
    })();
  }

  markRejected(intervalStart: number, reason: string, atMs: number): void {
    const { changes } = this.db
      .prepare(`UPDATE outbox_items SET state = 'rejected', reason = ?, updated_at_ms = ? WHERE interval_start_ms = ? AND state = 'signed'`)
      .run(reason, atMs, intervalStart);
    if (changes !== 1) throw new OutboxStoreError(`markRejected: interval ${intervalStart} is not a signed outbox item`);
  }

  markAnchoredElsewhere(intervalStart: number, anchor: { txHash: Hex; blockNumber: number; blockHash: Hex }, atMs: number): void {
    const { changes } = this.db
      .prepare(
        `UPDATE outbox_items SET state = 'confirmed', anchor_tx_hash = ?, anchor_block_number = ?, anchor_block_hash = ?,
         notified = 0, reason = 'anchored by another transaction', updated_at_ms = ? WHERE interval_start_ms = ? AND state = 'signed'`,
      )
      .run(anchor.txHash.toLowerCase(), anchor.blockNumber, anchor.blockHash.toLowerCase(), atMs, intervalStart);
    if (changes !== 1) throw new OutboxStoreError(`markAnchoredElsewhere: interval ${intervalStart} is not a signed outbox item`);
  }

  markNotified(intervalStart: number, atMs: number): void {
    this.db.prepare(`UPDATE outbox_items SET notified = 1, updated_at_ms = ? WHERE interval_start_ms = ?`).run(atMs, intervalStart);
  }

  private requireTx(txId: number, states: readonly OutboxTxState[]): TxRow {
    const row = this.db.prepare(`SELECT ${TX_COLUMNS} FROM outbox_txs WHERE id = ?`).get(txId) as TxRow | undefined;
    if (row === undefined) throw new OutboxStoreError(`outbox transaction ${txId} does not exist`);
    if (!states.includes(row.state)) {
      throw new OutboxStoreError(`outbox transaction ${txId} is ${row.state}, expected ${states.join(' or ')}`);
    }
    return row;
  }
}
