/** What every benchmark in bench/ returns to bench/run.ts. */

/** Writes one line of the benchmark's report. */
export type Out = (line: string) => void;

export interface BenchRow {
  benchmark: string;
  /** The setup measured, e.g. "TCP, SunSpec DER models". */
  scenario: string;
  /** What is compared, e.g. "cycle time vs bare client, sequential". */
  figure: string;
  /** flexgate's figure, with its unit. */
  value: string;
  /** The baseline measured in the same run, with its unit. */
  baseline: string;
  /** value / baseline (for times: the median of the per-run ratios). */
  ratio: number;
  /** The quality target on the ratio, when DESIGN.md sets one. */
  target?: { op: '=' | '<=' | '>='; value: number };
}

export interface Benchmark {
  name: string;
  run(out: Out): Promise<BenchRow[]>;
}
