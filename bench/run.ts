/**
 * `npm run bench`: runs every benchmark in bench/ in turn, then prints one summary table;
 * `npm run bench -- <name> [<name> …]` runs only those (also the ones run by name only). Every
 * figure is a ratio against a baseline measured in the same run (DESIGN.md, Conventions).
 * Exit code 1 when a benchmark fails to run; a missed target is shown as MISS (timings are noisy:
 * judge them from the medians in the report, not from one line).
 */
import { pollingBenchmark } from './polling.js';
import { proofsBenchmark } from './proofs.js';
import { gasBenchmark } from './gas.js';
import { pollingNodeRedBenchmark } from './polling-nodered.js';
import { footprintBenchmark } from './footprint.js';
import { dispatchNodeRedBenchmark } from './dispatch-nodered.js';
import { dispatchBenchmark } from './dispatch.js';
import type { Benchmark, BenchRow } from './types.js';

/** Every benchmark, in the order they run. Add new ones here. */
const BENCHMARKS: readonly Benchmark[] = [pollingBenchmark, pollingNodeRedBenchmark, footprintBenchmark, dispatchBenchmark, proofsBenchmark, gasBenchmark];

/** Run only when named: they measure a baseline alone, for another benchmark to combine. */
const BY_NAME_ONLY: readonly Benchmark[] = [dispatchNodeRedBenchmark];

function out(line: string): void {
  process.stdout.write(`${line}\n`);
}

function targetText(row: BenchRow): string {
  return row.target ? `${row.target.op === '=' ? '' : row.target.op === '<=' ? '≤ ' : '≥ '}${row.target.value.toFixed(2)}` : '—';
}

function status(row: BenchRow): string {
  if (!row.target) return '';
  const r = Number(row.ratio.toFixed(2));
  const ok = row.target.op === '=' ? r === row.target.value : row.target.op === '<=' ? r <= row.target.value : r >= row.target.value;
  return ok ? 'ok' : 'MISS';
}

function table(rows: readonly BenchRow[]): string[] {
  const header = ['benchmark', 'scenario', 'figure', 'flexgate', 'baseline', 'ratio', 'target', ''];
  const body = rows.map((r) => [r.benchmark, r.scenario, r.figure, r.value, r.baseline, r.ratio.toFixed(2), targetText(r), status(r)]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i >= 3 && i <= 5 ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  ').trimEnd(), ...body.map(line)];
}

function selected(names: readonly string[]): readonly Benchmark[] {
  if (names.length === 0) return BENCHMARKS;
  const all = [...BENCHMARKS, ...BY_NAME_ONLY];
  const unknown = names.filter((n) => !all.some((b) => b.name === n));
  if (unknown.length) throw new Error(`no benchmark ${unknown.join(', ')} (there are: ${all.map((b) => b.name).join(', ')})`);
  return all.filter((b) => names.includes(b.name));
}

async function main(): Promise<number> {
  const startedMs = Date.now();
  const rows: BenchRow[] = [];
  const failed: string[] = [];
  for (const b of selected(process.argv.slice(2))) {
    try {
      rows.push(...(await b.run(out)));
    } catch (e) {
      failed.push(b.name);
      out(`${b.name}: FAILED: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}`);
    }
  }
  out('');
  out(`summary (${new Date().toISOString()}, node ${process.version}, ${Math.round((Date.now() - startedMs) / 1000)} s)`);
  for (const l of table(rows)) out(l);
  if (failed.length) out(`failed: ${failed.join(', ')}`);
  return failed.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    process.exit(1);
  },
);
