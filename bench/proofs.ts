/**
 * Proofs benchmark: metering Merkle trees of PROTOCOL.md §5 (ledger-client/merkle.ts), bench/README.md.
 *
 * For trees of n = 90 (15 min of readings every 10 s), 900 (every 1 s) and 100 000 readings:
 * (a) readings hashed into a tree per second — each reading ABI-encoded, leaf-hashed and appended to
 *     the streaming builder, then the root — against a bare keccak256 loop over the same leaf bytes
 *     (0x00 ‖ leafData, encoded beforehand) with the same library (js-sha3, flexgate's). The tree needs
 *     n leaf hashes of 193 bytes (2 Keccak-f permutations each) plus n − 1 node hashes of 65 bytes (1
 *     permutation each), so its ceiling is about 2/3 of the bare loop. DESIGN.md: ≥ 0.5 of the bare
 *     loop and ≥ 50 000 readings/s.
 * (b) inclusion-proof size: the longest path over every leaf against ⌈log2 n⌉ hashes.
 * (c) verification time of one inclusion proof (hex path as on the wire, RFC 9162 §2.1.3.2) against
 *     one keccak256 of a 65-byte node, the same library. DESIGN.md: well under 1 ms.
 * (a) is also measured with @noble/hashes' keccak (the library the signatures use), to show why the
 * trees use js-sha3; no target applies to those rows.
 *
 * Run alone: `npx tsx bench/proofs.ts` (or through `npm run bench`).
 */
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { keccak_256 } from '@noble/hashes/sha3';
import { keccak256 } from '../ledger-client/keccak.js';
import {
  encodeLeafData,
  inclusionPathLength,
  maxInclusionPathLength,
  MerkleTreeBuilder,
  verifyInclusion,
  type InclusionProof,
  type Keccak256,
  type MeterReading,
} from '../ledger-client/merkle.js';
import type { Hex } from '../ledger-client/wire.js';
import type { BenchRow, Benchmark, Out } from './types.js';

const TARGET_READINGS_PER_S = 50_000;
const GATEWAY = '0x1563915e194d8cfba1943570603f7606a3115508';

interface Scenario {
  name: string;
  n: number;
  /** Timed runs (≥ 3); the figure is the median of the per-run ratios. */
  runs: number;
}

interface KeccakImpl {
  name: string;
  keccak: Keccak256;
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** A small deterministic PRNG (mulberry32), so every run hashes the same readings. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** n readings of a meter sampled every second: counters rising, power crossing zero, random salts. */
function makeReadings(n: number, seed: number): MeterReading[] {
  const random = prng(seed);
  const readings: MeterReading[] = [];
  let importWh = 1_234_567;
  let exportWh = 89_012;
  for (let i = 0; i < n; i++) {
    const powerW = Math.round(4000 * Math.sin(i / 300) + 500 * (random() - 0.5));
    if (powerW > 0) importWh += random() < powerW / 3600 ? 1 : 0;
    else exportWh += random() < -powerW / 3600 ? 1 : 0;
    let salt = '0x';
    for (let b = 0; b < 8; b++) salt += Math.floor(random() * 2 ** 32).toString(16).padStart(8, '0');
    readings.push({ gateway: GATEWAY, ts: 1_764_000_000_000 + i * 1000, powerW, importWh, exportWh, salt: salt as Hex });
  }
  return readings;
}

/** 0x00 ‖ leafData of every reading: what the bare loop hashes. */
function leafPreimages(readings: readonly MeterReading[]): Uint8Array[] {
  return readings.map((r) => {
    const b = new Uint8Array(193);
    b.set(encodeLeafData(r), 1);
    return b;
  });
}

/** Repetitions so that one timed sample hashes at least ~1500 readings (one tree of 100 000). */
function repsFor(n: number): number {
  return Math.max(1, Math.ceil(1500 / n));
}

/** Interleaved (bare, tree) pairs of samples per run for small trees. */
const PAIRS_PER_RUN = 8;
/** A large tree is built in chunks of this many readings, each timed against the bare loop over the same chunk. */
const CHUNK_READINGS = 2000;
const LARGE_TREE = 10_000;

let sink = 0;

function timeBare(impl: KeccakImpl, preimages: readonly Uint8Array[], reps: number): number {
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) for (const p of preimages) sink ^= impl.keccak(p)[0]!;
  return performance.now() - t0;
}

function timeTree(impl: KeccakImpl, readings: readonly MeterReading[], reps: number): number {
  const t0 = performance.now();
  for (let r = 0; r < reps; r++) {
    const tree = new MerkleTreeBuilder({ keccak: impl.keccak });
    for (const reading of readings) tree.appendReading(reading);
    sink ^= tree.rootBytes()[0]!;
  }
  return performance.now() - t0;
}

/**
 * One large tree built chunk by chunk, each chunk's appends timed right after (or before) a bare loop
 * over the same chunk's preimages; the root is taken in the last chunk. Returns per-chunk timings.
 */
function timeLargeTreeChunked(impl: KeccakImpl, readings: readonly MeterReading[], preimages: readonly Uint8Array[], run: number): { bareMs: number; treeMs: number; count: number }[] {
  const tree = new MerkleTreeBuilder({ keccak: impl.keccak });
  const chunks: { bareMs: number; treeMs: number; count: number }[] = [];
  for (let start = 0, c = 0; start < readings.length; start += CHUNK_READINGS, c++) {
    const end = Math.min(readings.length, start + CHUNK_READINGS);
    const bare = () => {
      const t0 = performance.now();
      for (let i = start; i < end; i++) sink ^= impl.keccak(preimages[i]!)[0]!;
      return performance.now() - t0;
    };
    const append = () => {
      const t0 = performance.now();
      for (let i = start; i < end; i++) tree.appendReading(readings[i]!);
      if (end === readings.length) sink ^= tree.rootBytes()[0]!;
      return performance.now() - t0;
    };
    let bareMs: number;
    let treeMs: number;
    if ((run + c) % 2 === 0) {
      bareMs = bare();
      treeMs = append();
    } else {
      treeMs = append();
      bareMs = bare();
    }
    chunks.push({ bareMs, treeMs, count: end - start });
  }
  return chunks;
}

function perS(count: number, ms: number): number {
  return (count / ms) * 1000;
}

function rate(v: number): string {
  return `${Math.round(v).toLocaleString('en-US')}/s`;
}

function us(v: number): string {
  return `${v < 10 ? v.toFixed(2) : v.toFixed(1)} µs`;
}

/** Throughput of (a) for one implementation: per run readings/s, keccak/s and their ratio. */
function throughput(impl: KeccakImpl, scenario: Scenario, readings: readonly MeterReading[], preimages: readonly Uint8Array[], out: Out) {
  const large = scenario.n >= LARGE_TREE;
  const reps = repsFor(scenario.n);
  const count = reps * scenario.n;
  // Warm-up on at most 6000 readings (the JIT is warm after the first scenario anyway).
  const warmReps = Math.max(1, Math.floor(6000 / scenario.n));
  timeBare(impl, preimages.slice(0, 6000), warmReps);
  timeTree(impl, readings.slice(0, 6000), warmReps);
  const treeRates: number[] = [];
  const bareRates: number[] = [];
  const ratios: number[] = [];
  for (let run = 0; run < scenario.runs; run++) {
    // Each run: interleaved samples of each, the order alternating; the run's figures are the
    // medians of its samples (small trees: whole trees; a large tree: its chunks).
    const treeSamples: number[] = [];
    const bareSamples: number[] = [];
    const pairRatios: number[] = [];
    if (large) {
      for (const chunk of timeLargeTreeChunked(impl, readings, preimages, run)) {
        treeSamples.push(perS(chunk.count, chunk.treeMs));
        bareSamples.push(perS(chunk.count, chunk.bareMs));
        pairRatios.push(chunk.bareMs / chunk.treeMs);
      }
    } else {
      for (let p = 0; p < PAIRS_PER_RUN; p++) {
        let bareMs: number;
        let treeMs: number;
        if ((run + p) % 2 === 0) {
          bareMs = timeBare(impl, preimages, reps);
          treeMs = timeTree(impl, readings, reps);
        } else {
          treeMs = timeTree(impl, readings, reps);
          bareMs = timeBare(impl, preimages, reps);
        }
        treeSamples.push(perS(count, treeMs));
        bareSamples.push(perS(count, bareMs));
        pairRatios.push(bareMs / treeMs);
      }
    }
    treeRates.push(median(treeSamples));
    bareRates.push(median(bareSamples));
    ratios.push(median(pairRatios));
  }
  const result = { tree: median(treeRates), bare: median(bareRates), ratio: median(ratios) };
  out(
    `  ${scenario.name} ${impl.name}: tree ${rate(result.tree)} vs bare keccak ${rate(result.bare)} → ${result.ratio.toFixed(2)} ` +
      `(per run ${ratios.map((r) => r.toFixed(2)).join(', ')}; ` +
      (large ? `one tree per run, built in chunks of ${CHUNK_READINGS} readings, each against the bare loop over it)` : `${PAIRS_PER_RUN} pairs of samples per run, ${reps} tree${reps === 1 ? '' : 's'} of ${scenario.n} each)`),
  );
  return result;
}

async function runScenario(scenario: Scenario, out: Out): Promise<BenchRow[]> {
  const main: KeccakImpl = { name: 'js-sha3, flexgate\'s', keccak: keccak256 };
  const noble: KeccakImpl = { name: '@noble/hashes', keccak: keccak_256 };
  const readings = makeReadings(scenario.n, scenario.n);
  const preimages = leafPreimages(readings);
  const rows: BenchRow[] = [];
  const scenarioText = `n = ${scenario.n.toLocaleString('en-US')} readings`;

  // (a) throughput.
  const a = throughput(main, scenario, readings, preimages, out);
  rows.push({
    benchmark: 'proofs',
    scenario: scenarioText,
    figure: 'readings into tree/s vs bare keccak/s (js-sha3)',
    value: rate(a.tree),
    baseline: rate(a.bare),
    ratio: a.ratio,
    target: { op: '>=', value: 0.5 },
  });
  if (scenario.n === 100_000) {
    rows.push({
      benchmark: 'proofs',
      scenario: scenarioText,
      figure: 'readings into tree/s vs DESIGN.md target (js-sha3)',
      value: rate(a.tree),
      baseline: `${rate(TARGET_READINGS_PER_S)} (fixed)`,
      ratio: a.tree / TARGET_READINGS_PER_S,
      target: { op: '>=', value: 1 },
    });
  }
  {
    const extra = noble;
    const x = throughput(extra, scenario, readings, preimages, out);
    rows.push({
      benchmark: 'proofs',
      scenario: scenarioText,
      figure: `readings into tree/s vs bare keccak/s (${extra.name}, for comparison)`,
      value: rate(x.tree),
      baseline: rate(x.bare),
      ratio: x.ratio,
    });
    rows.push({
      benchmark: 'proofs',
      scenario: scenarioText,
      figure: `readings into tree/s, js-sha3 vs ${extra.name}`,
      value: rate(a.tree),
      baseline: rate(x.tree),
      ratio: a.tree / x.tree,
    });
  }

  // (b) proof size.
  const tree = new MerkleTreeBuilder({ expectedLeaves: scenario.n });
  for (const r of readings) tree.appendReading(r);
  let longest = 0;
  let total = 0;
  for (let i = 0; i < scenario.n; i++) {
    const length = inclusionPathLength(i, scenario.n);
    longest = Math.max(longest, length);
    total += length;
  }
  const ceilLog2 = maxInclusionPathLength(scenario.n);
  out(`  ${scenario.name}: inclusion path ${longest} hashes at most (${longest * 32} B), ${(total / scenario.n).toFixed(2)} on average; ⌈log2 n⌉ = ${ceilLog2}`);
  rows.push({
    benchmark: 'proofs',
    scenario: scenarioText,
    figure: 'longest inclusion path vs ⌈log2 n⌉',
    value: `${longest} hashes`,
    baseline: `${ceilLog2} hashes`,
    ratio: longest / ceilLog2,
    target: { op: '=', value: 1 },
  });

  // (c) verification time vs one keccak of a node.
  const random = prng(42);
  const sampleCount = Math.min(256, scenario.n);
  const anchor = { root: tree.root(), count: scenario.n };
  const samples: { leaf: Hex; proof: InclusionProof }[] = [];
  for (let i = 0; i < sampleCount; i++) {
    const index = Math.floor(random() * scenario.n);
    samples.push({ leaf: tree.leafHash(index), proof: tree.proof(index) });
  }
  for (const s of samples) if (!verifyInclusion(s.leaf, s.proof, anchor).ok) throw new Error(`proof of leaf ${s.proof.index} does not verify`);
  const node = new Uint8Array(65).fill(1);
  const timeVerify = () => {
    const t0 = performance.now();
    for (const s of samples) if (!verifyInclusion(s.leaf, s.proof, anchor).ok) sink++;
    return ((performance.now() - t0) * 1000) / sampleCount;
  };
  const timeKeccak = () => {
    const t0 = performance.now();
    for (let i = 0; i < sampleCount; i++) {
      node[1] = i & 0xff;
      sink ^= keccak_256(node)[0]!;
    }
    return ((performance.now() - t0) * 1000) / sampleCount;
  };
  timeVerify();
  timeKeccak();
  const verifyUs: number[] = [];
  const keccakUs: number[] = [];
  const vRatios: number[] = [];
  for (let run = 0; run < Math.max(3, scenario.runs); run++) {
    // Each run: 16 interleaved pairs (every sampled proof verified once, as many keccaks), order alternating.
    const v: number[] = [];
    const k: number[] = [];
    const r: number[] = [];
    for (let p = 0; p < 16; p++) {
      let vi: number;
      let ki: number;
      if (p % 2 === 0) {
        vi = timeVerify();
        ki = timeKeccak();
      } else {
        ki = timeKeccak();
        vi = timeVerify();
      }
      v.push(vi);
      k.push(ki);
      r.push(vi / ki);
    }
    verifyUs.push(median(v));
    keccakUs.push(median(k));
    vRatios.push(median(r));
  }
  const averagePath = samples.reduce((sum, s) => sum + s.proof.path.length, 0) / sampleCount;
  out(
    `  ${scenario.name}: verify one proof ${us(median(verifyUs))} (paths of ${averagePath.toFixed(1)} hashes on average) vs one keccak ${us(median(keccakUs))} → ` +
      `${median(vRatios).toFixed(1)}× (per run ${vRatios.map((r) => r.toFixed(1)).join(', ')})`,
  );
  rows.push({
    benchmark: 'proofs',
    scenario: scenarioText,
    figure: 'verify one inclusion proof vs one keccak (noble)',
    value: us(median(verifyUs)),
    baseline: us(median(keccakUs)),
    ratio: median(vRatios),
  });
  if (scenario.n === 100_000) {
    rows.push({
      benchmark: 'proofs',
      scenario: scenarioText,
      figure: 'verify one inclusion proof vs 1 ms (DESIGN.md: well under)',
      value: us(median(verifyUs)),
      baseline: '1000 µs (fixed)',
      ratio: median(verifyUs) / 1000,
      target: { op: '<=', value: 0.5 },
    });
  }
  return rows;
}

export const proofsBenchmark: Benchmark = {
  name: 'proofs',
  async run(out: Out): Promise<BenchRow[]> {
    out('proofs: metering Merkle trees (PROTOCOL.md §5) — readings into trees vs a bare keccak loop, proof size, verification (bench/README.md)');
    const scenarios: Scenario[] = [
      { name: 'n=90', n: 90, runs: 5 },
      { name: 'n=900', n: 900, runs: 5 },
      { name: 'n=100000', n: 100_000, runs: 3 },
    ];
    const rows: BenchRow[] = [];
    for (const s of scenarios) rows.push(...(await runScenario(s, out)));
    // `sink` keeps the hashes observable so the JIT cannot drop them; it is never negative.
    if (sink < 0) out(`sink ${sink}`);
    return rows;
  },
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  proofsBenchmark.run((line) => process.stdout.write(`${line}\n`)).then(
    () => process.exit(0),
    (e: unknown) => {
      process.stderr.write(`proofs benchmark failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
