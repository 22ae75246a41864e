import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLog } from '../../drivers/log.js';
import { AUDIT_RAW_MAX_BYTES, AuditLog } from './audit-log.js';
import { DispatchStore, DispatchStoreError } from './dispatch-store.js';
import { latestVersion, migrations } from './migrations.js';
import { SqliteRestoreLedger } from './restore-ledger.js';
import { openStore, type Store } from './store.js';
import { ManualClock } from './test-clock.js';
import { tempDir } from './test-helpers.js';

const T0 = Date.UTC(2025, 10, 24, 16);
const open: Store[] = [];
const dirs: { cleanup(): void }[] = [];
afterEach(() => {
  for (const s of open.splice(0)) s.close();
  for (const d of dirs.splice(0)) d.cleanup();
});

function fileStore(path: string, list = migrations): Store {
  const s = openStore({ path, clock: new ManualClock(T0), log: silentLog, migrations: list });
  open.push(s);
  return s;
}

function newPath(): string {
  const d = tempDir('flexgate-dispatch-store-');
  dirs.push(d);
  return join(d.dir, 'flexgate.db');
}

const ORDER_ID = `0x${'ab'.repeat(32)}` as const;

describe('schema step 4 (dispatch)', () => {
  it('migrates a step-3 file without touching its data, and the CLI can read it read-only beside the writer', () => {
    const path = newPath();
    const old = fileStore(path, migrations.slice(0, 3));
    old.database.exec(`INSERT INTO store_meta (key, value) VALUES ('marker', 42)`);
    old.close();
    open.pop();
    const s = fileStore(path);
    expect(s.database.pragma('user_version', { simple: true })).toBe(latestVersion(migrations));
    expect(s.database.prepare(`SELECT value FROM store_meta WHERE key = 'marker'`).pluck().get()).toBe(42);
    const d = new DispatchStore(s.database);
    d.raiseSequence('0xAA00000000000000000000000000000000000000', '0xbb00000000000000000000000000000000000000', 5, T0);
    const reader = openStore({ path, clock: new ManualClock(T0), log: silentLog, readOnly: true });
    open.push(reader);
    expect(new DispatchStore(reader.database).lastSequence('0xaa00000000000000000000000000000000000000', '0xBB00000000000000000000000000000000000000')).toBe(5);
  });

  it('raises a sequence, never lowers it', () => {
    const d = new DispatchStore(fileStore(':memory:').database);
    const a = '0x1100000000000000000000000000000000000000';
    const g = '0x2200000000000000000000000000000000000000';
    expect(d.lastSequence(a, g)).toBeUndefined();
    d.raiseSequence(a, g, 10, T0);
    d.raiseSequence(a, g, 3, T0);
    expect(d.lastSequence(a, g)).toBe(10);
    d.raiseSequence(a, g, 11, T0);
    expect(d.lastSequence(a, g)).toBe(11);
  });

  it('one status per (orderId, modification, status); refuses to end an order that is not live', () => {
    const d = new DispatchStore(fileStore(':memory:').database);
    const status = { orderId: ORDER_ID, modification: 0, status: 1, reason: 0, atMs: T0, deliveredWh: 0, payload: '{}', createdAtMs: T0 };
    expect(d.insertStatus(status)).toBe(1);
    expect(d.insertStatus({ ...status, payload: '{"again":1}' })).toBeUndefined();
    expect(d.insertStatus({ ...status, status: 2 })).toBe(2);
    expect(d.unsentStatuses().map((s) => s.id)).toEqual([1, 2]);
    expect(d.markStatusSent(1, T0 + 5, 2, T0 + 4)).toBe(true);
    expect(d.markStatusSent(1, T0 + 6, 1, T0 + 6)).toBe(false);
    expect(d.status(1)).toMatchObject({ sentAtMs: T0 + 5, attempts: 2, lastAttemptMs: T0 + 4 });
    expect(() => d.finish(`${ORDER_ID}:0`, { state: 'completed', atMs: T0, deliveredWh: 0, safetyLimited: false })).toThrow(DispatchStoreError);
  });
});

describe('schema step 5 (statuses signed when first published)', () => {
  it('migrates a step-4 file keeping every status as it was, and then stores statuses without a payload until signed', () => {
    const path = newPath();
    const old = fileStore(path, migrations.slice(0, 4));
    const before = new DispatchStore(old.database);
    before.insertStatus({ orderId: ORDER_ID, modification: 0, status: 1, reason: 0, atMs: T0, deliveredWh: 0, payload: '{"signed":1}', createdAtMs: T0 });
    before.insertStatus({ orderId: ORDER_ID, modification: 0, status: 2, reason: 12, atMs: T0 + 1, deliveredWh: -3, payload: '{"signed":2}', createdAtMs: T0 + 1 });
    before.markStatusSent(1, T0 + 2, 1, T0 + 1);
    const rows = before.allStatuses();
    old.close();
    open.pop();
    expect(() => before.insertStatus({ orderId: ORDER_ID, modification: 1, status: 1, reason: 0, atMs: T0, deliveredWh: 0, payload: undefined, createdAtMs: T0 })).toThrow();

    const s = fileStore(path);
    expect(s.database.pragma('user_version', { simple: true })).toBe(5);
    const d = new DispatchStore(s.database);
    expect(d.allStatuses()).toEqual(rows);
    expect(d.unsentStatuses().map((r) => r.id)).toEqual([2]);
    // UNIQUE (orderId, modification, status) is still there
    expect(d.insertStatus({ ...rows[0]!, payload: undefined })).toBeUndefined();
    const id = d.insertStatus({ orderId: ORDER_ID, modification: 1, status: 1, reason: 0, atMs: T0 + 3, deliveredWh: 0, payload: undefined, createdAtMs: T0 + 3 })!;
    expect(d.status(id)!.payload).toBeUndefined();
    expect(d.markStatusSent(id, T0 + 4, 1, T0 + 4, '{"signed":3}')).toBe(true);
    expect(d.markStatusSent(id, T0 + 5, 1, T0 + 5, '{"other":1}')).toBe(false);
    expect(d.status(id)).toMatchObject({ payload: '{"signed":3}', sentAtMs: T0 + 4 });
    // a row signed before step 5 keeps its envelope
    expect(d.markStatusSent(2, T0 + 6, 1, T0 + 6, '{"other":2}')).toBe(true);
    expect(d.status(2)!.payload).toBe('{"signed":2}');
    expect(s.database.prepare(`SELECT count(*) FROM sqlite_master WHERE name = 'dispatch_statuses_unsent'`).pluck().get()).toBe(1);
  });
});

describe('audit log', () => {
  it('writes one row per call; keeps at most 16 KiB of a received payload with its full size', () => {
    const s = fileStore(':memory:');
    const clock = new ManualClock(T0 + 7);
    const audit = new AuditLog(s.database, clock);
    const big = new Uint8Array(AUDIT_RAW_MAX_BYTES + 100).fill(0x20);
    audit.received({ atMs: T0, raw: big, signer: undefined, orderId: undefined, modification: undefined, verdict: 'rejected', reason: 1, detail: 'too big' });
    audit.setpoint(`${ORDER_ID}:3`, 'battery', 'setPowerW', -2500, true);
    audit.setpoint(undefined, 'pv', 'setLimitPct', 100, false, 'timeout');
    const rows = audit.recent(10).reverse();
    expect(rows.map((r) => r.kind)).toEqual(['received', 'setpoint', 'setpoint']);
    expect(rows[0]).toMatchObject({ rawBytes: AUDIT_RAW_MAX_BYTES + 100, verdict: 'rejected', reason: 1, detail: 'too big' });
    expect(rows[0]!.raw!.length).toBe(AUDIT_RAW_MAX_BYTES);
    expect(rows[1]).toMatchObject({ atMs: T0 + 7, orderId: ORDER_ID, modification: 3, orderKey: `${ORDER_ID}:3`, deviceId: 'battery', what: 'setPowerW', value: -2500, ok: true });
    expect(rows[2]).toMatchObject({ orderId: undefined, deviceId: 'pv', ok: false, detail: 'timeout' });
    expect(audit.trail(ORDER_ID).map((r) => r.kind)).toEqual(['setpoint']);
  });
});

describe('restore ledger', () => {
  it('marks a device changed (first time kept), lists changed devices, clears on restore, and survives a reopen', () => {
    const path = newPath();
    const s = fileStore(path);
    const ledger = new SqliteRestoreLedger(s.database);
    ledger.markChanged('battery', T0 + 10);
    ledger.markChanged('pv', T0 + 5);
    ledger.markChanged('battery', T0 + 99);
    expect(ledger.changedDevices()).toEqual(['pv', 'battery']);
    expect(ledger.changedSinceMs('battery')).toBe(T0 + 10);
    ledger.markRestored('pv');
    s.close();
    open.pop();
    const again = new SqliteRestoreLedger(fileStore(path).database);
    expect(again.changedDevices()).toEqual(['battery']);
    again.markRestored('battery');
    again.markRestored('never-changed');
    expect(again.changedDevices()).toEqual([]);
  });
});

describe('lazyTransaction', () => {
  it('commits its rows without an fsync of its own, then goes back to synchronous = FULL; inside a transaction it joins it', () => {
    const store = fileStore(newPath());
    const d = new DispatchStore(store.database);
    const ledger = new SqliteRestoreLedger(store.database);
    const sync = () => store.database.pragma('synchronous', { simple: true });
    expect(sync()).toBe(2); // FULL
    d.lazyTransaction(() => ledger.markChanged('ev', T0));
    expect(sync()).toBe(2);
    expect(ledger.changedDevices()).toEqual(['ev']);
    expect(() => d.lazyTransaction(() => {
      ledger.markChanged('battery', T0);
      throw new Error('no');
    })).toThrow('no');
    expect(ledger.changedDevices()).toEqual(['ev']);
    expect(sync()).toBe(2);
    d.transaction(() => d.lazyTransaction(() => ledger.markChanged('pv', T0)));
    expect(ledger.changedDevices().sort()).toEqual(['ev', 'pv']);
    expect(sync()).toBe(2);
  });
});

describe('WAL checkpoints', () => {
  it('never run in a transaction (an order\'s path): they wait for the next lazy commit', () => {
    const path = newPath();
    const store = fileStore(path);
    const d = new DispatchStore(store.database);
    const ledger = new SqliteRestoreLedger(store.database);
    const db = store.database;
    db.pragma('wal_autocheckpoint = 4'); // pages
    const pageBytes = db.pragma('page_size', { simple: true }) as number;
    const walBytes = () => statSync(`${path}-wal`).size;
    const frames = () => Math.round((walBytes() - 32) / (pageBytes + 24)); // WAL header, frame headers
    db.pragma('wal_checkpoint(TRUNCATE)');
    for (let i = 0; i < 40; i++) d.transaction(() => ledger.markChanged(`device-${i}`, T0 + i));
    // Without the rule, SQLite would have checkpointed and restarted the WAL about every 4 pages.
    const grown = frames();
    expect(grown).toBeGreaterThanOrEqual(40); // a frame (page) or more per commit
    expect(db.pragma('wal_autocheckpoint', { simple: true })).toBe(4); // the connection's setting is back
    // The next bookkeeping commit (its frame the last one appended) runs the checkpoint that fell due:
    // the WAL then starts over, so more writes fit in the file as it is instead of growing it.
    d.lazyTransaction(() => ledger.markRestored('device-0'));
    expect(frames()).toBe(grown + 1);
    for (let i = 0; i < 10; i++) d.transaction(() => ledger.markChanged(`device-${i}`, T0 + 100 + i));
    expect(frames()).toBe(grown + 1);
    expect(ledger.changedDevices()).toHaveLength(40);
  });
});
