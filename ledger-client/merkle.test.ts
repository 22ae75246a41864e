import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { concat, encodeAbiParameters, keccak256, toHex as viemToHex, type Hex } from 'viem';
import { describe, expect, it } from 'vitest';
import { signEnvelope, verifyEnvelope } from './eip712.js';
import { LedgerInputError } from './errors.js';
import {
  buildMeterProof,
  encodeLeafData,
  hashLeafData,
  hashNode,
  inclusionPathLength,
  IntervalProofBuilder,
  intervalEnergy,
  maxInclusionPathLength,
  MerkleTreeBuilder,
  merkleRoot,
  NULL_ROOT,
  readingLeafHash,
  treeOfReadings,
  verifyInclusion,
  verifyReadingInclusion,
  type CounterReading,
  type InclusionProof,
  type MeterReading,
} from './merkle.js';

interface LeafVector extends MeterReading {
  leafData: Hex;
  leafHash: Hex;
}
interface MerkleVectors {
  leaves: LeafVector[];
  roots: Record<string, Hex>;
  proofs: InclusionProof[];
}
const vectors = JSON.parse(readFileSync(new URL('./vectors/merkle.json', import.meta.url), 'utf8')) as MerkleVectors;
const readings: MeterReading[] = vectors.leaves.map(({ leafData: _d, leafHash: _h, ...r }) => r);
const GATEWAY_KEY = (JSON.parse(readFileSync(new URL('./vectors/eip712.json', import.meta.url), 'utf8')) as { keys: { gateway: { privateKey: Hex } } }).keys.gateway.privateKey;

// ---------------------------------------------------------------------------------------------
// A naive reference, written from the text of RFC 6962 §2.1 and §2.1.1 with viem's keccak256 on hex,
// sharing no code with merkle.ts.

const refLeaf = (data: Hex): Hex => keccak256(concat(['0x00', data]));
const refNode = (left: Hex, right: Hex): Hex => keccak256(concat(['0x01', left, right]));
function refSplit(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}
/** MTH(D[n]) over leaf hashes; the null root for n = 0 (PROTOCOL.md §5). */
function refRoot(leafHashes: readonly Hex[]): Hex {
  if (leafHashes.length === 0) return `0x${'00'.repeat(32)}`;
  if (leafHashes.length === 1) return leafHashes[0]!;
  const k = refSplit(leafHashes.length);
  return refNode(refRoot(leafHashes.slice(0, k)), refRoot(leafHashes.slice(k)));
}
/** PATH(m, D[n]). */
function refPath(m: number, leafHashes: readonly Hex[]): Hex[] {
  const n = leafHashes.length;
  if (n <= 1) return [];
  const k = refSplit(n);
  return m < k ? [...refPath(m, leafHashes.slice(0, k)), refRoot(leafHashes.slice(k))] : [...refPath(m - k, leafHashes.slice(k)), refRoot(leafHashes.slice(0, k))];
}

/** Distinct leaf hashes for synthetic trees. */
function syntheticLeaves(n: number, seed = 0): Hex[] {
  return Array.from({ length: n }, (_, i) => refLeaf(viemToHex(`leaf ${seed} ${i}`)));
}

function flipBit(hex: Hex, bit: number): Hex {
  const bytes = Buffer.from(hex.slice(2), 'hex');
  bytes[bit >> 3]! ^= 1 << (bit & 7);
  return `0x${bytes.toString('hex')}`;
}

const ABI_LEAF = [{ type: 'address' }, { type: 'uint64' }, { type: 'int64' }, { type: 'uint64' }, { type: 'uint64' }, { type: 'bytes32' }] as const;
const abiLeafData = (r: MeterReading): Hex =>
  encodeAbiParameters(ABI_LEAF, [r.gateway, BigInt(r.ts), BigInt(r.powerW), BigInt(r.importWh), BigInt(r.exportWh), r.salt]);

// ---------------------------------------------------------------------------------------------

describe('Merkle golden vectors (vectors/merkle.json)', () => {
  it('reproduces every leafData and leafHash', () => {
    expect(vectors.leaves).toHaveLength(17);
    for (const v of vectors.leaves) {
      const { leafData, leafHash, ...reading } = v;
      expect(viemToHex(encodeLeafData(reading))).toBe(leafData);
      expect(abiLeafData(reading)).toBe(leafData);
      expect(readingLeafHash(reading)).toBe(leafHash);
      expect(viemToHex(hashLeafData(encodeLeafData(reading)))).toBe(leafHash);
    }
  });

  it('reproduces the root of the first n readings for n = 0..17, streaming and in one go', () => {
    const tree = new MerkleTreeBuilder();
    for (let n = 0; n <= 17; n++) {
      const expected = vectors.roots[String(n)]!;
      expect(tree.root()).toBe(expected);
      expect(treeOfReadings(readings.slice(0, n)).root()).toBe(expected);
      expect(merkleRoot(vectors.leaves.slice(0, n).map((l) => l.leafHash))).toBe(expected);
      expect(refRoot(vectors.leaves.slice(0, n).map((l) => l.leafHash))).toBe(expected);
      if (n < 17) tree.appendReading(readings[n]!);
    }
    expect(vectors.roots['0']).toBe(NULL_ROOT);
  });

  it('reproduces every inclusion path, and every one verifies', () => {
    expect(vectors.proofs.length).toBe(1 + 2 + 3 + 5 + 8 + 13 + 17);
    for (const p of vectors.proofs) {
      const tree = treeOfReadings(readings.slice(0, p.size));
      const proof = tree.proof(p.index);
      expect(proof).toEqual(p);
      const anchor = { root: vectors.roots[String(p.size)]!, count: p.size };
      expect(verifyInclusion(vectors.leaves[p.index]!.leafHash, p, anchor)).toEqual({ ok: true });
      expect(verifyReadingInclusion(readings[p.index]!, p, anchor)).toEqual({ ok: true });
    }
  });
});

describe('RFC 6962 trees against the naive reference', () => {
  const sizes = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129];

  for (const n of sizes) {
    it(`${n} leaves: root and every path (length ≤ ⌈log2 n⌉ = ${maxInclusionPathLength(n)})`, () => {
      const leaves = syntheticLeaves(n, n);
      const tree = new MerkleTreeBuilder();
      for (const l of leaves) tree.appendLeafHash(l);
      const root = refRoot(leaves);
      expect(tree.root()).toBe(root);
      let longest = 0;
      for (let m = 0; m < n; m++) {
        const proof = tree.proof(m);
        expect(proof.path).toEqual(refPath(m, leaves));
        expect(proof.path.length).toBe(inclusionPathLength(m, n));
        longest = Math.max(longest, proof.path.length);
        expect(verifyInclusion(leaves[m]!, proof, { root, count: n })).toEqual({ ok: true });
      }
      expect(longest).toBe(maxInclusionPathLength(n));
    });
  }

  it('does not duplicate an odd last leaf (3 leaves ≠ 4 leaves with the last repeated)', () => {
    const [a, b, c] = syntheticLeaves(3);
    expect(merkleRoot([a!, b!, c!])).toBe(refNode(refNode(a!, b!), c!));
    expect(merkleRoot([a!, b!, c!])).not.toBe(refNode(refNode(a!, b!), refNode(c!, c!)));
  });

  it('does not sort: swapping two leaves changes the root', () => {
    const [a, b] = syntheticLeaves(2);
    expect(merkleRoot([a!, b!])).not.toBe(merkleRoot([b!, a!]));
  });

  it('the root after every append equals the reference root of that prefix (streaming)', () => {
    const leaves = syntheticLeaves(300, 7);
    const tree = new MerkleTreeBuilder();
    for (let n = 1; n <= leaves.length; n++) {
      tree.appendLeafHash(leaves[n - 1]!);
      if (n <= 70 || n % 37 === 0 || n === 256 || n === 257) expect(tree.root()).toBe(refRoot(leaves.slice(0, n)));
    }
  });

  it('has the null root and no proofs when empty', () => {
    const tree = new MerkleTreeBuilder();
    expect(tree.root()).toBe(NULL_ROOT);
    expect(merkleRoot([])).toBe(NULL_ROOT);
    expect(() => tree.proof(0)).toThrow(LedgerInputError);
  });

  it('keeps leaves and nodes apart: a 64-byte interior node (left ‖ right) cannot pass as a leaf', () => {
    const leaves = syntheticLeaves(4, 99);
    const root = refRoot(leaves);
    const node01 = hashNode(Buffer.from(leaves[0]!.slice(2), 'hex'), Buffer.from(leaves[1]!.slice(2), 'hex'));
    const node23 = refNode(leaves[2]!, leaves[3]!);
    expect(viemToHex(node01)).toBe(refNode(leaves[0]!, leaves[1]!));
    // Presenting left ‖ right as leaf data hashes with 0x00, not 0x01: it is not the node.
    const asLeaf = hashLeafData(Buffer.from(concat([leaves[0]!, leaves[1]!]).slice(2), 'hex'));
    expect(viemToHex(asLeaf)).not.toBe(viemToHex(node01));
    expect(verifyInclusion(asLeaf, { index: 0, size: 2, path: [node23] }, { root, count: 2 })).toMatchObject({ ok: false, reason: 'MISMATCH' });
    // The 2-leaf "view" of the 4-leaf tree is exactly why the leaf count is part of the anchor.
    expect(verifyInclusion(node01, { index: 0, size: 2, path: [node23] }, { root, count: 4 })).toMatchObject({ ok: false, reason: 'WRONG_SIZE' });
    // A 2-leaf tree of the 64-byte data is not the 1-level tree of the two leaves either.
    expect(merkleRoot([asLeaf])).not.toBe(refNode(leaves[0]!, leaves[1]!));
  });

  it('needs the anchored count: RFC 9162 alone accepts leaf 0 of 6 leaves as leaf 0 of 7', () => {
    const leaves = syntheticLeaves(6, 3);
    const tree = new MerkleTreeBuilder();
    for (const l of leaves) tree.appendLeafHash(l);
    const proof = tree.proof(0);
    const root = tree.root();
    expect(verifyInclusion(leaves[0]!, proof, { root, count: 6 })).toEqual({ ok: true });
    expect(verifyInclusion(leaves[0]!, { ...proof, size: 7 }, { root, count: 7 })).toEqual({ ok: true }); // the algorithm's blind spot
    expect(verifyInclusion(leaves[0]!, { ...proof, size: 7 }, { root, count: 6 })).toMatchObject({ ok: false, reason: 'WRONG_SIZE' });
  });

  it('rejects paths of the wrong length, indices out of range and junk, without throwing', () => {
    const leaves = syntheticLeaves(13);
    const tree = new MerkleTreeBuilder();
    for (const l of leaves) tree.appendLeafHash(l);
    const anchor = { root: tree.root(), count: 13 };
    const proof = tree.proof(5);
    expect(verifyInclusion(leaves[5]!, { ...proof, path: [...proof.path, proof.path[0]!] }, anchor)).toMatchObject({ ok: false, reason: 'MALFORMED', detail: expect.stringMatching(/^path: 5 hashes, a proof of leaf 5 of 13 has 4/) });
    expect(verifyInclusion(leaves[5]!, { ...proof, path: proof.path.slice(1) }, anchor)).toMatchObject({ ok: false, reason: 'MALFORMED', detail: expect.stringMatching(/^path: 3 hashes/) });
    expect(verifyInclusion(leaves[5]!, { ...proof, index: 13 }, anchor)).toMatchObject({ ok: false, reason: 'MALFORMED', detail: expect.stringMatching(/^index: 13 is not below size 13/) });
    expect(verifyInclusion(leaves[5]!, { ...proof, index: -1 }, anchor)).toMatchObject({ ok: false, reason: 'MALFORMED' });
    expect(verifyInclusion(leaves[5]!, { ...proof, index: 1.5 }, anchor)).toMatchObject({ ok: false, reason: 'MALFORMED' });
    expect(verifyInclusion(leaves[5]!, { ...proof, size: 0 }, anchor)).toMatchObject({ ok: false, reason: 'MALFORMED' });
    expect(verifyInclusion(leaves[5]!, { ...proof, path: [...proof.path.slice(1), '0x12'] }, anchor)).toMatchObject({ ok: false, reason: 'MALFORMED', detail: expect.stringMatching(/^path\[3\]/) });
    expect(verifyInclusion('0x1234', proof, anchor)).toMatchObject({ ok: false, reason: 'MALFORMED', detail: expect.stringMatching(/^leafHash/) });
    fc.assert(
      fc.property(fc.anything(), fc.anything(), (p, leaf) => {
        const result = verifyInclusion(leaf as Hex, p as InclusionProof, anchor);
        return !result.ok;
      }),
      { numRuns: 300 },
    );
  });

  it('property: every proof of a random tree verifies; any flipped bit in path, leaf, index or size fails', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 300 }).chain((n) => fc.tuple(fc.constant(n), fc.integer({ min: 0, max: n - 1 }), fc.integer({ min: 0, max: 2 ** 31 }), fc.nat())),
        ([n, index, seed, bitChoice]) => {
          const leaves = syntheticLeaves(n, seed);
          const tree = new MerkleTreeBuilder();
          for (const l of leaves) tree.appendLeafHash(l);
          const anchor = { root: tree.root(), count: n };
          const proof = tree.proof(index);
          expect(proof.path.length).toBeLessThanOrEqual(maxInclusionPathLength(n));
          expect(verifyInclusion(leaves[index]!, proof, anchor)).toEqual({ ok: true });

          // A flipped bit of the leaf.
          expect(verifyInclusion(flipBit(leaves[index]!, bitChoice % 256), proof, anchor).ok).toBe(false);
          // A flipped bit of one path element.
          if (proof.path.length > 0) {
            const at = bitChoice % proof.path.length;
            const path = proof.path.map((p, i) => (i === at ? flipBit(p, (bitChoice >> 3) % 256) : p));
            expect(verifyInclusion(leaves[index]!, { ...proof, path }, anchor).ok).toBe(false);
          }
          // A flipped bit of the index or the size (within 32 bits).
          const bit = bitChoice % 32;
          expect(verifyInclusion(leaves[index]!, { ...proof, index: (index ^ (1 << bit)) >>> 0 }, anchor).ok).toBe(false);
          expect(verifyInclusion(leaves[index]!, { ...proof, size: (n ^ (1 << bit)) >>> 0 }, anchor).ok).toBe(false);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('property: a flipped index fails even when the anchor is not consulted for it (same size, same root)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 200 }), fc.nat(), fc.nat(), (n, a, b) => {
        const index = a % n;
        const other = b % n;
        fc.pre(index !== other);
        const leaves = syntheticLeaves(n, n);
        const tree = new MerkleTreeBuilder();
        for (const l of leaves) tree.appendLeafHash(l);
        const proof = tree.proof(index);
        return !verifyInclusion(leaves[index]!, { ...proof, index: other }, { root: tree.root(), count: n }).ok;
      }),
      { numRuns: 200 },
    );
  });
});

describe('leafData encoding', () => {
  const arbitraryReading = fc.record({
    gateway: fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => viemToHex(b)),
    ts: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    powerW: fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    importWh: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    exportWh: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    salt: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => viemToHex(b)),
  });

  it('property: equals viem’s abi.encode for any valid reading (extremes and negative powers included)', () => {
    fc.assert(
      fc.property(arbitraryReading, (r) => viemToHex(encodeLeafData(r)) === abiLeafData(r)),
      { numRuns: 500 },
    );
    const extreme: MeterReading = { ...readings[0]!, ts: Number.MAX_SAFE_INTEGER, powerW: -Number.MAX_SAFE_INTEGER, importWh: 2 ** 32, exportWh: 2 ** 32 - 1 };
    expect(viemToHex(encodeLeafData(extreme))).toBe(abiLeafData(extreme));
    const minusOne: MeterReading = { ...readings[0]!, powerW: -1 };
    expect(viemToHex(encodeLeafData(minusOne)).slice(2 + 128, 2 + 192)).toBe('f'.repeat(64));
  });

  it('accepts addresses in any case (the same leaf)', () => {
    const upper = { ...readings[0]!, gateway: readings[0]!.gateway.toUpperCase().replace('0X', '0x') as Hex };
    expect(readingLeafHash(upper)).toBe(vectors.leaves[0]!.leafHash);
  });

  it('throws LedgerInputError naming the field for values outside their type', () => {
    const bad: [Partial<MeterReading>, string][] = [
      [{ powerW: 1.5 }, 'reading.powerW'],
      [{ ts: -1 }, 'reading.ts'],
      [{ importWh: 2 ** 53 }, 'reading.importWh'],
      [{ salt: '0x00' }, 'reading.salt'],
      [{ gateway: `0x${'zz'.repeat(20)}` }, 'reading.gateway'],
    ];
    for (const [patch, field] of bad) {
      let error: unknown;
      try {
        encodeLeafData({ ...readings[0]!, ...patch });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(LedgerInputError);
      expect((error as LedgerInputError).field).toBe(field);
    }
    const tree = new MerkleTreeBuilder();
    expect(() => tree.appendReading({ ...readings[0]!, exportWh: -5 })).toThrow(LedgerInputError);
    expect(tree.size).toBe(0);
  });
});

describe('intervalEnergy (PROTOCOL.md §5)', () => {
  const interval = { intervalStart: 900_000, intervalEnd: 1_800_000 };
  const at = (ts: number, importWh: number, exportWh = 0): CounterReading => ({ ts, importWh, exportWh });

  it('is the last reading before the end minus the last before the start', () => {
    expect(intervalEnergy([at(800_000, 100, 10), at(950_000, 104, 11), at(1_700_000, 130, 19), at(1_900_000, 500, 500)], interval)).toEqual({ importWh: 30, exportWh: 9 });
  });

  it('uses the interval’s first reading when there is none before', () => {
    expect(intervalEnergy([at(950_000, 104, 11), at(1_700_000, 130, 19)], interval)).toEqual({ importWh: 26, exportWh: 8 });
    expect(intervalEnergy([at(950_000, 104, 11)], interval)).toEqual({ importWh: 0, exportWh: 0 });
  });

  it('is 0 when the interval has no reading, even with readings around it', () => {
    expect(intervalEnergy([], interval)).toEqual({ importWh: 0, exportWh: 0 });
    expect(intervalEnergy([at(800_000, 100), at(1_800_000, 200)], interval)).toEqual({ importWh: 0, exportWh: 0 });
  });

  it('is 0 for a negative difference (a counter reset), each counter on its own', () => {
    expect(intervalEnergy([at(800_000, 100, 10), at(1_000_000, 5, 20)], interval)).toEqual({ importWh: 0, exportWh: 10 });
  });

  it('counts a reading at intervalStart in the interval and one at intervalEnd in the next', () => {
    expect(intervalEnergy([at(899_999, 100), at(900_000, 101), at(1_799_999, 110), at(1_800_000, 999)], interval)).toEqual({ importWh: 10, exportWh: 0 });
    expect(intervalEnergy([at(900_000, 101), at(1_800_000, 999)], interval)).toEqual({ importWh: 0, exportWh: 0 });
  });

  it('does not need the readings sorted', () => {
    expect(intervalEnergy([at(1_700_000, 130), at(800_000, 100), at(950_000, 104), at(700_000, 1)], interval)).toEqual({ importWh: 30, exportWh: 0 });
  });
});

describe('MeterProof construction', () => {
  const gateway = readings[0]!.gateway;
  const interval = { intervalStart: 1_764_000_000_000, intervalEnd: 1_764_000_900_000 };

  it('builds the MeterProof of the vectors’ first 13 readings with the vector root, and it signs and verifies', () => {
    const { message, tree } = buildMeterProof(gateway, interval, readings.slice(0, 13));
    expect(message).toEqual({ gateway, ...interval, count: 13, root: vectors.roots['13'], importWh: 36, exportWh: 4 });
    // The eip712 vector's MeterProof carries the same root for 13 leaves.
    expect(message.root).toBe('0x2a419a5cbd085f33fad5dc61aa6bff4b5aebbd7bb53f00ec3b03de12fbe71be3');
    const envelope = signEnvelope(GATEWAY_KEY, 'MeterProof', message, 31337);
    expect(verifyEnvelope(envelope, { chainId: 31337, expectedType: 'MeterProof' })).toMatchObject({ ok: true, signer: gateway });
    const proof = tree.proof(7);
    expect(verifyReadingInclusion(readings[7]!, proof, { root: message.root, count: message.count })).toEqual({ ok: true });
    expect(verifyReadingInclusion({ ...readings[7]!, powerW: readings[7]!.powerW + 1 }, proof, { root: message.root, count: message.count })).toMatchObject({ ok: false, reason: 'MISMATCH' });
  });

  it('streams: the builder fed one reading at a time gives the same proof as the list, and its energy is intervalEnergy', () => {
    const previous = { ts: interval.intervalStart - 10_000, importWh: 99_990, exportWh: 1_999 };
    const builder = new IntervalProofBuilder({ gateway, ...interval, previous });
    for (const r of readings) builder.add(r);
    const all = [previous, ...readings];
    const fromList = buildMeterProof(gateway, interval, [{ ...readings[0]!, ...previous }, ...readings]);
    expect(builder.meterProof()).toEqual(fromList.message);
    expect(builder.meterProof()).toMatchObject({ count: 17, root: vectors.roots['17'], ...intervalEnergy(all, interval) });
    expect(builder.meterProof()).toMatchObject({ importWh: 100_048 - 99_990, exportWh: 2_005 - 1_999 });
    expect(builder.inclusionProof(16)).toEqual(vectors.proofs.find((p) => p.size === 17 && p.index === 16));
  });

  it('an interval with no reading has count 0, the null root and no energy', () => {
    expect(buildMeterProof(gateway, { intervalStart: 0, intervalEnd: 900_000 }, readings).message).toEqual({
      gateway,
      intervalStart: 0,
      intervalEnd: 900_000,
      count: 0,
      root: NULL_ROOT,
      importWh: 0,
      exportWh: 0,
    });
  });

  it('refuses readings out of the interval, out of time order or of another gateway, and unaligned intervals', () => {
    const builder = new IntervalProofBuilder({ gateway, ...interval });
    builder.add(readings[1]!);
    expect(() => builder.add(readings[0]!)).toThrow(/reading\.ts: .* is before the previous reading/);
    expect(() => builder.add({ ...readings[2]!, ts: interval.intervalEnd })).toThrow(/outside the interval/);
    expect(() => builder.add({ ...readings[2]!, gateway: '0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a' })).toThrow(/reading\.gateway/);
    expect(builder.count).toBe(1);
    expect(() => new IntervalProofBuilder({ gateway, intervalStart: 1_764_000_000_001, intervalEnd: 1_764_000_900_001 })).toThrow(/not a multiple of the interval length/);
    expect(() => new IntervalProofBuilder({ gateway, intervalStart: 900_000, intervalEnd: 900_000 })).toThrow(LedgerInputError);
    expect(() => buildMeterProof(gateway, interval, [readings[3]!, readings[2]!])).toThrow(LedgerInputError);
  });
});

describe('leafData encoding after a bad gateway', () => {
  it('a rejected gateway does not corrupt the next leaf of the previous gateway', () => {
    const r = readings[0]!;
    expect(readingLeafHash(r)).toBe(vectors.leaves[0]!.leafHash);
    expect(() => readingLeafHash({ ...r, gateway: `0x${'ab'.repeat(10)}zz${'ab'.repeat(9)}` })).toThrow(LedgerInputError);
    expect(readingLeafHash(r)).toBe(vectors.leaves[0]!.leafHash);
    expect(readingLeafHash({ ...r, gateway: '0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a' })).toBe(refLeaf(abiLeafData({ ...r, gateway: '0x19e7e376e7c213b7e7e7e46cc70a5dd086daff2a' })));
    expect(readingLeafHash(r)).toBe(vectors.leaves[0]!.leafHash);
  });
});
