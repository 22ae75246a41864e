/**
 * Durability (PROTOCOL.md §3: the sequence is raised durably before any status is sent; DESIGN.md:
 * whatever the agent has told anyone is durable first): sequences and pending statuses survive
 * closing and reopening the store, and a child process killed with SIGKILL while it writes orders
 * as fast as it can.
 */
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../drivers/clock.js';
import { silentLog } from '../../drivers/log.js';
import { DispatchStore } from '../store/dispatch-store.js';
import { openStore } from '../store/index.js';
import { ManualClock } from '../store/test-clock.js';
import { tempDir } from '../store/test-helpers.js';
import { AGGREGATOR, GATEWAY, MINUTE_MS, T0, makeSide, orderMessage, settle, signed } from './test-support.js';

const dir = tempDir('flexgate-durability-');
afterAll(() => dir.cleanup());
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const child = fileURLToPath(new URL('./durability-child.ts', import.meta.url));

describe('durability across close and reopen', () => {
  it('the raised sequence and the pending statuses are there after reopening; the statuses then go out in order', async () => {
    const path = join(dir.dir, 'reopen.db');
    const clock = new ManualClock(T0);
    const first = makeSide({ path, clock });
    first.transport.connected = false;
    for (let i = 0; i < 5; i++) first.book.submit(signed(orderMessage(T0, { sequence: 100 + i, start: T0 + (i + 1) * 30 * MINUTE_MS })));
    first.book.submit(signed(orderMessage(T0, { sequence: 200, signal: 42 })));
    await settle();
    const pending = first.dispatch.unsentStatuses();
    expect(pending).toHaveLength(6);
    await first.close();

    const second = makeSide({ path, clock });
    await settle();
    expect(second.dispatch.lastSequence(AGGREGATOR.address, GATEWAY.address)).toBe(200);
    // In order, each the stored status signed (and its envelope now stored)
    expect(second.transport.messages().map((m) => [m.orderId, m.modification, m.status, m.reason, m.at, m.deliveredWh])).toEqual(
      pending.map((p) => [p.orderId, p.modification, p.status, p.reason, p.atMs, p.deliveredWh]),
    );
    expect(second.transport.published).toEqual(second.dispatch.allStatuses().map((s) => s.payload));
    expect(second.statuses.pendingCount).toBe(0);
    expect(second.book.submit(signed(orderMessage(T0, { sequence: 200 }))).verdict).toMatchObject({ reasonName: 'REPLAY' });
    expect(second.book.liveOrders()).toHaveLength(5);
    await second.close();
  });
});

interface ChildRun {
  ready: number | undefined;
  statuses: { orderId: string; modification: number; status: number; sequence: number }[];
  signal: NodeJS.Signals | null;
  stderr: string;
}

function runAndKill(path: string, delayMs: number): Promise<ChildRun> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', child, path], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let killTimer: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    proc.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (killTimer === undefined && out.includes('\n')) killTimer = setTimeout(() => proc.kill('SIGKILL'), delayMs);
    });
    proc.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    proc.on('error', reject);
    proc.on('exit', (_code, signal) => {
      clearTimeout(giveUp);
      clearTimeout(killTimer);
      const lines = out.split('\n');
      lines.pop(); // a line cut by the kill was never fully told
      const run: ChildRun = { ready: undefined, statuses: [], signal, stderr };
      for (const line of lines) {
        const [word, a, b, c, d] = line.split(' ');
        if (word === 'ready') run.ready = Number(a);
        else if (word === 'status') run.statuses.push({ orderId: a!, modification: Number(b), status: Number(c), sequence: Number(d) });
      }
      resolve(run);
    });
  });
}

describe('durability under SIGKILL', () => {
  it('every status printed and every sequence behind it is in the store after a kill at a random moment', async () => {
    const path = join(dir.dir, 'killed.db');
    const kills = 5;
    let printed = 0;
    let lastPrintedSequence = 0;
    for (let k = 0; k < kills; k++) {
      const run = await runAndKill(path, 150 + Math.floor(Math.random() * 400));
      expect(run.signal, run.stderr).toBe('SIGKILL');
      expect(run.ready).toBeGreaterThanOrEqual(lastPrintedSequence);
      const store = openStore({ path, clock: systemClock, log: silentLog });
      try {
        expect(store.integrityCheck()).toEqual([]);
        const dispatch = new DispatchStore(store.database);
        const stored = dispatch.lastSequence(AGGREGATOR.address, GATEWAY.address) ?? 0;
        for (const s of run.statuses) {
          expect(dispatch.hasStatus(s.orderId, s.modification, s.status), `${s.orderId} ${s.status}`).toBe(true);
          expect(stored).toBeGreaterThanOrEqual(s.sequence);
          lastPrintedSequence = Math.max(lastPrintedSequence, s.sequence);
        }
        // nothing was published (the uplink was down): every status is pending, none lost
        expect(dispatch.pendingStatusCount()).toBe(dispatch.allStatuses().length);
        printed += run.statuses.length;
      } finally {
        store.close();
      }
    }
    expect(printed).toBeGreaterThan(kills);
    // after the last kill: a gateway with a working uplink sends every pending status, in order
    const side = makeSide({ path, clock: new ManualClock(Date.now()) });
    await settle();
    const all = side.dispatch.allStatuses();
    expect(side.transport.published).toEqual(all.map((s) => s.payload));
    expect(side.statuses.pendingCount).toBe(0);
    // and a replay of the last sequence any status was told for is rejected
    const now = Date.now();
    expect(side.book.submit(signed(orderMessage(now, { sequence: lastPrintedSequence }))).verdict).toMatchObject({ reasonName: 'REPLAY' });
    process.stderr.write(`durability: ${kills} SIGKILLs, ${printed} statuses printed, ${all.length} stored, last sequence ${lastPrintedSequence}\n`);
    await side.close();
  }, 120_000);
});
