import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../../drivers/clock.js';
import { silentLog } from '../../drivers/log.js';
import { crashDevices, crashMetrics, crashValue } from './crash-data.js';
import { openStore } from './store.js';
import type { Store } from './store.js';
import { tempDir } from './test-helpers.js';

const script = fileURLToPath(new URL('./crash-writer.ts', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../', import.meta.url));
const KILLS = 24;

interface RunOutput {
  readyLastBatchId: number | undefined;
  stored: { batchId: number; rows: number }[];
  exitSignal: NodeJS.Signals | null;
  stderr: string;
}

/** Starts the writer, waits until it has opened the store, kills it with SIGKILL after `delayMs`. */
function runAndKill(path: string, delayMs: number): Promise<RunOutput> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', script, path], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let stderr = '';
    let killTimer: NodeJS.Timeout | undefined;
    const giveUp = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => {
      out += chunk;
      if (killTimer === undefined && out.includes('\n')) killTimer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    });
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.on('error', reject);
    child.on('exit', (_code, signal) => {
      clearTimeout(giveUp);
      clearTimeout(killTimer);
      const lines = out.split('\n');
      lines.pop(); // an unfinished last line was never fully reported
      let readyLastBatchId: number | undefined;
      const stored: RunOutput['stored'] = [];
      for (const line of lines) {
        const [word, a, b] = line.split(' ');
        if (word === 'ready') readyLastBatchId = Number(a);
        else if (word === 'stored') stored.push({ batchId: Number(a), rows: Number(b) });
      }
      resolve({ readyLastBatchId, stored, exitSignal: signal, stderr });
    });
  });
}

const deviceIndexSql = `CASE d.name ${crashDevices.map((n, i) => `WHEN '${n}' THEN ${i}`).join(' ')} END`;
const metricIndexSql = `CASE s.metric ${crashMetrics.map((n, i) => `WHEN '${n}' THEN ${i}`).join(' ')} END`;

/**
 * Every recorded batch (reported or not) has exactly its row count of readings in its time range,
 * no reading lies outside a batch, and readings newer than `sinceTsMs` carry the value the writer
 * derived from their time (checked in SQL: there are a million rows by the end).
 */
function checkBatches(store: Store, sinceTsMs: number): void {
  const db = store.database;
  const incomplete = db
    .prepare(
      `SELECT b.batch_id, b.row_count,
              (SELECT count(*) FROM readings r WHERE r.ts_ms BETWEEN b.first_ts_ms AND b.last_ts_ms) AS n
       FROM reading_batches b WHERE n != b.row_count`,
    )
    .all();
  expect(incomplete).toEqual([]);
  const inBatches = db.prepare('SELECT coalesce(sum(row_count), 0) FROM reading_batches').pluck().get();
  expect(inBatches).toBe(store.stats().readingRows);
  const wrong = db
    .prepare(
      `SELECT r.ts_ms, d.name, s.metric, r.value FROM readings r
       JOIN series s ON s.id = r.series_id JOIN devices d ON d.id = s.device_id
       WHERE r.ts_ms > ? AND r.value != r.ts_ms * 10 + (${deviceIndexSql}) * 2 + (${metricIndexSql}) LIMIT 5`,
    )
    .all(sinceTsMs);
  expect(wrong).toEqual([]);
}

describe('crash safety (SIGKILL while writing)', () => {
  let dir: string;
  let cleanup: () => void;
  beforeAll(() => ({ dir, cleanup } = tempDir('flexgate-crash-')));
  afterAll(() => cleanup());

  it(`every batch reported as stored survives ${KILLS} kill -9s, and the file stays intact`, { timeout: 60_000 }, async () => {
    const path = join(dir, 'flexgate.db');
    const reported = new Map<number, number>();
    let lastBatchIdOnDisk = 0;
    let runsThatStored = 0;
    let checkedTsMs = 0;
    for (let i = 0; i < KILLS; i++) {
      const delayMs = 20 + Math.floor(Math.random() * 281);
      const run = await runAndKill(path, delayMs);
      expect(run.exitSignal, run.stderr).toBe('SIGKILL');
      // the writer re-opened what the previous kill left and continues numbering after it
      expect(run.readyLastBatchId, run.stderr).toBe(lastBatchIdOnDisk);
      if (run.stored.length > 0) runsThatStored++;
      let expectedId = lastBatchIdOnDisk + 1;
      for (const s of run.stored) {
        expect(s.batchId).toBe(expectedId++);
        reported.set(s.batchId, s.rows);
      }

      const store = openStore({ path, clock: systemClock, log: silentLog });
      try {
        expect(store.integrityCheck()).toEqual([]);
        for (const [batchId, rows] of reported) expect(store.batch(batchId)?.rowCount, `batch ${batchId}`).toBe(rows);
        checkBatches(store, checkedTsMs);
        checkedTsMs = store.stats().newestReadingTsMs ?? 0;
        // a batch may be committed and killed before it was printed: on disk, never reported
        expect(store.lastBatchId).toBeGreaterThanOrEqual(expectedId - 1);
        expect(store.lastBatchId).toBeLessThanOrEqual(expectedId);
        lastBatchIdOnDisk = store.lastBatchId;
      } finally {
        store.close();
      }
    }
    expect(runsThatStored).toBeGreaterThan(KILLS / 2);
    expect(reported.size).toBeGreaterThan(KILLS);

    // and this process can carry on writing into the same file
    const store = openStore({ path, clock: systemClock, log: silentLog });
    const writer = store.createReadingWriter();
    const tsMs = (store.stats().newestReadingTsMs ?? 0) + 1;
    writer.add({ deviceId: 'meter', tsMs, values: { powerW: crashValue(tsMs, 0, 0) } });
    expect(writer.flush().map((b) => b.batchId)).toEqual([lastBatchIdOnDisk + 1]);
    expect(store.integrityCheck()).toEqual([]);
    checkBatches(store, -1); // every value of every run
    store.close();
  });
});
