/**
 * The persisted outbox end to end: ledger-client's Outbox + ChainClient on a real anvil node with
 * the real ProofRegistry, and this folder's SqliteOutboxStore on real SQLite files. What anchored
 * is read back from the node's own ProofAnchored events, not from the store.
 */
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeEventLog, keccak256, toHex, type Address, type Hex } from 'viem';
import { generatePrivateKey } from 'viem/accounts';
import { silentLog } from '../../drivers/log.js';
import { startAnvil, type Anvil } from '../../ledger-client/anvil.js';
import { ChainClient, ChainConfigError, ChainFundsError, RpcMalformedError, RpcUnreachableError, type ChainConfig } from '../../ledger-client/chain.js';
import { abi, bytecode } from '../../ledger-client/contracts/generated/ProofRegistry.js';
import { addressOf, sign, type MeterProof } from '../../ledger-client/eip712.js';
import { Outbox, type OutboxOptions, type OutboxRound, type OutboxStore } from '../../ledger-client/outbox.js';
import { openStore, type Store } from './store.js';
import { insertMeterProofAndQueue, queueProof, SqliteOutboxStore } from './outbox-store.js';
import { ManualClock } from './test-clock.js';
import { tempDir } from './test-helpers.js';

// Compile-time check that the store implements the ledger-client's interface.
const storeTypeCheck = (db: Store): OutboxStore => new SqliteOutboxStore(db.database);
void storeTypeCheck;

const INTERVAL_MS = 15 * 60 * 1000;
const T0 = Date.UTC(2025, 0, 1);

let anvil: Anvil;
let deployer: Address;
let nextKey = 1;
const cleanups: Array<() => void | Promise<void>> = [];

beforeAll(async () => {
  anvil = await startAnvil({ chainId: 31337, accounts: 20 });
  deployer = anvil.accounts[0]!.address;
});
afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await anvil?.stop();
});

/** anvil mines a moment after it accepts a transaction. */
async function minedReceipt(hash: Hex): Promise<{ contractAddress: Address }> {
  for (let i = 0; i < 200; i++) {
    const receipt = await anvil.rpc<{ contractAddress: Address } | null>('eth_getTransactionReceipt', [hash]);
    if (receipt !== null) return receipt;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`${hash} not mined`);
}

async function deployRegistry(): Promise<Address> {
  const hash = await anvil.rpc<Hex>('eth_sendTransaction', [{ from: deployer, data: bytecode, gas: '0x2dc6c0' }]);
  return (await minedReceipt(hash)).contractAddress;
}

/** A fresh funded gateway key (one dev account per test, so nonces do not interfere). */
function gatewayKey(): Hex {
  const key = anvil.privateKeys[nextKey++];
  if (key === undefined) throw new Error('out of dev accounts');
  return key;
}

function makeProof(key: Hex, i: number, count = 3): { proof: MeterProof; signature: Hex } {
  const proof: MeterProof = {
    gateway: addressOf(key),
    intervalStart: T0 + i * INTERVAL_MS,
    intervalEnd: T0 + (i + 1) * INTERVAL_MS,
    count,
    root: count === 0 ? `0x${'00'.repeat(32)}` : keccak256(toHex(`root ${i}`)),
    importWh: 100 + i,
    exportWh: i,
  };
  return { proof, signature: sign(key, 'MeterProof', proof, anvil.chainId) };
}

interface Site {
  path: string;
  store: Store;
  outboxStore: SqliteOutboxStore;
  key: Hex;
  registry: Address;
  config: ChainConfig;
  mined: Array<{ intervalStart: number; txHash: Hex; blockNumber: number }>;
  reopen(): void;
  outbox(options?: Partial<OutboxOptions> & { rpcUrl?: string; chainId?: number; confirmations?: number; key?: Hex }): Outbox;
  queue(from: number, to: number, signer?: Hex): void;
}

async function site(confirmations = 1): Promise<Site> {
  const { dir, cleanup } = tempDir('flexgate-outbox-');
  const path = join(dir, 'flexgate.db');
  const clock = new ManualClock(T0);
  const key = gatewayKey();
  const registry = await deployRegistry();
  const s: Site = {
    path,
    store: openStore({ path, clock, log: silentLog }),
    outboxStore: undefined as unknown as SqliteOutboxStore, // set just below
    key,
    registry,
    config: { rpcUrl: anvil.rpcUrl, chainId: anvil.chainId, contracts: { proofs: registry }, confirmations },
    mined: [],
    reopen() {
      // A restart: the old handle is abandoned (as after kill -9) and the file opened again.
      s.store.close();
      s.store = openStore({ path, clock, log: silentLog });
      s.outboxStore = new SqliteOutboxStore(s.store.database);
    },
    outbox(o = {}) {
      const config = {
        ...s.config,
        ...(o.rpcUrl !== undefined ? { rpcUrl: o.rpcUrl } : {}),
        ...(o.chainId !== undefined ? { chainId: o.chainId } : {}),
        ...(o.confirmations !== undefined ? { confirmations: o.confirmations } : {}),
        rpcTimeoutMs: 2_000,
      };
      const chain = new ChainClient(config, o.key ?? key, { log: silentLog });
      return new Outbox({
        chain,
        store: s.outboxStore,
        clock,
        log: silentLog,
        onMined: (item, anchor) => {
          s.mined.push({ intervalStart: item.intervalStart, ...anchor });
        },
        ...o,
      });
    },
    queue(from, to, signer = key) {
      for (let i = from; i < to; i++) {
        const { proof, signature } = makeProof(signer, i);
        insertMeterProofAndQueue(s.store.database, {
          intervalStartMs: proof.intervalStart,
          intervalEndMs: proof.intervalEnd,
          gateway: addressOf(key),
          leafCount: proof.count,
          root: proof.root,
          importWh: proof.importWh,
          exportWh: proof.exportWh,
          signature,
          closedAtMs: proof.intervalEnd,
        });
      }
    },
  };
  s.outboxStore = new SqliteOutboxStore(s.store.database);
  cleanups.push(() => {
    s.store.close();
    cleanup();
  });
  return s;
}

/** The registry's ProofAnchored events, from the node. */
async function anchoredOnChain(registry: Address): Promise<Array<{ intervalStart: number; txHash: Hex; root: Hex }>> {
  const logs = await anvil.rpc<Array<{ data: Hex; topics: [Hex, ...Hex[]]; transactionHash: Hex }>>('eth_getLogs', [
    { address: registry, fromBlock: '0x0', toBlock: 'latest' },
  ]);
  return logs.map((l) => {
    const ev = decodeEventLog({ abi, data: l.data, topics: l.topics });
    if (ev.eventName !== 'ProofAnchored') throw new Error(`unexpected event ${ev.eventName}`);
    return { intervalStart: Number(ev.args.intervalStart), txHash: l.transactionHash, root: ev.args.root };
  });
}

/**
 * Runs rounds until nothing is pending or signed (anvil mines a moment after it accepts a
 * transaction, so a receipt may show up one round later); the rounds' counts summed.
 */
async function settle(outbox: Outbox, store: SqliteOutboxStore): Promise<OutboxRound> {
  const total: OutboxRound = { sent: 0, rebroadcast: 0, mined: 0, confirmed: 0, reorged: 0, dropped: 0, rejected: 0, notified: 0 };
  for (let i = 0; i < 100; i++) {
    const r = await outbox.runOnce();
    for (const k of Object.keys(total) as Array<keyof OutboxRound>) total[k] += r[k];
    if (store.signedItems(1).length === 0 && store.openTransactions().every((t) => t.state !== 'pending')) return total;
    await new Promise((res) => setTimeout(res, 10));
  }
  throw new Error(`outbox did not settle: ${JSON.stringify(total)}`);
}

const starts = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => T0 + (from + i) * INTERVAL_MS);

async function closedPort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Forwards JSON-RPC to anvil, except the methods given a canned reply body. */
async function rpcProxy(override: Record<string, string>): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString('utf8')));
    req.on('end', () => {
      const { method } = JSON.parse(body) as { method: string };
      const canned = override[method];
      if (canned !== undefined) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(canned);
        return;
      }
      fetch(anvil.rpcUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        .then(async (r) => res.writeHead(200, { 'content-type': 'application/json' }).end(await r.text()))
        .catch(() => res.destroy());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, server };
}

describe('outbox store (SQLite, schema step 3)', () => {
  it('closes an interval (proof row + outbox item) in one transaction, and refuses an item without a proof', async () => {
    const s = await site();
    s.queue(0, 2);
    expect(s.outboxStore.counts()).toEqual({ signed: 2, broadcast: 0, mined: 0, confirmed: 0, rejected: 0 });
    expect(s.store.database.pragma('user_version', { simple: true })).toBeGreaterThanOrEqual(3);
    // the same interval again: the proof row conflicts, and no second outbox item appears
    expect(() => s.queue(1, 2)).toThrow(/UNIQUE|PRIMARY KEY/);
    expect(s.outboxStore.allItems().map((i) => i.intervalStart)).toEqual(starts(0, 2));
    // an outbox item must reference a stored proof
    expect(() => queueProof(s.store.database, T0 + 99 * INTERVAL_MS, T0)).toThrow(/FOREIGN KEY/);
    const item = s.outboxStore.item(T0)!;
    expect(item.state).toBe('signed');
    expect(item.proof).toEqual(makeProof(s.key, 0).proof);
    // binding a transaction to an item that is not signed rolls the whole insert back
    expect(() => s.outboxStore.insertTransaction({ nonce: 0, hash: `0x${'11'.repeat(32)}`, raw: '0x02' }, [T0, T0 + 5], T0)).toThrow(/not a signed/);
    expect(s.outboxStore.allTransactions()).toEqual([]);
    expect(s.outboxStore.item(T0)!.state).toBe('signed');
    expect(s.store.integrityCheck()).toEqual([]);
  });
});

describe('outbox on a real anvil node', () => {
  it('anchors one proof: signed → broadcast → mined → confirmed, onMined with the anchor, once on chain', async () => {
    const s = await site(3);
    s.queue(0, 1);
    const outbox = s.outbox();
    expect(await settle(outbox, s.outboxStore)).toMatchObject({ sent: 1, mined: 1, confirmed: 0 });
    const item = s.outboxStore.item(T0)!;
    expect(item.state).toBe('mined');
    const tx = s.outboxStore.allTransactions()[0]!;
    expect(tx.state).toBe('mined');
    // the stored raw bytes are exactly what was mined
    expect(keccak256(tx.raw)).toBe(tx.hash);
    expect(s.mined).toEqual([{ intervalStart: T0, txHash: tx.hash, blockNumber: tx.blockNumber }]);
    const input = await anvil.rpc<{ input: Hex }>('eth_getTransactionByHash', [tx.hash]);
    expect(input.input.slice(0, 10)).not.toBe(keccak256(toHex('anchorBatch((address,uint64,uint64,uint32,bytes32,uint64,uint64)[],bytes[])')).slice(0, 10));
    await anvil.mine(2);
    expect(await outbox.runOnce()).toMatchObject({ confirmed: 1, sent: 0 });
    expect(s.outboxStore.item(T0)!.state).toBe('confirmed');
    expect(await anchoredOnChain(s.registry)).toEqual([{ intervalStart: T0, txHash: tx.hash, root: makeProof(s.key, 0).proof.root }]);
    expect(await outbox.runOnce()).toMatchObject({ sent: 0, mined: 0, notified: 0 });
    expect(s.mined).toHaveLength(1);
  });

  it('anchors a backlog in bounded batches, in order, once the unreachable RPC endpoint is back', async () => {
    const s = await site();
    s.queue(0, 2);
    const down = s.outbox({ rpcUrl: `http://127.0.0.1:${await closedPort()}`, maxBatch: 4 });
    await expect(down.runOnce()).rejects.toBeInstanceOf(RpcUnreachableError);
    await expect(down.runOnce()).rejects.toThrow(/eth_chainId: .*unreachable/);
    s.queue(2, 7); // intervals keep closing during the outage
    expect(s.outboxStore.counts().signed).toBe(7);
    expect(s.outboxStore.allTransactions()).toEqual([]);

    const up = s.outbox({ maxBatch: 4 });
    expect(await settle(up, s.outboxStore)).toMatchObject({ sent: 2, mined: 2 });
    expect(await up.runOnce()).toMatchObject({ sent: 0 });
    const txs = s.outboxStore.allTransactions();
    expect(txs.map((t) => s.outboxStore.itemsOfTransaction(t.id).map((i) => i.intervalStart))).toEqual([starts(0, 4), starts(4, 7)]);
    expect(txs.map((t) => t.nonce)).toEqual([txs[0]!.nonce, txs[0]!.nonce + 1]);
    const events = await anchoredOnChain(s.registry);
    expect(events.map((e) => e.intervalStart)).toEqual(starts(0, 7));
    expect(events.map((e) => e.txHash)).toEqual([...Array(4).fill(txs[0]!.hash), ...Array(3).fill(txs[1]!.hash)]);
    expect(s.mined.map((m) => m.intervalStart)).toEqual(starts(0, 7));
  });

  it('a receipt lost to a reorg goes back to broadcast, the same raw tx is mined again, one ProofAnchored per interval', async () => {
    const s = await site(3);
    s.queue(0, 2);
    const outbox = s.outbox();
    expect(await settle(outbox, s.outboxStore)).toMatchObject({ sent: 1, mined: 1 });
    const before = s.outboxStore.allTransactions()[0]!;
    const minedBlock = before.blockNumber!;
    // replace the block holding our transaction (it is not re-included: the node forgets it)
    await anvil.reorg(1);
    expect(await anvil.rpc('eth_getTransactionReceipt', [before.hash])).toBeNull();
    expect(await anchoredOnChain(s.registry)).toEqual([]);

    expect(await settle(outbox, s.outboxStore)).toMatchObject({ reorged: 1, mined: 1, sent: 0 });
    const after = s.outboxStore.allTransactions();
    expect(after).toHaveLength(1); // no second transaction: the same raw bytes again
    expect(after[0]!.hash).toBe(before.hash);
    expect(after[0]!.blockHash).not.toBe(before.blockHash);
    expect(after[0]!.blockNumber).toBeGreaterThan(minedBlock);
    // onMined again, with the new block
    expect(s.mined.map((m) => m.blockNumber)).toEqual([minedBlock, minedBlock, after[0]!.blockNumber, after[0]!.blockNumber]);
    await anvil.mine(3);
    await outbox.runOnce();
    expect(s.outboxStore.counts()).toMatchObject({ confirmed: 2 });
    const events = await anchoredOnChain(s.registry);
    expect(events.map((e) => e.intervalStart)).toEqual(starts(0, 2));
    expect(new Set(events.map((e) => e.txHash))).toEqual(new Set([before.hash]));
  });

  it('restart: a stored but never broadcast tx is sent as it is; "nonce too low" with our receipt counts as mined', async () => {
    const s = await site();
    s.queue(0, 3);
    // 1) crash right after the raw tx was stored, before it reached the node
    const crashing: OutboxStore = Object.create(s.outboxStore) as OutboxStore;
    crashing.insertTransaction = (tx, items, at) => {
      s.outboxStore.insertTransaction(tx, items, at);
      throw new Error('killed');
    };
    const first = s.outbox({ store: crashing, maxBatch: 2 });
    await expect(first.runOnce()).rejects.toThrow('killed');
    s.reopen();
    const [stored] = s.outboxStore.allTransactions();
    expect(stored).toMatchObject({ state: 'pending', broadcastCount: 0 });
    expect(s.outboxStore.counts()).toMatchObject({ broadcast: 2, signed: 1 });

    // 2) a new outbox on the same file sends the same bytes (same nonce, same hash); the node
    //    does not mine yet, and the process dies again before it sees a receipt
    await anvil.setAutomine(false);
    const second = s.outbox({ maxBatch: 2 });
    expect(await second.runOnce()).toMatchObject({ sent: 0, mined: 0 });
    expect(await anvil.rpc('eth_getTransactionByHash', [stored!.hash])).not.toBeNull();
    await anvil.mine(1);
    await anvil.setAutomine(true);
    s.reopen();

    // 3) the next start rebroadcasts: "nonce too low", our receipt exists → mined, then the rest
    const third = s.outbox({ maxBatch: 2 });
    expect(await settle(third, s.outboxStore)).toMatchObject({ rebroadcast: 1, mined: 2, sent: 1, dropped: 0 });
    const txs = s.outboxStore.allTransactions();
    expect(txs.map((t) => t.hash)).toEqual([stored!.hash, txs[1]!.hash]);
    expect(txs[0]!.state).toBe('confirmed'); // confirmations 1: its block is on the chain already
    // mined, or already confirmed when a slow round saw it again before settling
    expect(['mined', 'confirmed']).toContain(txs[1]!.state);
    expect(txs[1]!.nonce).toBe(stored!.nonce + 1);
    expect((await anchoredOnChain(s.registry)).map((e) => e.intervalStart)).toEqual(starts(0, 3));
    expect(s.mined.map((m) => m.intervalStart)).toEqual(starts(0, 3));
  });

  it('a stored tx whose nonce another transaction used is dropped; its proofs go into a new tx, anchored once', async () => {
    const s = await site();
    s.queue(0, 2);
    const crashing: OutboxStore = Object.create(s.outboxStore) as OutboxStore;
    crashing.insertTransaction = (tx, items, at) => {
      s.outboxStore.insertTransaction(tx, items, at);
      throw new Error('killed');
    };
    await expect(s.outbox({ store: crashing }).runOnce()).rejects.toThrow('killed');
    s.reopen();
    const [stored] = s.outboxStore.allTransactions();
    // someone else uses the gateway's account meanwhile: the same nonce, another transaction
    const gateway = addressOf(s.key);
    const other = await anvil.rpc<Hex>('eth_sendTransaction', [{ from: gateway, to: deployer, value: '0x1', nonce: `0x${stored!.nonce.toString(16)}` }]);
    await minedReceipt(other);

    const outbox = s.outbox();
    expect(await settle(outbox, s.outboxStore)).toMatchObject({ dropped: 1, sent: 1, mined: 1 });
    const txs = s.outboxStore.allTransactions();
    expect(txs[0]!.state).toBe('dropped');
    // mined, or already confirmed when a slow round saw a block on top of it (confirmations 1)
    expect(['mined', 'confirmed']).toContain(txs[1]!.state);
    expect(txs[1]!.nonce).toBe(stored!.nonce + 1);
    expect(s.outboxStore.itemsOfTransaction(txs[1]!.id).map((i) => i.intervalStart)).toEqual(starts(0, 2));
    expect((await anchoredOnChain(s.registry)).map((e) => e.intervalStart)).toEqual(starts(0, 2));
  });

  it('a two-block reorg: both transactions back to broadcast, rebroadcast in nonce order, each interval once', async () => {
    const s = await site(4);
    const outbox = s.outbox();
    s.queue(0, 1);
    await settle(outbox, s.outboxStore);
    s.queue(1, 3);
    await settle(outbox, s.outboxStore);
    const before = s.outboxStore.allTransactions();
    expect(before.map((t) => t.state)).toEqual(['mined', 'mined']);
    await anvil.reorg(2);
    expect(await settle(outbox, s.outboxStore)).toMatchObject({ reorged: 2, mined: 2, sent: 0 });
    const after = s.outboxStore.allTransactions();
    expect(after.map((t) => t.hash)).toEqual(before.map((t) => t.hash));
    expect(after[0]!.blockNumber!).toBeLessThanOrEqual(after[1]!.blockNumber!);
    await anvil.mine(4);
    await outbox.runOnce();
    expect(s.outboxStore.counts()).toMatchObject({ confirmed: 3 });
    expect((await anchoredOnChain(s.registry)).map((e) => e.intervalStart)).toEqual(starts(0, 3));
  });

  it('a relayer anchors our proof first: our reverted tx is dropped, the item counts as anchored by the relayer', async () => {
    const s = await site();
    s.queue(0, 1);
    await anvil.setAutomine(false);
    try {
      const outbox = s.outbox();
      expect(await outbox.runOnce()).toMatchObject({ sent: 1, mined: 0 });
      // anyone may submit a signed proof; this one pays more and goes first in the block
      const { proof, signature } = makeProof(s.key, 0);
      const calldata = new ChainClient(s.config, s.key, { log: silentLog }).anchorCalldata([{ proof, signature }]);
      const relayed = await anvil.rpc<Hex>('eth_sendTransaction', [
        { from: deployer, to: s.registry, data: calldata, gas: '0x30d40', maxPriorityFeePerGas: '0x3b9aca000', maxFeePerGas: '0x77359400000' },
      ]);
      await anvil.mine(1);
      const r = await outbox.runOnce();
      expect(r).toMatchObject({ dropped: 1, sent: 0, rejected: 0 });
      const [ours] = s.outboxStore.allTransactions();
      expect(ours!.state).toBe('dropped');
      expect(s.outboxStore.item(T0)).toMatchObject({ state: 'confirmed', anchor: { txHash: relayed } });
      expect(s.mined).toEqual([expect.objectContaining({ intervalStart: T0, txHash: relayed })]);
      expect(await anchoredOnChain(s.registry)).toEqual([expect.objectContaining({ intervalStart: T0, txHash: relayed })]);
    } finally {
      await anvil.setAutomine(true);
    }
  });

  it('a proof the registry refuses (bad signature) is rejected and kept; later intervals are still anchored', async () => {
    const s = await site();
    const rejected: Array<[number, string]> = [];
    s.queue(0, 1);
    s.queue(1, 2, anvil.privateKeys[0]!); // signed by the wrong key
    s.queue(2, 4);
    const outbox = s.outbox({ onRejected: (start, reason) => rejected.push([start, reason]) });
    // the batch would revert: its first proof goes alone, then the bad one is isolated and rejected
    expect(await settle(outbox, s.outboxStore)).toMatchObject({ sent: 2, rejected: 1 });
    expect(rejected).toEqual([[T0 + INTERVAL_MS, expect.stringMatching(/WrongSigner/)]]);
    expect(s.outboxStore.item(T0 + INTERVAL_MS)).toMatchObject({ state: 'rejected', reason: expect.stringMatching(/WrongSigner/) });
    expect((await anchoredOnChain(s.registry)).map((e) => e.intervalStart)).toEqual([T0, T0 + 2 * INTERVAL_MS, T0 + 3 * INTERVAL_MS]);
  });

  it('start/stop: rounds run on the injected clock; errors are kept in lastError, never thrown', async () => {
    const s = await site();
    const clock = new ManualClock(T0);
    const outbox = s.outbox({ clock, pollIntervalMs: 5_000, rpcUrl: `http://127.0.0.1:${await closedPort()}` });
    // pump: when the loop sleeps, move the clock on (anvil may mine a moment after accepting)
    const until = async (cond: () => boolean, pump = false) => {
      for (let i = 0; i < 500 && !cond(); i++) {
        if (pump && clock.pendingTimers === 1) clock.advance(5_000);
        await new Promise((r) => setTimeout(r, 5));
      }
      expect(cond()).toBe(true);
    };
    const abort = new AbortController();
    s.queue(0, 1);
    outbox.start(abort.signal);
    await until(() => outbox.lastError !== undefined && clock.pendingTimers === 1);
    expect(outbox.lastError).toBeInstanceOf(RpcUnreachableError);
    abort.abort();
    await outbox.stop();
    expect(clock.pendingTimers).toBe(0);

    const good = s.outbox({ clock, pollIntervalMs: 5_000 });
    good.start();
    await until(() => s.mined.length === 1, true);
    s.queue(1, 2);
    await until(() => clock.pendingTimers === 1);
    expect(s.mined).toHaveLength(1); // the next round waits for the clock
    clock.advance(5_000);
    await until(() => s.mined.length === 2, true);
    await good.stop();
    expect(good.lastError).toBeUndefined();
  });

  it('wrong chain id, no contract, an unfunded account, a malformed reply: a clear error, nothing sent, items kept', async () => {
    const s = await site();
    s.queue(0, 2);
    await expect(s.outbox({ chainId: 100 }).runOnce()).rejects.toThrow(
      new ChainConfigError(`wrong chain: ${anvil.rpcUrl} is chain ${anvil.chainId}, the config says chain 100`),
    );
    expect(s.outboxStore.allTransactions()).toEqual([]);
    const nowhere = '0x000000000000000000000000000000000000dEaD';
    const s2 = await site();
    s2.queue(0, 2);
    const noContract = new Outbox({
      chain: new ChainClient({ ...s2.config, contracts: { proofs: nowhere } }, s2.key, { log: silentLog }),
      store: s2.outboxStore,
      clock: new ManualClock(T0),
      log: silentLog,
    });
    await expect(noContract.runOnce()).rejects.toThrow(`no contract at ${nowhere} on chain ${anvil.chainId}`);

    const poor = generatePrivateKey();
    const s3 = await site();
    s3.queue(0, 2, poor);
    const unfunded = s3.outbox({ key: poor });
    const err = await unfunded.runOnce().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ChainFundsError);
    expect((err as Error).message).toMatch(new RegExp(`account ${addressOf(poor)} has no funds on chain ${anvil.chainId}`, 'i'));

    const { url } = await rpcProxy({ eth_blockNumber: '{"jsonrpc":"2.0","id":1,"result":12}' });
    const garbled = s2.outbox({ rpcUrl: url });
    await expect(garbled.runOnce()).rejects.toThrow(new RpcMalformedError('eth_blockNumber', 'block number is not a hex quantity: 12'));

    for (const x of [s2, s3]) {
      expect(x.outboxStore.counts()).toEqual({ signed: 2, broadcast: 0, mined: 0, confirmed: 0, rejected: 0 });
      expect(x.outboxStore.allTransactions()).toEqual([]);
    }
    for (const k of [s2.key, poor]) {
      expect(Number(BigInt(await anvil.rpc<Hex>('eth_getTransactionCount', [addressOf(k), 'latest'])))).toBe(0);
    }

    // a reply that is not JSON after the transaction went out: it stays pending, then is mined once
    const { url: url2 } = await rpcProxy({ eth_getTransactionReceipt: '<html>bad gateway</html>' });
    await expect(s2.outbox({ rpcUrl: url2 }).runOnce()).rejects.toThrow(/eth_getTransactionReceipt: reply is not JSON/);
    expect(s2.outboxStore.counts()).toMatchObject({ broadcast: 2 });
    expect(await settle(s2.outbox(), s2.outboxStore)).toMatchObject({ mined: 1, sent: 0 });
    expect((await anchoredOnChain(s2.registry)).map((e) => e.intervalStart)).toEqual(starts(0, 2));
  });
});
