/**
 * Child process of crash.test.ts (not library code): opens the store at argv[2] and writes reading
 * batches as fast as it can, printing `stored <batchId> <rows>` on stdout only after each commit,
 * until it is killed. Rows are deterministic from their timestamp so the test can check them:
 * 5 devices × 2 metrics per timestamp, value = tsMs * 10 + device * 2 + metric.
 * Run: node --import tsx agent/store/crash-writer.ts <db path>
 */
import { writeSync } from 'node:fs';
import { systemClock } from '../../drivers/clock.js';
import { silentLog } from '../../drivers/log.js';
import { openStore } from './store.js';
import type { DeviceReadings } from './types.js';
import { crashDevices, crashMetrics, crashValue } from './crash-data.js';

function main(path: string): void {
  const store = openStore({ path, clock: systemClock, log: silentLog });
  const writer = store.createReadingWriter({
    maxBatchRows: 1_000_000,
    onBatchStored: (batchId, rows) => writeSync(1, `stored ${batchId} ${rows.length}\n`),
  });
  let tsMs = (store.stats().newestReadingTsMs ?? 0) + 1;
  writeSync(1, `ready ${store.lastBatchId}\n`);
  for (;;) {
    const snapshots = 1 + Math.floor(Math.random() * 50);
    for (let s = 0; s < snapshots; s++, tsMs++) {
      const cycle: DeviceReadings[] = crashDevices.map((deviceId, d) => ({
        deviceId,
        tsMs,
        values: Object.fromEntries(crashMetrics.map((m, k) => [m, crashValue(tsMs, d, k)])),
      }));
      writer.add(cycle);
    }
    writer.flush();
  }
}

const path = process.argv[2];
if (path === undefined) {
  writeSync(2, 'usage: crash-writer.ts <db path>\n');
  process.exit(2);
}
main(path);
