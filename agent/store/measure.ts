/**
 * Measures disk use per reading and batch write speed of the store (not library code; figures go
 * in README.md). Run: node --import tsx agent/store/measure.ts [hours=24] [flushIntervalMs=10000]
 * A home with 5 devices polled every 1 s, 20 values per cycle, flushed every 10 s.
 */
import { readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { silentLog } from '../../drivers/log.js';
import { openStore } from './store.js';
import { ManualClock } from './test-clock.js';
import { tempDir } from './test-helpers.js';
import type { DeviceReadings } from './types.js';

const out = (s: string) => writeSync(1, `${s}\n`);
const hours = Number(process.argv[2] ?? 24);
const flushIntervalMs = Number(process.argv[3] ?? 10_000);
const devices: Record<string, string[]> = {
  meter: ['powerW', 'importWh', 'exportWh', 'voltageV'],
  pv: ['powerW', 'energyWh', 'limitPct'],
  battery: ['powerW', 'socPct', 'capacityWh', 'temperatureC'],
  ev: ['powerW', 'currentA', 'plugged', 'energyWh'],
  heatpump: ['powerW', 'indoorC', 'outdoorC', 'flowC', 'mode'],
};
const valuesPerCycle = Object.values(devices).reduce((n, m) => n + m.length, 0);

/** Plausible values: powers with decimals and noise, counters that grow, slow temperatures. */
function cycle(tsMs: number, i: number): DeviceReadings[] {
  const noise = () => Math.round((Math.random() - 0.5) * 200) / 10;
  const day = Math.sin((i / 86400) * 2 * Math.PI);
  return [
    { deviceId: 'meter', tsMs, values: { powerW: 800 + noise() * 10, importWh: 5_000_000 + Math.floor(i / 4), exportWh: 1_200_000 + Math.floor(i / 9), voltageV: 230 + noise() / 10 } },
    { deviceId: 'pv', tsMs, values: { powerW: Math.max(0, 4000 * day + noise()), energyWh: 9_000_000 + Math.floor(i / 3), limitPct: 100 } },
    { deviceId: 'battery', tsMs, values: { powerW: -1500 + noise() * 5, socPct: 50 + Math.round(day * 400) / 10, capacityWh: 10_000, temperatureC: 24.5 } },
    { deviceId: 'ev', tsMs, values: { powerW: 7360 + noise(), currentA: 16, plugged: 1, energyWh: 100_000 + Math.floor(i / 2) } },
    { deviceId: 'heatpump', tsMs, values: { powerW: 1200 + noise() * 3, indoorC: 21 + Math.round(day * 10) / 10, outdoorC: 5 + Math.round(day * 50) / 10, flowC: 35, mode: 2 } },
  ];
}

function writtenBytes(): number {
  const m = /wchar: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'));
  return m ? Number(m[1]) : NaN;
}

const { dir, cleanup } = tempDir('flexgate-measure-');
try {
  // 1. disk use per reading and per day on the real path (ReadingWriter, 10 s batches)
  const clock = new ManualClock(Date.UTC(2025, 5, 1));
  const path = join(dir, 'day.db');
  const store = openStore({ path, clock, log: silentLog });
  const writer = store.createReadingWriter({ flushIntervalMs });
  const seconds = Math.round(hours * 3600);
  const w0 = writtenBytes();
  const t0 = performance.now();
  for (let i = 0; i < seconds; i++) {
    writer.add(cycle(clock.now(), i));
    clock.advance(1000);
  }
  writer.flush();
  const elapsedMs = performance.now() - t0;
  const st = store.stats();
  const wroteBytes = writtenBytes() - w0;
  store.close(); // checkpoints and removes the WAL
  const fileBytes = statSync(path).size;
  const rows = st.readingRows;
  out(`simulated ${hours} h: ${rows} readings (${valuesPerCycle} per s), ${st.lastBatchId} batches`);
  out(`file ${fileBytes} B → ${(fileBytes / rows).toFixed(1)} B/reading, ${((fileBytes / rows) * valuesPerCycle * 86400 / 1e6).toFixed(1)} MB/day, ${((fileBytes / rows) * valuesPerCycle * 86400 * 7 / 1e6).toFixed(0)} MB for 7 days raw`);
  out(`bytes written by the process (WAL + checkpoints): ${(wroteBytes / 1e6).toFixed(1)} MB → ${(wroteBytes / rows).toFixed(0)} B/reading, ${(wroteBytes / st.lastBatchId / 1024).toFixed(1)} KiB/batch`);
  out(`end-to-end (add + ${flushIntervalMs / 1000} s batches, fsync each): ${Math.round(rows / (elapsedMs / 1000))} rows/s`);

  // aggregates after folding the day
  const s2 = openStore({ path, clock, log: silentLog, rawRetentionMs: 1 });
  const tr = performance.now();
  let steps = 0;
  while (!s2.retain(clock.now() + 3600_000, { maxRows: 5000 }).done) steps++;
  const retainMs = performance.now() - tr;
  const st2 = s2.stats();
  s2.database.exec('VACUUM');
  s2.close();
  const aggBytes = statSync(path).size;
  out(`retention: ${rows} rows folded in ${steps + 1} steps of ≤5000, ${(retainMs / (steps + 1)).toFixed(1)} ms/step; ${st2.aggregateRows} aggregate rows/day, ${(aggBytes / 1024).toFixed(0)} KiB/day after VACUUM → ${((aggBytes * 730) / 1e6).toFixed(0)} MB for 2 years`);

  // 2. batch write speed vs one row per transaction (same run, same machine)
  const speed = (batchRows: number, totalRows: number): number => {
    const p = join(dir, `speed-${batchRows}.db`);
    const s = openStore({ path: p, clock, log: silentLog });
    const rowsList = [];
    for (let i = 0; rowsList.length < totalRows; i++) {
      for (const d of cycle(1000 * i, i)) for (const [metric, value] of Object.entries(d.values)) rowsList.push({ deviceId: d.deviceId, metric, tsMs: d.tsMs, value: value! });
    }
    const t = performance.now();
    for (let i = 0; i < rowsList.length; i += batchRows) s.commitBatch(rowsList.slice(i, i + batchRows));
    const rate = rowsList.length / ((performance.now() - t) / 1000);
    s.close();
    return rate;
  };
  const single = speed(1, 2000);
  const b200 = speed(200, 200_000);
  const b2000 = speed(2000, 400_000);
  out(`batch write (synchronous=FULL): 1 row/tx ${Math.round(single)} rows/s; 200 rows/tx ${Math.round(b200)} rows/s (×${(b200 / single).toFixed(0)}); 2000 rows/tx ${Math.round(b2000)} rows/s (×${(b2000 / single).toFixed(0)})`);

  // 3. layout alternatives, same rows, same batches: bytes per reading
  const layouts: Record<string, string> = {
    'series (ts_ms, series_id, value) WITHOUT ROWID [chosen]': '',
    '(ts_ms, device_id, metric_id, value) WITHOUT ROWID': `CREATE TABLE r (ts_ms INTEGER NOT NULL, device_id INTEGER NOT NULL, metric_id INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (ts_ms, device_id, metric_id)) STRICT, WITHOUT ROWID`,
    '(device_id, metric_id, ts_ms, value) WITHOUT ROWID': `CREATE TABLE r (device_id INTEGER NOT NULL, metric_id INTEGER NOT NULL, ts_ms INTEGER NOT NULL, value REAL NOT NULL, PRIMARY KEY (device_id, metric_id, ts_ms)) STRICT, WITHOUT ROWID`,
    'rowid table + index (ts_ms, series_id)': `CREATE TABLE r (ts_ms INTEGER NOT NULL, series_id INTEGER NOT NULL, value REAL NOT NULL) STRICT; CREATE UNIQUE INDEX r_ts ON r (ts_ms, series_id)`,
  };
  const n = 3600 * 6;
  for (const [li, [name, ddl]] of Object.entries(layouts).entries()) {
    if (ddl === '') continue;
    const p = join(dir, `layout-${li}.db`);
    const db = new Database(p);
    db.pragma('journal_mode = WAL');
    db.exec(ddl);
    const cols = ddl.includes('device_id, metric_id, ts_ms') ? '(device_id, metric_id, ts_ms, value)' : ddl.includes('metric_id') ? '(ts_ms, device_id, metric_id, value)' : '(ts_ms, series_id, value)';
    const ins = db.prepare(`INSERT INTO r ${cols} VALUES (${cols.split(',').map(() => '?').join(',')})`);
    const names = Object.entries(devices).flatMap(([d, ms]) => ms.map((m) => `${d}/${m}`));
    const batch = db.transaction((rows: [number, number, number, number][]) => {
      for (const [ts, d, m, v] of rows) {
        if (cols.startsWith('(device_id')) ins.run(d, m, ts, v);
        else if (cols.includes('metric_id')) ins.run(ts, d, m, v);
        else ins.run(ts, d * 8 + m, v);
      }
    });
    let pending: [number, number, number, number][] = [];
    for (let i = 0; i < n; i++) {
      for (const [di, dv] of cycle(1_750_000_000_000 + i * 1000, i).entries()) {
        for (const [metric, value] of Object.entries(dv.values)) pending.push([dv.tsMs, di + 1, names.indexOf(`${dv.deviceId}/${metric}`) + 1, value!]);
      }
      if (pending.length >= 200) {
        batch(pending);
        pending = [];
      }
    }
    batch(pending);
    db.close();
    out(`layout ${name}: ${(statSync(p).size / (n * valuesPerCycle)).toFixed(1)} B/reading`);
  }
} finally {
  cleanup();
}
