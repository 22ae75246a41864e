import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLog } from '../drivers/log.js';
import { addressOf, recoverSigner } from '../ledger-client/eip712.js';
import { merkleRoot, NULL_ROOT, readingLeafHash } from '../ledger-client/merkle.js';
import { VirtualClock } from '../simulators/clock.js';
import { tempDir } from '../test/helpers.js';
import { Metering, type SignedMeterProof } from './metering.js';
import type { SiteSnapshot } from './snapshot.js';
import { openStore, type Store } from './store/index.js';

const KEY = `0x${'22'.repeat(32)}` as const;
const GATEWAY = addressOf(KEY);
const CHAIN_ID = 31337;
const INTERVAL_MS = 60_000;
const T0 = Date.UTC(2026, 5, 21, 12, 0, 0);

const cleanups: Array<() => void> = [];
afterEach(() => cleanups.splice(0).reverse().forEach((c) => c()));

function setup(dir = tempDir()) {
  const clock = new VirtualClock({ startTimeMs: T0, manual: true });
  const store: Store = openStore({ path: join(dir.path, 'flexgate.db'), clock, log: silentLog });
  const closed: SignedMeterProof[] = [];
  const metering = new Metering({
    db: store.database,
    clock,
    log: silentLog,
    gateway: GATEWAY,
    siteMeterId: 'meter',
    leafIntervalMs: 10_000,
    intervalMs: INTERVAL_MS,
    privateKey: KEY,
    chainId: CHAIN_ID,
    onClosed: (p) => void closed.push(p),
  });
  cleanups.push(() => store.close());
  return { clock, store, metering, closed, dir };
}

function snapshot(tsMs: number, powerW: number, importWh: number, exportWh: number, fresh = true): SiteSnapshot {
  return {
    cycle: 1,
    tsMs,
    site: {},
    devices: [{ id: 'meter', deviceClass: 'meter', availability: { state: 'online', sinceMs: T0 }, fresh, readAtMs: tsMs, reading: { powerW, importWh, exportWh } }],
  };
}

describe('metering', () => {
  it('takes one leaf per leaf interval and closes each interval with a signed proof of its leaves', () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const { clock, metering, closed, store } = setup(dir);
    let importWh = 1_000_000;
    for (let s = 0; s < 70; s++) {
      // One snapshot a second: readings every second, leaves every 10 s.
      metering.onSnapshot(snapshot(clock.now(), 1200 + s, (importWh += 1), 5000));
      clock.advance(1000);
    }
    metering.onSnapshot(snapshot(clock.now(), 0, importWh, 5000));
    expect(closed).toHaveLength(1);
    const proof = closed[0]!;
    expect(proof.message).toMatchObject({ gateway: GATEWAY, intervalStart: T0, intervalEnd: T0 + INTERVAL_MS, count: 6 });
    const leaves = store.database.prepare('SELECT ts_ms, power_w, import_wh, export_wh, salt FROM meter_leaves WHERE interval_start_ms = ? ORDER BY ts_ms').all(T0) as Array<{ ts_ms: number; power_w: number; import_wh: number; export_wh: number; salt: Buffer }>;
    expect(leaves.map((l) => l.ts_ms)).toEqual([0, 10, 20, 30, 40, 50].map((s) => T0 + s * 1000));
    expect(new Set(leaves.map((l) => l.salt.toString('hex'))).size).toBe(6);
    const root = merkleRoot(leaves.map((l) => readingLeafHash({ gateway: GATEWAY, ts: l.ts_ms, powerW: l.power_w, importWh: l.import_wh, exportWh: l.export_wh, salt: `0x${l.salt.toString('hex')}` })));
    expect(proof.message.root).toBe(root);
    // importWh: last reading in the interval minus the first (no reading before it).
    expect(proof.message.importWh).toBe(leaves.at(-1)!.import_wh - leaves[0]!.import_wh);
    expect(proof.message.exportWh).toBe(0);
    expect(recoverSigner('MeterProof', proof.message, CHAIN_ID, proof.signature)).toMatchObject({ ok: true, signer: GATEWAY });
    const row = store.database.prepare('SELECT * FROM meter_proofs').get() as Record<string, unknown>;
    expect(row).toMatchObject({ interval_start_ms: T0, leaf_count: 6, root, signature: proof.signature });
  });

  it('closes intervals missed while the agent was down at its next start, as count-0 proofs', () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const first = setup(dir);
    first.metering.onSnapshot(snapshot(first.clock.now(), 500, 10, 0));
    first.clock.advance(25_000);
    first.metering.onSnapshot(snapshot(first.clock.now(), 500, 12, 0));
    first.store.close();
    cleanups.pop();
    // The agent comes back 3.5 intervals later.
    const second = setup(dir);
    second.clock.advance(25_000 + 3.5 * INTERVAL_MS);
    second.metering.start();
    expect(second.closed.map((p) => [p.message.intervalStart - T0, p.message.count])).toEqual([
      [0, 2],
      [INTERVAL_MS, 0],
      [2 * INTERVAL_MS, 0],
    ]);
    expect(second.closed[0]!.message.importWh).toBe(2);
    for (const p of second.closed.slice(1)) expect(p.message).toMatchObject({ root: NULL_ROOT, importWh: 0, exportWh: 0 });
    // Each interval exactly once, even when start runs again.
    second.metering.start();
    expect(second.closed).toHaveLength(3);
    // The next interval's energy counts from the last reading before it.
    second.metering.onSnapshot(snapshot(second.clock.now(), 500, 20, 0));
    second.clock.advance(INTERVAL_MS);
    second.metering.onSnapshot(snapshot(second.clock.now(), 500, 21, 0));
    expect(second.closed.at(-1)!.message).toMatchObject({ intervalStart: T0 + 3 * INTERVAL_MS, count: 1, importWh: 20 - 12 });
  });

  it('takes no leaf from a stale or offline meter, or one without counters', () => {
    const { clock, metering, store } = setup(tempDir());
    metering.onSnapshot(snapshot(clock.now(), 100, 1, 1, false));
    metering.onSnapshot({ ...snapshot(clock.now(), 100, 1, 1), devices: [{ ...snapshot(clock.now(), 100, 1, 1).devices[0]!, availability: { state: 'offline', sinceMs: T0, reason: 'x' } }] });
    metering.onSnapshot({ ...snapshot(clock.now(), 100, 1, 1), devices: [{ ...snapshot(clock.now(), 100, 1, 1).devices[0]!, reading: { powerW: 100 } }] });
    expect(store.database.prepare('SELECT count(*) FROM meter_leaves').pluck().get()).toBe(0);
  });
});

describe('proof retention', () => {
  it('deletes the readings of confirmed intervals past the retention, and nothing not yet anchored', () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const { clock, store } = setup(dir);
    const metering = new Metering({
      db: store.database,
      clock,
      log: silentLog,
      gateway: GATEWAY,
      siteMeterId: 'meter',
      leafIntervalMs: 10_000,
      intervalMs: INTERVAL_MS,
      proofRetentionMs: 3 * INTERVAL_MS,
      privateKey: KEY,
      chainId: CHAIN_ID,
      enqueue: (db, p) => void db.prepare("INSERT INTO outbox_items (interval_start_ms, state, queued_at_ms, updated_at_ms) VALUES (?, 'signed', 0, 0)").run(p.message.intervalStart),
    });
    for (let s = 0; s < 6 * 60; s += 10) {
      metering.onSnapshot(snapshot(clock.now(), 100, 1000 + s, 0));
      clock.advance(10_000);
    }
    metering.onSnapshot(snapshot(clock.now(), 100, 2000, 0));
    const count = () => store.database.prepare('SELECT count(*) FROM meter_leaves').pluck().get() as number;
    const before = count();
    // Nothing is confirmed yet: nothing goes.
    expect(metering.retain(clock.now())).toBe(0);
    store.database.prepare("UPDATE outbox_items SET state = 'confirmed', anchor_tx_hash = '0xab', anchor_block_number = 1, anchor_block_hash = '0xcd' WHERE interval_start_ms < ?").run(T0 + 2 * INTERVAL_MS);
    // Intervals 0 and 1 are confirmed and older than 3 intervals: their 12 leaves go.
    expect(metering.retain(clock.now())).toBe(12);
    expect(count()).toBe(before - 12);
    expect(store.database.prepare('SELECT count(*) FROM meter_proofs').pluck().get()).toBe(6);
  });
});

describe('interval boundaries', () => {
  it('a reading taken just before a boundary joins its interval before that closes, and none joins a closed one', () => {
    const dir = tempDir();
    cleanups.push(() => dir.remove());
    const { clock, metering, closed, store } = setup(dir);
    metering.onSnapshot(snapshot(clock.now(), 100, 10, 0));
    // The meter answered 2 ms before the boundary; the snapshot is handled 10 ms after it.
    clock.advance(INTERVAL_MS + 10);
    metering.onSnapshot(snapshot(T0 + INTERVAL_MS - 2, 100, 11, 0));
    expect(closed).toHaveLength(1);
    expect(closed[0]!.message.count).toBe(2);
    const leaves = store.database.prepare('SELECT count(*) FROM meter_leaves WHERE interval_start_ms = ?').pluck().get(T0);
    expect(leaves).toBe(2);
    // A reading of the closed interval arriving later is not added.
    metering.onSnapshot(snapshot(T0 + INTERVAL_MS - 1, 100, 12, 0));
    expect(store.database.prepare('SELECT count(*) FROM meter_leaves WHERE interval_start_ms = ?').pluck().get(T0)).toBe(2);
  });
});
