/**
 * Power-cut safety: the agent process is killed with SIGKILL at random moments while it polls and
 * writes readings, and restarted. Every batch it announced as stored (bridge/event readings_stored,
 * sent only after the commit) must be in the store afterwards, whole, and the store must pass
 * PRAGMA integrity_check after every restart.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { STORE_FILE } from '../agent/agent.js';
import { openStore } from '../agent/store/index.js';
import { systemClock } from '../drivers/clock.js';
import { silentLog } from '../drivers/log.js';
import { exited, freePort, homeConfig, recorder, spawnCli, startFrozenHome, tempDir, waitFor } from './helpers.js';

const KILLS = 8;

/** Subscribes to the agent's events on its embedded broker, retrying until the broker is up. */
async function connectRecorder(port: number): Promise<Awaited<ReturnType<typeof recorder>>> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await recorder(`mqtt://127.0.0.1:${port}`, ['flexgate/test-home/bridge/event']);
    } catch (err) {
      if (attempt > 150) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

describe('agent killed with SIGKILL while it writes readings', () => {
  const dir = tempDir();
  afterAll(() => dir.remove());

  it(`keeps every acknowledged batch and an intact store across ${KILLS} kills`, async () => {
    const home = await startFrozenHome();
    try {
      const port = await freePort();
      const config = homeConfig(home, join(dir.path, 'data'), {
        device: { pollIntervalMs: 200, timeoutMs: 500 },
        config: { localApi: { mqtt: { embedded: { host: '127.0.0.1', port } } } },
      });
      const file = join(dir.path, 'flexgate.yaml');
      writeFileSync(file, stringify(config));
      const acked = new Map<number, number>();
      let kills = 0;
      let rec: Awaited<ReturnType<typeof recorder>> | undefined;
      for (let run = 0; run <= KILLS; run++) {
        const child = spawnCli(['start', '--config', file]);
        try {
          const events = (rec ??= await connectRecorder(port));
          const before = events.messages.length;
          // Wait for at least one batch of this run to be acknowledged, then kill at a random moment.
          await waitFor(`a stored batch in run ${run}`, () => events.messages.length > before, 15_000);
          if (run === KILLS) {
            child.kill('SIGTERM');
            expect((await exited(child)).code).toBe(0);
          } else {
            await new Promise((r) => setTimeout(r, 50 + Math.random() * 1500));
            child.kill('SIGKILL');
            await exited(child);
            kills++;
          }
        } finally {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }
        for (const m of rec?.messages ?? []) {
          const event = JSON.parse(m.payload) as { type: string; data: { batchId: number; rows: number } };
          if (event.type === 'readings_stored') acked.set(event.data.batchId, event.data.rows);
        }
        const store = openStore({ path: join(config.gateway.dataDir, STORE_FILE), clock: systemClock, log: silentLog, readOnly: true });
        try {
          expect(store.integrityCheck(), `integrity after run ${run}`).toEqual([]);
          for (const [batchId, rows] of acked) {
            expect(store.batch(batchId)?.rowCount, `acknowledged batch ${batchId}`).toBe(rows);
          }
        } finally {
          store.close();
        }
      }
      await rec?.close();
      expect(kills).toBe(KILLS);
      expect(acked.size).toBeGreaterThanOrEqual(KILLS + 1);
    } finally {
      await home.stop();
    }
  }, 180_000);
});
