/**
 * The persisted outbox: anchors signed MeterProofs on the proof registry exactly once, in interval
 * order, through an injected store (the agent's SQLite store implements `OutboxStore`; the
 * ledger-client never imports agent/).
 *
 * An item moves signed → broadcast → mined → confirmed; a transaction moves
 * pending → mined → confirmed, or pending → dropped. Every transition is written to the store
 * before the next step acts on it. The rules (also in README.md):
 *
 * 1. One transaction in flight. A new transaction is signed only when no stored transaction is
 *    pending (not yet mined). Its items are the oldest signed items, up to `maxBatch`, in interval
 *    order: one → `anchor`, several (a backlog) → `anchorBatch`.
 * 2. The nonce is the store's: max(highest stored nonce + 1, the node's pending count). The raw
 *    transaction, its hash and its nonce are stored (and the items bound to it) BEFORE it is
 *    broadcast. After an outage or a restart the same raw bytes are rebroadcast, so a nonce is
 *    never reused for other content nor skipped.
 * 3. "nonce too low" when rebroadcasting: our hash has a receipt → mined (success). No receipt →
 *    the nonce was used by another transaction; once the account's nonce count at the confirmed
 *    depth is above ours, our transaction provably can never be mined: it is marked dropped and its
 *    items go back to signed (the only case, with rule 5, where a proof is signed into a second
 *    transaction).
 * 4. A mined transaction whose block is no longer canonical and whose receipt is gone goes back
 *    to pending and its items to broadcast; the same raw transaction is rebroadcast. A receipt in
 *    another block just moves the anchor (and `onMined` is called again).
 * 5. A transaction mined but reverted is, once `confirmations` deep, dropped (its nonce is spent,
 *    it can never anchor): its items go back to signed and are re-checked by gas estimation.
 * 6. Before signing, the call is simulated (eth_estimateGas). A batch that would revert is cut to
 *    its first item. A single item that would revert: `AlreadyAnchored` with the same root and count
 *    on chain (someone relayed it) → confirmed with that anchor; anything else (a different root,
 *    OutOfOrder, a bad signature) → rejected with the reason. Rejected items stay in the store.
 * 7. Confirmed = its block is `confirmations` deep; confirmed items are not followed further.
 * 8. `onMined` is called after the item is durably mined, until it returns without throwing
 *    (at least once per mining, across restarts).
 *
 * The outbox assumes it is the only sender from the gateway's account; another sender does not
 * break exactly-once (rule 3 and the registry's append-only check), it costs a transaction.
 */
import type { Hex } from 'viem';
import { sleep, type Clock } from '../drivers/clock.js';
import type { Log } from '../drivers/log.js';
import {
  ChainError,
  ChainFundsError,
  ContractRevertError,
  type ChainClient,
  type FeeParams,
  type MeterProof,
  type SignedMeterProof,
  type TxReceipt,
} from './chain.js';

export type OutboxItemState = 'signed' | 'broadcast' | 'mined' | 'confirmed' | 'rejected';
export type OutboxTxState = 'pending' | 'mined' | 'confirmed' | 'dropped';

export interface Anchor {
  readonly txHash: Hex;
  readonly blockNumber: number;
  readonly blockHash: Hex;
}

export interface OutboxItem extends SignedMeterProof {
  readonly intervalStart: number;
  readonly state: OutboxItemState;
  /** The transaction it is bound to (broadcast, mined, confirmed), if any. */
  readonly txId: number | undefined;
  /** Where it is anchored (mined, confirmed). */
  readonly anchor: Anchor | undefined;
  /** `onMined` has been delivered for the current anchor. */
  readonly notified: boolean;
  readonly reason: string | undefined;
}

export interface OutboxTx {
  readonly id: number;
  readonly nonce: number;
  readonly hash: Hex;
  readonly raw: Hex;
  readonly state: OutboxTxState;
  readonly blockNumber: number | undefined;
  readonly blockHash: Hex | undefined;
  readonly broadcastCount: number;
}

/**
 * Durable state of the outbox. Every method is one atomic transaction of the store; when it
 * returns, the change is on disk.
 */
export interface OutboxStore {
  /** Items in state signed, oldest interval first, at most `limit`. */
  signedItems(limit: number): OutboxItem[];
  /** Transactions pending or mined, by nonce. */
  openTransactions(): OutboxTx[];
  transaction(txId: number): OutboxTx | undefined;
  itemsOfTransaction(txId: number): OutboxItem[];
  /** Items mined or confirmed whose `onMined` has not been delivered, oldest first. */
  unnotifiedItems(): OutboxItem[];
  /** The highest nonce of any stored transaction (also dropped ones), undefined when none. */
  maxNonce(): number | undefined;
  /** Stores a signed transaction (state pending) and binds the items (signed → broadcast). */
  insertTransaction(tx: { nonce: number; hash: Hex; raw: Hex }, intervalStarts: readonly number[], atMs: number): OutboxTx;
  recordBroadcast(txId: number, atMs: number): void;
  /** tx and its items → mined at this block (again, if the block changed); notified reset. */
  markMined(txId: number, anchor: { blockNumber: number; blockHash: Hex }, atMs: number): void;
  markConfirmed(txId: number, atMs: number): void;
  /** tx → pending, items → broadcast, block cleared: the receipt was lost to a reorg. */
  markReorged(txId: number, atMs: number): void;
  /** tx → dropped (it can never be mined), its items → signed and unbound. */
  markDropped(txId: number, reason: string, atMs: number): void;
  markRejected(intervalStart: number, reason: string, atMs: number): void;
  /** The item was anchored by someone else's transaction (relayed), confirmed at `anchor`. */
  markAnchoredElsewhere(intervalStart: number, anchor: Anchor, atMs: number): void;
  markNotified(intervalStart: number, atMs: number): void;
}

export interface OutboxOptions {
  readonly chain: ChainClient;
  readonly store: OutboxStore;
  readonly clock: Clock;
  readonly log: Log;
  /** Loop period; default 5 000 ms. */
  readonly pollIntervalMs?: number;
  /** Most proofs per anchorBatch; default 32 (the registry takes up to 128). */
  readonly maxBatch?: number;
  /** A pending transaction is rebroadcast this often; default 60 000 ms (and once after start). */
  readonly rebroadcastIntervalMs?: number;
  /** Called once the item is durably mined (again after a reorg moved it). May be async. */
  readonly onMined?: (item: OutboxItem, anchor: { txHash: Hex; blockNumber: number }) => void | Promise<void>;
  /** Called when an item is rejected (it will never be anchored by this outbox). */
  readonly onRejected?: (intervalStart: number, reason: string) => void;
}

/** What one round did (for tests and the status page). */
export interface OutboxRound {
  sent: number;
  rebroadcast: number;
  mined: number;
  confirmed: number;
  reorged: number;
  dropped: number;
  rejected: number;
  notified: number;
}

export class Outbox {
  private readonly chain: ChainClient;
  private readonly store: OutboxStore;
  private readonly clock: Clock;
  private readonly log: Log;
  private readonly pollIntervalMs: number;
  private readonly maxBatch: number;
  private readonly rebroadcastIntervalMs: number;
  private readonly onMined: OutboxOptions['onMined'];
  private readonly onRejected: OutboxOptions['onRejected'];
  /** Transaction id → when this process last handed it to the node. */
  private readonly lastSent = new Map<number, number>();
  private checked = false;
  private running: Promise<OutboxRound> | undefined;
  private loop: Promise<void> | undefined;
  private abort: AbortController | undefined;
  private lastErrorMessage: string | undefined;
  /** The last error of the loop (cleared by a good round), for the status page. */
  lastError: Error | undefined;

  constructor(options: OutboxOptions) {
    this.chain = options.chain;
    this.store = options.store;
    this.clock = options.clock;
    this.log = options.log.child({ module: 'outbox' });
    this.pollIntervalMs = options.pollIntervalMs ?? 5_000;
    this.maxBatch = options.maxBatch ?? 32;
    if (!Number.isSafeInteger(this.maxBatch) || this.maxBatch < 1 || this.maxBatch > 128) {
      throw new RangeError(`maxBatch must be 1..128, got ${this.maxBatch}`);
    }
    this.rebroadcastIntervalMs = options.rebroadcastIntervalMs ?? 60_000;
    this.onMined = options.onMined;
    this.onRejected = options.onRejected;
  }

  /** Runs rounds every `pollIntervalMs` of the clock until `signal` aborts or `stop()`. Never throws. */
  start(signal?: AbortSignal): void {
    if (this.loop !== undefined) return;
    const abort = new AbortController();
    this.abort = abort;
    if (signal !== undefined) {
      if (signal.aborted) abort.abort();
      else signal.addEventListener('abort', () => abort.abort(), { once: true });
    }
    this.loop = (async () => {
      while (!abort.signal.aborted) {
        try {
          await this.runOnce();
          this.lastError = undefined;
          this.lastErrorMessage = undefined;
        } catch (err) {
          this.reportLoopError(err);
        }
        try {
          await sleep(this.clock, this.pollIntervalMs, abort.signal);
        } catch {
          break; // aborted
        }
      }
    })();
  }

  /** Stops the loop and waits for the round in progress. */
  async stop(): Promise<void> {
    this.abort?.abort();
    const loop = this.loop;
    this.loop = undefined;
    await loop;
  }

  /**
   * One round: check the chain (first time), follow open transactions, deliver `onMined`, send the
   * next batch. Throws ChainConfigError / ChainFundsError / RpcError; the store is consistent
   * whenever it throws (items stay queued).
   */
  runOnce(): Promise<OutboxRound> {
    if (this.running !== undefined) return this.running;
    const round = this.round().finally(() => {
      this.running = undefined;
    });
    this.running = round;
    return round;
  }

  private async round(): Promise<OutboxRound> {
    const r: OutboxRound = { sent: 0, rebroadcast: 0, mined: 0, confirmed: 0, reorged: 0, dropped: 0, rejected: 0, notified: 0 };
    if (!this.checked) {
      const status = await this.chain.check();
      this.checked = true;
      this.log.info({ chainId: status.chainId, account: status.address, balanceWei: status.balanceWei.toString() }, 'chain checked');
    }
    let head = await this.chain.blockNumber();
    for (const tx of this.store.openTransactions()) {
      if (tx.state === 'pending') await this.followPending(tx, head, r);
      else await this.followMined(tx, head, r);
    }
    await this.notify(r);
    if (this.store.openTransactions().some((t) => t.state === 'pending')) return r;
    // Rule 1: a new transaction only when none is pending. Rejections free the head: try again.
    for (let attempt = 0; attempt < 4; attempt++) {
      const items = this.store.signedItems(this.maxBatch);
      if (items.length === 0) break;
      const outcome = await this.sendNew(items, head, r);
      if (outcome !== 'retry') break;
      head = await this.chain.blockNumber();
    }
    await this.notify(r);
    return r;
  }

  private confirmedDepth(blockNumber: number, head: number): boolean {
    return head - blockNumber + 1 >= this.chain.config.confirmations;
  }

  private async followPending(tx: OutboxTx, head: number, r: OutboxRound): Promise<void> {
    const now = this.clock.now();
    const last = this.lastSent.get(tx.id);
    if (last === undefined || now - last >= this.rebroadcastIntervalMs) {
      const result = await this.chain.broadcast(tx.raw);
      this.lastSent.set(tx.id, now);
      this.store.recordBroadcast(tx.id, now);
      if (last !== undefined || tx.broadcastCount > 0) r.rebroadcast++;
      this.log.debug({ tx: tx.hash, nonce: tx.nonce, result: result.kind }, 'broadcast');
      if (result.kind === 'underpriced') {
        this.log.warn({ tx: tx.hash, nonce: tx.nonce }, 'another transaction with this nonce is in the node pool; waiting');
      }
      // 'nonce-too-low' is settled below: our receipt (success) or another tx's (rule 3).
    }
    let receipt = await this.chain.receipt(tx.hash);
    if (receipt === undefined) {
      // Rule 3: is our nonce used, at the confirmed depth, by a transaction that is not ours?
      const depthBlock = head - this.chain.config.confirmations + 1;
      if (depthBlock < 0 || (await this.chain.transactionCount(depthBlock)) <= tx.nonce) return;
      receipt = await this.chain.receipt(tx.hash); // ours may have been mined meanwhile
      if (receipt === undefined) {
        const reason = `nonce ${tx.nonce} was used by another transaction of ${this.chain.address}`;
        this.store.markDropped(tx.id, reason, this.clock.now());
        this.lastSent.delete(tx.id);
        r.dropped++;
        this.log.warn({ tx: tx.hash, nonce: tx.nonce }, `${reason}; its proofs go into a new transaction`);
        return;
      }
    }
    if (!receipt.success) {
      // Rule 5: a reverted transaction spent its nonce; once confirmed, its items are re-checked.
      if (this.confirmedDepth(receipt.blockNumber, head)) {
        this.store.markDropped(tx.id, `reverted in block ${receipt.blockNumber}`, this.clock.now());
        this.lastSent.delete(tx.id);
        r.dropped++;
        this.log.warn({ tx: tx.hash, block: receipt.blockNumber }, 'anchoring transaction reverted; its proofs are checked again');
      }
      return;
    }
    this.store.markMined(tx.id, receipt, this.clock.now());
    r.mined++;
    this.log.info({ tx: tx.hash, nonce: tx.nonce, block: receipt.blockNumber }, 'anchoring transaction mined');
    if (this.confirmedDepth(receipt.blockNumber, head)) {
      this.store.markConfirmed(tx.id, this.clock.now());
      r.confirmed++;
    }
  }

  private async followMined(tx: OutboxTx, head: number, r: OutboxRound): Promise<void> {
    const blockNumber = tx.blockNumber!;
    const canonical = await this.chain.blockHash(blockNumber);
    if (canonical !== undefined && canonical === tx.blockHash) {
      if (this.confirmedDepth(blockNumber, head)) {
        this.store.markConfirmed(tx.id, this.clock.now());
        r.confirmed++;
      }
      return;
    }
    const receipt = await this.chain.receipt(tx.hash);
    if (receipt !== undefined && receipt.success) {
      this.store.markMined(tx.id, receipt, this.clock.now());
      this.log.warn({ tx: tx.hash, from: blockNumber, to: receipt.blockNumber }, 'reorg moved the anchoring transaction');
      if (this.confirmedDepth(receipt.blockNumber, head)) this.store.markConfirmed(tx.id, this.clock.now());
      return;
    }
    // Rule 4: the receipt was lost to a reorg: back to pending, the same raw tx is rebroadcast.
    this.store.markReorged(tx.id, this.clock.now());
    this.lastSent.delete(tx.id);
    r.reorged++;
    this.log.warn({ tx: tx.hash, block: blockNumber }, 'reorg removed the anchoring transaction; rebroadcasting it');
    const back = this.store.transaction(tx.id);
    if (back !== undefined) await this.followPending(back, head, r);
  }

  /** Signs, stores and broadcasts one transaction for `items`. 'retry' when items were settled without one. */
  private async sendNew(items: OutboxItem[], head: number, r: OutboxRound): Promise<'sent' | 'retry'> {
    let batch = items;
    let data = this.chain.anchorCalldata(batch);
    let fees: FeeParams;
    try {
      fees = await this.chain.fees(data);
    } catch (err) {
      if (!(err instanceof ContractRevertError)) throw err;
      if (batch.length > 1) {
        // Rule 6: isolate the item that makes the batch revert; the first one goes alone.
        this.log.warn({ error: err.message, size: batch.length }, 'batch would revert; anchoring its first proof alone');
        batch = [items[0]!];
        data = this.chain.anchorCalldata(batch);
        try {
          fees = await this.chain.fees(data);
        } catch (err2) {
          if (!(err2 instanceof ContractRevertError)) throw err2;
          return this.settleRevert(batch[0]!, err2, head, r);
        }
      } else {
        return this.settleRevert(batch[0]!, err, head, r);
      }
    }
    const stored = this.store.maxNonce();
    const nonce = Math.max(stored === undefined ? 0 : stored + 1, await this.chain.transactionCount('pending'));
    const signed = await this.chain.signTransaction(data, nonce, fees);
    const balance = await this.chain.balance('latest');
    if (balance < signed.maxCostWei) {
      // Nothing stored, nothing sent: the same nonce is used next time.
      throw new ChainFundsError(
        `account ${this.chain.address} has ${balance} wei, anchoring ${batch.length} proof(s) may cost up to ${signed.maxCostWei} wei: fund it (nothing was sent)`,
        this.chain.address,
        balance,
        signed.maxCostWei,
      );
    }
    const tx = this.store.insertTransaction(
      { nonce, hash: signed.hash, raw: signed.raw },
      batch.map((i) => i.intervalStart),
      this.clock.now(),
    );
    r.sent++;
    this.log.info(
      { tx: tx.hash, nonce, proofs: batch.length, from: batch[0]!.intervalStart, to: batch[batch.length - 1]!.intervalStart },
      batch.length === 1 ? 'anchoring proof' : 'anchoring backlog batch',
    );
    await this.followPending(tx, head, r);
    return 'sent';
  }

  private async settleRevert(item: OutboxItem, err: ContractRevertError, head: number, r: OutboxRound): Promise<'sent' | 'retry'> {
    const { gateway, intervalStart, root, count } = item.proof;
    if (err.errorName === 'AlreadyAnchored') {
      const onChain = await this.chain.rootOf(gateway, intervalStart);
      if (onChain.anchored && onChain.root.toLowerCase() === root.toLowerCase() && onChain.count === count) {
        const ev = await this.chain.findAnchorEvent(gateway, intervalStart);
        if (ev === undefined || !this.confirmedDepth(ev.blockNumber, head)) {
          this.log.info({ intervalStart }, 'proof anchored by another transaction; waiting for its confirmations');
          return 'sent'; // nothing more this round
        }
        this.store.markAnchoredElsewhere(intervalStart, { txHash: ev.transactionHash, blockNumber: ev.blockNumber, blockHash: ev.blockHash }, this.clock.now());
        this.log.info({ intervalStart, tx: ev.transactionHash }, 'proof was anchored by another transaction (relayed)');
        return 'retry';
      }
      return this.reject(intervalStart, `a different proof is anchored for interval ${intervalStart} (root ${onChain.root}, count ${onChain.count})`, r);
    }
    return this.reject(intervalStart, err.message, r);
  }

  private reject(intervalStart: number, reason: string, r: OutboxRound): 'retry' {
    this.store.markRejected(intervalStart, reason, this.clock.now());
    r.rejected++;
    this.log.error({ intervalStart, reason }, 'proof rejected by the registry; it stays in the store and will not be anchored');
    try {
      this.onRejected?.(intervalStart, reason);
    } catch (err) {
      this.log.error({ err: String(err) }, 'onRejected failed');
    }
    return 'retry';
  }

  private async notify(r: OutboxRound): Promise<void> {
    if (this.onMined === undefined) return;
    for (const item of this.store.unnotifiedItems()) {
      const anchor = item.anchor!;
      try {
        await this.onMined(item, { txHash: anchor.txHash, blockNumber: anchor.blockNumber });
      } catch (err) {
        this.log.warn({ intervalStart: item.intervalStart, err: String(err) }, 'onMined failed; retried next round');
        return; // keep the order: later items wait
      }
      this.store.markNotified(item.intervalStart, this.clock.now());
      r.notified++;
    }
  }

  private reportLoopError(err: unknown): void {
    const error = err instanceof Error ? err : new Error(String(err));
    this.lastError = error;
    if (error.message === this.lastErrorMessage) return; // said once; repeated each round otherwise
    this.lastErrorMessage = error.message;
    const retryable = !(error instanceof ChainError) || error.retryable;
    const fields = { err: error.message, kind: error.name };
    if (retryable && !(error instanceof ChainFundsError)) this.log.warn(fields, 'anchoring paused; items stay queued');
    else this.log.error(fields, 'anchoring stopped until fixed; items stay queued');
  }
}

export type { MeterProof, SignedMeterProof };
