/**
 * Gas benchmark: what anchoring metering proofs (PROTOCOL.md §5, §7) costs on an EVM chain, measured
 * on a real anvil node with the deployed ProofRegistry and real signed MeterProofs (real RFC 6962
 * trees of random readings, each with a random salt), bench/README.md.
 *
 * flexgate's figures (receipt gasUsed, whole transactions: 21 000 base + calldata + execution):
 * - `anchor` of one interval after the gateway's first, at the default leaf rate (10 s → n = 90
 *   readings per 15-min interval) and at 1 reading/s (n = 900); per interval and per reading;
 * - `anchorBatch` of 4, 16 and 32 (the outbox's default maxBatch) intervals after an outage, per
 *   interval: intervals with readings (the chain or the network was down) and count-0 intervals (the
 *   agent was down);
 * - `anchor` of an empty (count 0, null root) interval;
 * - `verifyInclusion` (eth_estimateGas, as a transaction would pay) for the longest path of n = 90
 *   and n = 900;
 * - per gateway per year at the default 15-min interval.
 *
 * Baselines, measured in the same run on the same node:
 * - a bare transaction (a 0-value transfer to an EOA: the 21 000 intrinsic gas every transaction
 *   pays) — per interval for the anchor, per reading for "a transaction per reading";
 * - the same data posted naively, without a tree, by a contract compiled here with the same solc
 *   settings: every leaf hash stored on chain (an SSTORE each; what verifying a single reading on
 *   chain without a Merkle proof needs), and every leaf hash only logged (calldata + one event: the
 *   cheapest way to publish every leaf; checkable off chain only, and unsigned);
 * - for verifyInclusion: the naive contract's lookup of one stored leaf hash (one SLOAD);
 * - for batches: the same intervals anchored one transaction each.
 *
 * Gas is deterministic (no timing): the same bytes always cost the same. Random roots, addresses and
 * signatures change the calldata (4 gas per zero byte, 16 per non-zero one) by a few tens of gas, so
 * each single-anchor figure is the median of 3 intervals and its range is printed. One run suffices.
 *
 * Run alone: `npx tsx bench/gas.ts` (or through `npm run bench`).
 */
import { randomBytes } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import solc from 'solc';
import { createPublicClient, createWalletClient, encodeFunctionData, http, type Abi, type Address, type Hex, type PublicClient } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { startAnvil, type Anvil } from '../ledger-client/anvil.js';
import { abi as registryAbi } from '../ledger-client/contracts/generated/ProofRegistry.js';
import { deployContracts, fund } from '../ledger-client/deploy.js';
import { sign, type MeterProof } from '../ledger-client/eip712.js';
import { IntervalProofBuilder, MerkleTreeBuilder, NULL_ROOT, randomSalt, readingLeafHash, type MeterReading } from '../ledger-client/merkle.js';
import type { BenchRow, Benchmark, Out } from './types.js';

const INTERVAL_MS = 15 * 60 * 1000;
/** Readings per 15-min interval: one every 10 s (the default leafIntervalMs), one every 1 s. */
const RATES = [
  { name: '10 s', n: 90 },
  { name: '1 s', n: 900 },
] as const;
const BATCH_SIZES = [4, 16, 32] as const;
const SAMPLES = 3;
const INTERVALS_PER_YEAR = (365 * 24 * 3600 * 1000) / INTERVAL_MS; // 35 040
/** The first interval anchored in this benchmark (aligned to 15 min), 2026-06-21T00:00Z. */
const FIRST_INTERVAL_MS = Date.UTC(2026, 5, 21);

/** The naive baseline: the leaf hashes themselves on chain, no tree, no signature. */
const NAIVE_SOURCE = `// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;
/// Baseline of bench/gas.ts: every leaf hash of an interval posted on chain, without a tree.
contract NaiveLeafPosting {
    mapping(address gateway => mapping(uint256 index => bytes32 leafHash)) public leafAt;
    mapping(address gateway => uint256) public leafCount;
    event Leaves(address indexed gateway, bytes32[] leafHashes);

    /// Stores every leaf hash (one storage slot each), appended to the sender's list.
    function storeLeaves(bytes32[] calldata leafHashes) external {
        uint256 n = leafCount[msg.sender];
        for (uint256 i = 0; i < leafHashes.length; ++i) leafAt[msg.sender][n + i] = leafHashes[i];
        leafCount[msg.sender] = n + leafHashes.length;
    }

    /// Publishes every leaf hash in calldata and one event, storing nothing.
    function logLeaves(bytes32[] calldata leafHashes) external {
        emit Leaves(msg.sender, leafHashes);
    }

    /// The on-chain check of one reading against stored leaf hashes.
    function isLeaf(address gateway, uint256 index, bytes32 leafHash) external view returns (bool) {
        return leafAt[gateway][index] == leafHash;
    }
}
`;

function compileNaive(): { abi: Abi; bytecode: Hex } {
  const input = {
    language: 'Solidity',
    sources: { 'NaiveLeafPosting.sol': { content: NAIVE_SOURCE } },
    // The same settings as ledger-client/contracts/build.ts.
    settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: 'paris', outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } },
  };
  const output = JSON.parse((solc.compile as (i: string) => string)(JSON.stringify(input))) as {
    errors?: Array<{ severity: string; formattedMessage: string }>;
    contracts: Record<string, Record<string, { abi: Abi; evm: { bytecode: { object: string } } }>>;
  };
  const errors = (output.errors ?? []).filter((e) => e.severity === 'error');
  if (errors.length > 0) throw new Error(`solc failed on the baseline contract:\n${errors.map((e) => e.formattedMessage).join('\n')}`);
  const c = output.contracts['NaiveLeafPosting.sol']!['NaiveLeafPosting']!;
  return { abi: c.abi, bytecode: `0x${c.evm.bytecode.object}` };
}

function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }).replace(/,/g, ' ');
}

function range(values: readonly number[]): string {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  return lo === hi ? fmt(lo) : `${fmt(lo)}–${fmt(hi)}`;
}

interface Signed {
  proof: MeterProof;
  signature: Hex;
  leafHashes: Hex[];
}

/** A gateway with its own key and funds, sending its own transactions (as the agent's outbox does). */
class Gateway {
  readonly privateKey: Hex = `0x${randomBytes(32).toString('hex')}`;
  readonly account = privateKeyToAccount(this.privateKey);
  readonly address: Address = this.account.address.toLowerCase() as Address;
  private next = FIRST_INTERVAL_MS;
  private importWh = 12_650_000;
  private exportWh = 8_120_000;

  constructor(private readonly chainId: number) {}

  /** The next interval's signed MeterProof: a real tree of `n` random readings (0 = an empty interval). */
  interval(n: number): Signed {
    const intervalStart = this.next;
    this.next += INTERVAL_MS;
    const builder = new IntervalProofBuilder({ gateway: this.address, intervalStart, intervalEnd: intervalStart + INTERVAL_MS, previous: { ts: intervalStart - 1, importWh: this.importWh, exportWh: this.exportWh } });
    const leafHashes: Hex[] = [];
    const stepMs = n > 0 ? INTERVAL_MS / n : 0;
    for (let i = 0; i < n; i++) {
      const powerW = Math.round((Math.random() - 0.4) * 8000);
      if (powerW > 0) this.importWh += Math.round((powerW * stepMs) / 3.6e6);
      else this.exportWh += Math.round((-powerW * stepMs) / 3.6e6);
      const reading: MeterReading = { gateway: this.address, ts: intervalStart + Math.round(i * stepMs) + 37, powerW, importWh: this.importWh, exportWh: this.exportWh, salt: randomSalt() };
      builder.add(reading);
      leafHashes.push(readingLeafHash(reading));
    }
    const proof = builder.meterProof();
    if (n === 0 && proof.root !== NULL_ROOT) throw new Error('an empty interval must have the null root');
    return { proof, signature: sign(this.privateKey, 'MeterProof', proof, this.chainId), leafHashes };
  }
}

const toArgs = (p: MeterProof) => ({
  gateway: p.gateway,
  intervalStart: BigInt(p.intervalStart),
  intervalEnd: BigInt(p.intervalEnd),
  count: p.count,
  root: p.root,
  importWh: BigInt(p.importWh),
  exportWh: BigInt(p.exportWh),
});

class Chain {
  readonly reader: PublicClient;
  private naive: { abi: Abi; address: Address } | undefined;

  constructor(
    readonly anvil: Anvil,
    readonly registry: Address,
  ) {
    this.reader = createPublicClient({ transport: http(anvil.rpcUrl, { retryCount: 0 }) });
  }

  async newGateway(): Promise<Gateway> {
    const gw = new Gateway(this.anvil.chainId);
    await fund(this.anvil.rpcUrl, this.anvil.privateKeys[0]!, gw.address, '100');
    return gw;
  }

  private wallet(gw: Gateway) {
    return createWalletClient({ account: gw.account, chain: this.anvil.chain, transport: http(this.anvil.rpcUrl, { retryCount: 0 }) });
  }

  /** Sends and returns the mined receipt's gasUsed; throws unless it succeeded. */
  private async mined(hash: Hex, what: string): Promise<number> {
    const receipt = await this.reader.waitForTransactionReceipt({ hash, pollingInterval: 20 });
    if (receipt.status !== 'success') throw new Error(`${what}: transaction ${hash} reverted`);
    return Number(receipt.gasUsed);
  }

  async anchor(gw: Gateway, s: Signed): Promise<number> {
    const hash = await this.wallet(gw).writeContract({ address: this.registry, abi: registryAbi, functionName: 'anchor', args: [toArgs(s.proof), s.signature] });
    return this.mined(hash, 'anchor');
  }

  async anchorBatch(gw: Gateway, batch: readonly Signed[]): Promise<number> {
    const hash = await this.wallet(gw).writeContract({
      address: this.registry,
      abi: registryAbi,
      functionName: 'anchorBatch',
      args: [batch.map((s) => toArgs(s.proof)), batch.map((s) => s.signature)],
    });
    return this.mined(hash, 'anchorBatch');
  }

  async bareTransaction(gw: Gateway): Promise<number> {
    const to = privateKeyToAccount(`0x${randomBytes(32).toString('hex')}`).address;
    const hash = await this.wallet(gw).sendTransaction({ to, value: 0n });
    return this.mined(hash, 'bare transaction');
  }

  async verifyInclusionGas(gw: Gateway, s: Signed, index: number, path: Hex[]): Promise<number> {
    const args = [gw.address, BigInt(s.proof.intervalStart), s.leafHashes[index]!, BigInt(index), BigInt(s.proof.count), path] as const;
    const ok = await this.reader.readContract({ address: this.registry, abi: registryAbi, functionName: 'verifyInclusion', args });
    if (!ok) throw new Error(`verifyInclusion returned false for leaf ${index} of ${s.proof.count}`);
    // A view function: estimate the gas of a transaction calling it (a dispute resolved on chain).
    const data = encodeFunctionData({ abi: registryAbi, functionName: 'verifyInclusion', args });
    return Number(await this.reader.estimateGas({ account: gw.address, to: this.registry, data }));
  }

  async deployNaive(): Promise<void> {
    const { abi, bytecode } = compileNaive();
    const deployer = privateKeyToAccount(this.anvil.privateKeys[0]!);
    const wallet = createWalletClient({ account: deployer, chain: this.anvil.chain, transport: http(this.anvil.rpcUrl, { retryCount: 0 }) });
    const hash = await wallet.deployContract({ abi, bytecode });
    const receipt = await this.reader.waitForTransactionReceipt({ hash, pollingInterval: 20 });
    if (receipt.status !== 'success' || !receipt.contractAddress) throw new Error('deploying the baseline contract failed');
    this.naive = { abi, address: receipt.contractAddress };
  }

  async naiveCall(gw: Gateway, functionName: 'storeLeaves' | 'logLeaves', leafHashes: readonly Hex[]): Promise<number> {
    const n = this.naive!;
    const hash = await this.wallet(gw).writeContract({ address: n.address, abi: n.abi, functionName, args: [leafHashes], gas: 29_000_000n });
    return this.mined(hash, functionName);
  }

  async naiveLookupGas(gw: Gateway, index: number, leafHash: Hex): Promise<number> {
    const n = this.naive!;
    const args = [gw.address, BigInt(index), leafHash] as const;
    const ok = await this.reader.readContract({ address: n.address, abi: n.abi, functionName: 'isLeaf', args });
    if (ok !== true) throw new Error('the baseline lookup did not find the stored leaf');
    const data = encodeFunctionData({ abi: n.abi, functionName: 'isLeaf', args });
    return Number(await this.reader.estimateGas({ account: gw.address, to: n.address, data }));
  }
}

/** The inclusion path of leaf `index` of a tree of `leafHashes` (RFC 6962), rebuilt from the hashes. */
function pathOf(leafHashes: readonly Hex[], index: number): Hex[] {
  const tree = new MerkleTreeBuilder();
  for (const h of leafHashes) tree.appendLeafHash(h);
  return tree.proof(index).path;
}

function row(scenario: string, figure: string, value: string, baseline: string, ratio: number): BenchRow {
  return { benchmark: 'gas', scenario, figure, value, baseline, ratio };
}

export const gasBenchmark: Benchmark = {
  name: 'gas',
  async run(out: Out): Promise<BenchRow[]> {
    out('gas: anchoring metering proofs on anvil (ProofRegistry, real signed proofs of random readings) vs a bare transaction and naive leaf posting (bench/README.md)');
    const anvil = await startAnvil();
    try {
      const contracts = await deployContracts(anvil.rpcUrl, anvil.privateKeys[0]!);
      const chain = new Chain(anvil, contracts.proofs);
      await chain.deployNaive();
      const rows: BenchRow[] = [];

      // Baseline 1: a bare transaction.
      const bareGw = await chain.newGateway();
      const bare = await chain.bareTransaction(bareGw);
      out(`  bare transaction (0-value transfer): ${fmt(bare)} gas`);

      // flexgate: single anchors per rate, after each gateway's first interval.
      const anchorGas = new Map<number, number>();
      const signedByRate = new Map<number, { gw: Gateway; intervals: Signed[] }>();
      let firstAnchor = 0;
      for (const rate of RATES) {
        const gw = await chain.newGateway();
        const first = await chain.anchor(gw, gw.interval(rate.n));
        if (rate.n === 90) firstAnchor = first;
        const intervals: Signed[] = [];
        const gas: number[] = [];
        for (let i = 0; i < SAMPLES; i++) {
          const s = gw.interval(rate.n);
          intervals.push(s);
          gas.push(await chain.anchor(gw, s));
        }
        signedByRate.set(rate.n, { gw, intervals });
        anchorGas.set(rate.n, median(gas));
        out(`  anchor, n = ${rate.n} (one reading every ${rate.name}): first interval of the gateway ${fmt(first)} gas; next intervals ${range(gas)} gas, median ${fmt(median(gas))}`);
      }

      // Baselines 2 and 3: every leaf hash stored / logged (after a first posting, as for the anchor).
      const naiveStore = new Map<number, number>();
      const naiveLog = new Map<number, number>();
      const naiveGw = new Map<number, { gw: Gateway; leafHashes: Hex[]; offset: number }>();
      for (const rate of RATES) {
        const gw = await chain.newGateway();
        await chain.naiveCall(gw, 'storeLeaves', gw.interval(rate.n).leafHashes);
        const s = gw.interval(rate.n);
        naiveStore.set(rate.n, await chain.naiveCall(gw, 'storeLeaves', s.leafHashes));
        naiveGw.set(rate.n, { gw, leafHashes: s.leafHashes, offset: rate.n });
        await chain.naiveCall(gw, 'logLeaves', gw.interval(rate.n).leafHashes);
        naiveLog.set(rate.n, await chain.naiveCall(gw, 'logLeaves', gw.interval(rate.n).leafHashes));
        out(`  naive, n = ${rate.n}: every leaf hash stored ${fmt(naiveStore.get(rate.n)!)} gas (${fmt(naiveStore.get(rate.n)! / rate.n)} per reading); every leaf hash logged ${fmt(naiveLog.get(rate.n)!)} gas (${fmt(naiveLog.get(rate.n)! / rate.n)} per reading)`);
      }

      for (const rate of RATES) {
        const a = anchorGas.get(rate.n)!;
        const sc = `n=${rate.n} (1 reading/${rate.name})`;
        rows.push(row(sc, 'anchor gas per interval vs bare tx', `${fmt(a)} gas`, `${fmt(bare)} gas`, a / bare));
        rows.push(row(sc, 'anchor gas per interval vs every leaf hash stored', `${fmt(a)} gas`, `${fmt(naiveStore.get(rate.n)!)} gas`, a / naiveStore.get(rate.n)!));
        rows.push(row(sc, 'anchor gas per interval vs every leaf hash logged', `${fmt(a)} gas`, `${fmt(naiveLog.get(rate.n)!)} gas`, a / naiveLog.get(rate.n)!));
        rows.push(row(sc, 'gas per reading vs a bare tx per reading', `${fmt(a / rate.n, 1)} gas`, `${fmt(bare)} gas`, a / rate.n / bare));
      }
      rows.push(row('n=90, first interval', "anchor gas, gateway's first vs next", `${fmt(firstAnchor)} gas`, `${fmt(anchorGas.get(90)!)} gas`, firstAnchor / anchorGas.get(90)!));

      // An empty interval (count 0, null root).
      {
        const gw = await chain.newGateway();
        await chain.anchor(gw, gw.interval(90));
        const gas: number[] = [];
        for (let i = 0; i < SAMPLES; i++) gas.push(await chain.anchor(gw, gw.interval(0)));
        const e = median(gas);
        out(`  anchor, empty interval (count 0): ${range(gas)} gas, median ${fmt(e)}`);
        rows.push(row('count 0 (empty interval)', 'anchor gas vs an interval with readings', `${fmt(e)} gas`, `${fmt(anchorGas.get(90)!)} gas`, e / anchorGas.get(90)!));
        rows.push(row('count 0 (empty interval)', 'anchor gas vs bare tx', `${fmt(e)} gas`, `${fmt(bare)} gas`, e / bare));
      }

      // Batches after an outage: k intervals in one anchorBatch, vs one anchor each.
      const single90 = anchorGas.get(90)!;
      for (const k of BATCH_SIZES) {
        for (const kind of ['readings', 'empty'] as const) {
          const gw = await chain.newGateway();
          await chain.anchor(gw, gw.interval(90));
          const batch = Array.from({ length: k }, () => gw.interval(kind === 'readings' ? 90 : 0));
          const total = await chain.anchorBatch(gw, batch);
          const per = total / k;
          let baseline = single90;
          if (kind === 'empty') {
            const gw2 = await chain.newGateway();
            await chain.anchor(gw2, gw2.interval(90));
            baseline = await chain.anchor(gw2, gw2.interval(0));
          }
          out(`  anchorBatch of ${k} ${kind === 'readings' ? 'intervals of 90 readings' : 'empty intervals'}: ${fmt(total)} gas, ${fmt(per)} per interval (single anchors: ${fmt(baseline)} each)`);
          rows.push(row(`batch of ${k}, ${kind === 'readings' ? 'n=90 each' : 'count 0 each'}`, 'gas per interval vs one anchor tx each', `${fmt(per)} gas`, `${fmt(baseline)} gas`, per / baseline));
        }
      }

      // On-chain inclusion check: the longest path (leaf 0) of n = 90 and 900.
      for (const rate of RATES) {
        const { gw, intervals } = signedByRate.get(rate.n)!;
        const s = intervals[0]!;
        const path = pathOf(s.leafHashes, 0);
        const v = await chain.verifyInclusionGas(gw, s, 0, path);
        const naive = naiveGw.get(rate.n)!;
        const lookup = await chain.naiveLookupGas(naive.gw, naive.offset, naive.leafHashes[0]!);
        out(`  verifyInclusion, n = ${rate.n}, leaf 0 (${path.length} path hashes): ${fmt(v)} gas (eth_estimateGas); naive lookup of a stored leaf hash: ${fmt(lookup)} gas`);
        rows.push(row(`n=${rate.n}, ${path.length} path hashes`, 'verifyInclusion gas vs naive stored-leaf lookup', `${fmt(v)} gas`, `${fmt(lookup)} gas`, v / lookup));
      }

      // Per gateway per year at the default interval (15 min) and leaf rate (10 s).
      const perYear = single90 * INTERVALS_PER_YEAR;
      const readingsPerYear = 90 * INTERVALS_PER_YEAR;
      out(
        `  per gateway per year (15-min intervals, 365 days): ${fmt(INTERVALS_PER_YEAR)} transactions, ${fmt(perYear / 1e9, 2)} Ggas ` +
          `(1 reading/10 s or 1/s: the same, the root's size does not depend on n); ` +
          `a bare tx per reading: ${fmt(readingsPerYear)} transactions, ${fmt((readingsPerYear * bare) / 1e9, 2)} Ggas; ` +
          `every leaf hash stored: ${fmt((naiveStore.get(90)! * INTERVALS_PER_YEAR) / 1e9, 1)} Ggas at 10 s, ${fmt((naiveStore.get(900)! * INTERVALS_PER_YEAR) / 1e9, 1)} Ggas at 1 s`,
      );
      rows.push(row('per gateway per year, 10 s leaves', 'transactions vs a bare tx per reading', `${fmt(INTERVALS_PER_YEAR)} tx`, `${fmt(readingsPerYear)} tx`, INTERVALS_PER_YEAR / readingsPerYear));
      rows.push(row('per gateway per year, 10 s leaves', 'gas vs a bare tx per reading', `${fmt(perYear / 1e9, 2)} Ggas`, `${fmt((readingsPerYear * bare) / 1e9, 2)} Ggas`, perYear / (readingsPerYear * bare)));
      out('  gas is deterministic (no timing): one run; single-anchor figures are medians of 3 intervals (calldata varies by a few tens of gas with random roots and signatures)');
      return rows;
    } finally {
      await anvil.stop();
    }
  },
};

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  gasBenchmark.run((line) => process.stdout.write(`${line}\n`)).then(
    (rows) => {
      for (const r of rows) process.stdout.write(`  ${r.scenario} | ${r.figure} | ${r.value} | ${r.baseline} | ${r.ratio.toFixed(3)}\n`);
      process.exit(0);
    },
    (e: unknown) => {
      process.stderr.write(`gas benchmark failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    },
  );
}
