/**
 * `flexgate status`: what the store holds now — each device's last values and availability. Opens
 * the store read-only, so it works beside a running agent.
 */
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { systemClock } from '../drivers/clock.js';
import { silentLog } from '../drivers/log.js';
import type { Config } from './config/schema.js';
import { STORE_FILE } from './agent.js';
import { openStore } from './store/index.js';

export function runStatus(config: Config): number {
  const path = join(config.gateway.dataDir, STORE_FILE);
  if (!existsSync(path)) {
    process.stderr.write(`flexgate status: no store at ${path} yet (has the agent run with this config?)\n`);
    return 1;
  }
  const store = openStore({ path, clock: systemClock, log: silentLog, readOnly: true });
  try {
    const latest = new Map(store.latestReadings().map((r) => [r.deviceId, r]));
    const availability = new Map(store.latestAvailability().map((a) => [a.deviceId, a]));
    const now = systemClock.now();
    const out: string[] = [];
    for (const device of config.devices) {
      const a = availability.get(device.id);
      const r = latest.get(device.id);
      const state = a === undefined ? 'never seen' : a.online ? 'online' : `OFFLINE since ${new Date(a.tsMs).toISOString()}: ${a.reason ?? ''}`;
      out.push(`${device.id} (${device.class}): ${state}`);
      if (r) {
        out.push(`  last reading ${new Date(r.tsMs).toISOString()} (${Math.round((now - r.tsMs) / 1000)} s ago)`);
        for (const [metric, v] of Object.entries(r.values)) out.push(`  ${metric.padEnd(14)} ${v.value}`);
      }
    }
    const stats = store.stats();
    out.push(`store ${path}: ${stats.readingRows} raw readings, ${stats.aggregateRows} aggregates, ${((stats.fileBytes + stats.walBytes) / 1e6).toFixed(1)} MB`);
    process.stdout.write(`${out.join('\n')}\n`);
    return 0;
  } finally {
    store.close();
  }
}
