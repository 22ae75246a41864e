/**
 * Metering Merkle trees of PROTOCOL.md §5: RFC 6962 §2.1 with keccak256.
 *
 *   leafData = abi.encode(address gateway, uint64 ts, int64 powerW, uint64 importWh, uint64 exportWh, bytes32 salt)
 *   leafHash = keccak256(0x00 ‖ leafData)          node = keccak256(0x01 ‖ left ‖ right)
 *
 * Leaves in time order, the split at the largest power of two smaller than n, no duplication, no
 * sorting; the root of an empty tree is the null root 0x00…00 (not RFC 6962's hash of ""). Inclusion
 * proofs are (index, size, path) per RFC 6962 §2.1.1, verified with the algorithm of RFC 9162
 * §2.1.3.2.
 *
 * `MerkleTreeBuilder` takes leaves one at a time (a reading every 1–10 s over a 15-minute interval)
 * and keeps every complete subtree, so each append costs one leaf hash plus, amortised, one node
 * hash, the root costs ⌈log2 n⌉ hashes at most and any inclusion proof a few more.
 *
 * `IntervalProofBuilder` / `buildMeterProof` put one interval's readings into a tree and make its
 * (unsigned) MeterProof message; `intervalEnergy` is §5's importWh/exportWh rule.
 */
import { keccak256 as keccak_256, type Keccak256 } from './keccak.js';
import type { MeterProof } from './eip712.js';
import { LedgerInputError } from './errors.js';
import { assertField, fieldProblem, hexToBytes, isBytes32, toHex, type Address, type Hex } from './wire.js';

export type { Keccak256 } from './keccak.js';

/** One reading of the site meter, as it becomes a leaf (and as `flexgate proof export` shows it). */
export interface MeterReading {
  gateway: Address;
  /** Time of the reading, unix epoch ms. */
  ts: number;
  /** Site net power, positive when importing. */
  powerW: number;
  /** The meter's cumulative import counter. */
  importWh: number;
  /** The meter's cumulative export counter. */
  exportWh: number;
  /** Per-leaf secret 32 bytes, kept by the gateway (the counters are guessable). */
  salt: Hex;
}

/** The null root: an interval with no reading (PROTOCOL.md §5). */
export const NULL_ROOT: Hex = `0x${'00'.repeat(32)}`;

/** Length of `leafData` in bytes (6 ABI words). */
export const LEAF_DATA_BYTES = 192;
const HASH_BYTES = 32;
const TWO_32 = 4294967296;

/** A fresh random per-leaf salt (crypto-grade). */
export function randomSalt(): Hex {
  return toHex(crypto.getRandomValues(new Uint8Array(32)));
}

/** Writes a safe integer as a 256-bit two's complement big-endian ABI word at `offset`. */
function writeWord(out: Uint8Array, offset: number, value: number): void {
  const hi = Math.floor(value / TWO_32);
  const lo = value - hi * TWO_32;
  out.fill(value < 0 ? 0xff : 0, offset, offset + 24);
  const h = hi >>> 0;
  const l = lo >>> 0;
  out[offset + 24] = h >>> 24;
  out[offset + 25] = (h >>> 16) & 0xff;
  out[offset + 26] = (h >>> 8) & 0xff;
  out[offset + 27] = h & 0xff;
  out[offset + 28] = l >>> 24;
  out[offset + 29] = (l >>> 16) & 0xff;
  out[offset + 30] = (l >>> 8) & 0xff;
  out[offset + 31] = l & 0xff;
}

function checkNumber(field: string, value: unknown, signed: boolean): void {
  // Fast path for the common case; fieldProblem words the error.
  if (typeof value === 'number' && Number.isSafeInteger(value) && (signed || value >= 0)) return;
  assertField(field, signed ? 'int64' : 'uint64', value);
}

/** The last gateway address decoded: a tree holds one gateway's readings, so it is decoded once. */
let lastGateway = '';
const lastGatewayBytes = new Uint8Array(20);

/**
 * Writes `leafData` of `reading` (192 bytes) into `out` at `offset`. Throws `LedgerInputError`
 * naming the field when a value does not fit its type.
 */
export function writeLeafData(reading: MeterReading, out: Uint8Array, offset: number): void {
  if (typeof reading !== 'object' || reading === null) throw new LedgerInputError('reading', 'expected an object');
  checkNumber('reading.ts', reading.ts, false);
  checkNumber('reading.powerW', reading.powerW, true);
  checkNumber('reading.importWh', reading.importWh, false);
  checkNumber('reading.exportWh', reading.exportWh, false);
  if (reading.gateway !== lastGateway) {
    lastGateway = ''; // not trusted until decoded in full
    hexToBytes('reading.gateway', reading.gateway, 20, lastGatewayBytes, 0);
    lastGateway = reading.gateway;
  }
  out.fill(0, offset, offset + 12);
  out.set(lastGatewayBytes, offset + 12);
  writeWord(out, offset + 32, reading.ts);
  writeWord(out, offset + 64, reading.powerW);
  writeWord(out, offset + 96, reading.importWh);
  writeWord(out, offset + 128, reading.exportWh);
  hexToBytes('reading.salt', reading.salt, 32, out, offset + 160);
}

/** `abi.encode(address gateway, uint64 ts, int64 powerW, uint64 importWh, uint64 exportWh, bytes32 salt)`. */
export function encodeLeafData(reading: MeterReading): Uint8Array {
  const out = new Uint8Array(LEAF_DATA_BYTES);
  writeLeafData(reading, out, 0);
  return out;
}

/** RFC 6962 leaf hash of arbitrary leaf data: keccak256(0x00 ‖ data). */
export function hashLeafData(leafData: Uint8Array, keccak: Keccak256 = keccak_256): Uint8Array {
  const input = new Uint8Array(1 + leafData.length);
  input.set(leafData, 1);
  return keccak(input);
}

/** RFC 6962 interior node: keccak256(0x01 ‖ left ‖ right). */
export function hashNode(left: Uint8Array, right: Uint8Array, keccak: Keccak256 = keccak_256): Uint8Array {
  const input = new Uint8Array(65);
  input[0] = 1;
  input.set(left, 1);
  input.set(right, 33);
  return keccak(input);
}

/** The leaf hash of a reading, as hex. */
export function readingLeafHash(reading: MeterReading, keccak: Keccak256 = keccak_256): Hex {
  const input = new Uint8Array(1 + LEAF_DATA_BYTES);
  writeLeafData(reading, input, 1);
  return toHex(keccak(input));
}

/** Largest power of two strictly smaller than n (n ≥ 2). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** An inclusion proof per RFC 6962 §2.1.1: leaf `index` of a tree of `size` leaves, path leaf to root. */
export interface InclusionProof {
  index: number;
  size: number;
  path: Hex[];
}

/** Number of hashes in the inclusion path of leaf `index` in a tree of `size` (≤ ⌈log2 size⌉). */
export function inclusionPathLength(index: number, size: number): number {
  let length = 0;
  let m = index;
  let n = size;
  while (n > 1) {
    const k = splitPoint(n);
    if (m < k) n = k;
    else {
      m -= k;
      n -= k;
    }
    length++;
  }
  return length;
}

/** ⌈log2 n⌉ for n ≥ 1: the longest inclusion path in a tree of n leaves. */
export function maxInclusionPathLength(size: number): number {
  let length = 0;
  while (2 ** length < size) length++;
  return length;
}

interface Level {
  bytes: Uint8Array;
  /** Number of 32-byte hashes stored. */
  count: number;
}

export interface MerkleTreeOptions {
  /** The keccak256 implementation (benchmarks compare them); default @noble/hashes. */
  keccak?: Keccak256;
  /** Expected number of leaves, to size the buffers once (they grow as needed anyway). */
  expectedLeaves?: number;
}

/**
 * An RFC 6962 tree built one leaf at a time. Level k keeps the hash of every complete subtree of
 * 2^k leaves (aligned), so appending costs one leaf hash and, amortised, one node hash; the root
 * and inclusion proofs fold the at most ⌈log2 n⌉ complete subtrees on the right edge.
 */
export class MerkleTreeBuilder {
  private readonly keccak: Keccak256;
  private readonly levels: Level[] = [];
  private readonly leafInput = new Uint8Array(1 + LEAF_DATA_BYTES);
  private readonly nodeInput = new Uint8Array(65);
  private cachedRoot: Uint8Array | undefined;

  constructor(options: MerkleTreeOptions = {}) {
    this.keccak = options.keccak ?? keccak_256;
    this.nodeInput[0] = 1;
    const capacity = Math.max(16, options.expectedLeaves ?? 0);
    this.levels.push({ bytes: new Uint8Array(capacity * HASH_BYTES), count: 0 });
  }

  /** Number of leaves appended. */
  get size(): number {
    return this.levels[0]!.count;
  }

  /** Appends a reading (its leaf hash). Throws `LedgerInputError` for a field out of its type. */
  appendReading(reading: MeterReading): void {
    writeLeafData(reading, this.leafInput, 1);
    this.pushHash(0, this.keccak(this.leafInput));
  }

  /** Appends arbitrary leaf data (hashed as keccak256(0x00 ‖ data)). */
  appendLeafData(leafData: Uint8Array): void {
    this.pushHash(0, hashLeafData(leafData, this.keccak));
  }

  /** Appends an already computed leaf hash (32 bytes or bytes32 hex). */
  appendLeafHash(leafHash: Uint8Array | Hex): void {
    const bytes = typeof leafHash === 'string' ? hexToBytes('leafHash', leafHash, 32) : leafHash;
    if (bytes.length !== HASH_BYTES) throw new LedgerInputError('leafHash', `expected 32 bytes, got ${bytes.length}`);
    this.pushHash(0, bytes);
  }

  /** The leaf hash at `index`. */
  leafHash(index: number): Hex {
    this.checkIndex(index);
    return toHex(this.levels[0]!.bytes.subarray(index * HASH_BYTES, (index + 1) * HASH_BYTES));
  }

  private pushHash(levelIndex: number, hash: Uint8Array): void {
    this.cachedRoot = undefined;
    let k = levelIndex;
    let h = hash;
    for (;;) {
      let level = this.levels[k];
      if (level === undefined) {
        level = { bytes: new Uint8Array(Math.max(16, this.levels[k - 1]!.bytes.length >> 6) * HASH_BYTES), count: 0 };
        this.levels.push(level);
      }
      if ((level.count + 1) * HASH_BYTES > level.bytes.length) {
        const grown = new Uint8Array(level.bytes.length * 2);
        grown.set(level.bytes);
        level.bytes = grown;
      }
      const at = level.count * HASH_BYTES;
      level.bytes.set(h, at);
      level.count++;
      if ((level.count & 1) === 1) return;
      // A complete pair: the subtree of 2^(k+1) leaves above it is complete too.
      this.nodeInput.set(level.bytes.subarray(at - HASH_BYTES, at + HASH_BYTES), 1);
      h = this.keccak(this.nodeInput);
      k++;
    }
  }

  /** Hash of the complete subtree of 2^k leaves starting at leaf `start` (a multiple of 2^k). */
  private perfect(k: number, start: number): Uint8Array {
    const i = start / 2 ** k;
    return this.levels[k]!.bytes.subarray(i * HASH_BYTES, (i + 1) * HASH_BYTES);
  }

  /**
   * MTH(D[start : start + size]) for a subtree of the RFC 6962 tree: `start` is a multiple of a power
   * of two ≥ size, so the range splits into complete aligned subtrees, largest first, folded from
   * the right.
   */
  private subtreeHash(start: number, size: number): Uint8Array {
    const pieces: Uint8Array[] = [];
    let at = start;
    for (let k = Math.floor(Math.log2(size)) + 1; k >= 0; k--) {
      const piece = 2 ** k;
      if (size - (at - start) >= piece) {
        pieces.push(this.perfect(k, at));
        at += piece;
      }
    }
    let acc = pieces[pieces.length - 1]!;
    for (let i = pieces.length - 2; i >= 0; i--) {
      this.nodeInput.set(pieces[i]!, 1);
      this.nodeInput.set(acc, 33);
      acc = this.keccak(this.nodeInput);
    }
    return acc;
  }

  /** The root as bytes (the null root for an empty tree). */
  rootBytes(): Uint8Array {
    if (this.cachedRoot === undefined) {
      this.cachedRoot = this.size === 0 ? new Uint8Array(32) : Uint8Array.from(this.subtreeHash(0, this.size));
    }
    return this.cachedRoot;
  }

  /** The root, 0x00…00 for an empty tree. */
  root(): Hex {
    return toHex(this.rootBytes());
  }

  private checkIndex(index: number): void {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size) {
      throw new LedgerInputError('index', `expected an integer in [0, ${this.size - 1}], got ${String(index)}`);
    }
  }

  /** The inclusion proof of leaf `index` in the tree of all leaves appended so far. */
  proof(index: number): InclusionProof {
    this.checkIndex(index);
    const topDown: Hex[] = [];
    let lo = 0;
    let n = this.size;
    while (n > 1) {
      const k = splitPoint(n);
      if (index - lo < k) {
        topDown.push(toHex(this.subtreeHash(lo + k, n - k)));
        n = k;
      } else {
        topDown.push(toHex(this.perfect(Math.log2(k), lo)));
        lo += k;
        n -= k;
      }
    }
    return { index, size: this.size, path: topDown.reverse() };
  }
}

/** The RFC 6962 root of leaf hashes (the null root when there are none). */
export function merkleRoot(leafHashes: readonly (Uint8Array | Hex)[], options: MerkleTreeOptions = {}): Hex {
  const tree = new MerkleTreeBuilder({ ...options, expectedLeaves: leafHashes.length });
  for (const h of leafHashes) tree.appendLeafHash(h);
  return tree.root();
}

/** A tree of readings (in time order). */
export function treeOfReadings(readings: readonly MeterReading[], options: MerkleTreeOptions = {}): MerkleTreeBuilder {
  const tree = new MerkleTreeBuilder({ ...options, expectedLeaves: readings.length });
  for (const r of readings) tree.appendReading(r);
  return tree;
}

/** What an auditor trusts: the anchored root and leaf count of the interval (from the signed MeterProof). */
export interface TreeAnchor {
  root: Hex;
  count: number;
}

export type InclusionCheck =
  | { ok: true }
  | {
      ok: false;
      /** MALFORMED: not a proof at all; WRONG_SIZE: not a proof for the anchored count; MISMATCH: the path does not lead to the root. */
      reason: 'MALFORMED' | 'WRONG_SIZE' | 'MISMATCH';
      detail: string;
    };

/**
 * Verifies that `leafHash` is leaf `proof.index` of the tree anchored as `anchor` (RFC 9162
 * §2.1.3.2). The proof's size must equal the anchored count: the algorithm alone does not bind the
 * size (leaf 0's proof in a tree of 6 leaves also verifies as one of 7), the signed count does.
 * Paths of the wrong length for (index, size) are rejected.
 */
export function verifyInclusion(leafHash: Uint8Array | Hex, proof: InclusionProof, anchor: TreeAnchor, keccak: Keccak256 = keccak_256): InclusionCheck {
  const malformed = (detail: string): InclusionCheck => ({ ok: false, reason: 'MALFORMED', detail });
  if (typeof proof !== 'object' || proof === null) return malformed('proof: expected {index, size, path}');
  const { index, size, path } = proof;
  const countProblem = fieldProblem('uint32', size);
  if (countProblem !== undefined || size < 1) return malformed(`size: ${countProblem ?? 'a proof needs at least one leaf'}`);
  const indexProblem = fieldProblem('uint32', index);
  if (indexProblem !== undefined) return malformed(`index: ${indexProblem}`);
  if (index >= size) return malformed(`index: ${index} is not below size ${size}`);
  if (!Array.isArray(path)) return malformed('path: expected an array of bytes32');
  const expectedLength = inclusionPathLength(index, size);
  if (path.length !== expectedLength) return malformed(`path: ${path.length} hashes, a proof of leaf ${index} of ${size} has ${expectedLength}`);
  for (let i = 0; i < path.length; i++) if (!isBytes32(path[i])) return malformed(`path[${i}]: expected bytes32 (0x + 64 hex)`);
  if (!isBytes32(anchor.root)) return malformed('anchor.root: expected bytes32 (0x + 64 hex)');
  let leaf: Uint8Array;
  if (typeof leafHash === 'string') {
    if (!isBytes32(leafHash)) return malformed('leafHash: expected bytes32 (0x + 64 hex)');
    leaf = hexToBytes('leafHash', leafHash, 32);
  } else {
    if (leafHash.length !== HASH_BYTES) return malformed(`leafHash: expected 32 bytes, got ${leafHash.length}`);
    leaf = leafHash;
  }
  if (size !== anchor.count) return { ok: false, reason: 'WRONG_SIZE', detail: `size: the proof is for ${size} leaves, the anchor has ${anchor.count}` };

  // RFC 9162 §2.1.3.2.
  const input = new Uint8Array(65);
  input[0] = 1;
  let fn = index;
  let sn = size - 1;
  let r = leaf;
  for (const p of path) {
    if (sn === 0) return { ok: false, reason: 'MISMATCH', detail: 'path: longer than the tree is high' };
    const sibling = hexToBytes('path', p, 32);
    if (fn % 2 === 1 || fn === sn) {
      input.set(sibling, 1);
      input.set(r, 33);
      r = keccak(input);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      input.set(r, 1);
      input.set(sibling, 33);
      r = keccak(input);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  if (sn !== 0) return { ok: false, reason: 'MISMATCH', detail: 'path: shorter than the tree is high' };
  if (toHex(r) !== anchor.root.toLowerCase()) return { ok: false, reason: 'MISMATCH', detail: `root: the path leads to ${toHex(r)}, not to ${anchor.root.toLowerCase()}` };
  return { ok: true };
}

/** `verifyInclusion` of a reading (hashed here). A reading with a field out of its type is MALFORMED. */
export function verifyReadingInclusion(reading: MeterReading, proof: InclusionProof, anchor: TreeAnchor): InclusionCheck {
  let leaf: Hex;
  try {
    leaf = readingLeafHash(reading);
  } catch (e) {
    if (e instanceof LedgerInputError) return { ok: false, reason: 'MALFORMED', detail: e.message };
    throw e;
  }
  return verifyInclusion(leaf, proof, anchor);
}

/** The counters of a reading that the interval energy needs. */
export type CounterReading = Pick<MeterReading, 'ts' | 'importWh' | 'exportWh'>;

/** A settlement interval `[intervalStart, intervalEnd)`, unix ms. */
export interface Interval {
  intervalStart: number;
  intervalEnd: number;
}

/** Energy imported and exported within an interval. */
export interface IntervalEnergy {
  importWh: number;
  exportWh: number;
}

function counterDelta(last: number, base: number): number {
  const d = last - base;
  return d > 0 ? d : 0;
}

/**
 * PROTOCOL.md §5: importWh = the import counter of the last reading before `intervalEnd` minus that
 * of the last reading before `intervalStart` (the interval's first reading when there is none
 * before); 0 when the interval has no reading or the difference is negative (a counter reset).
 * Likewise exportWh. `readings` may hold readings outside the interval and need not be sorted;
 * among readings with the same `ts` the later in the array counts as later.
 */
export function intervalEnergy(readings: readonly CounterReading[], interval: Interval): IntervalEnergy {
  const { intervalStart, intervalEnd } = interval;
  let lastBefore: CounterReading | undefined;
  let firstIn: CounterReading | undefined;
  let lastIn: CounterReading | undefined;
  for (const r of readings) {
    if (r.ts < intervalStart) {
      if (lastBefore === undefined || r.ts >= lastBefore.ts) lastBefore = r;
    } else if (r.ts < intervalEnd) {
      if (firstIn === undefined || r.ts < firstIn.ts) firstIn = r;
      if (lastIn === undefined || r.ts >= lastIn.ts) lastIn = r;
    }
  }
  if (lastIn === undefined || firstIn === undefined) return { importWh: 0, exportWh: 0 };
  const base = lastBefore ?? firstIn;
  return { importWh: counterDelta(lastIn.importWh, base.importWh), exportWh: counterDelta(lastIn.exportWh, base.exportWh) };
}

function checkInterval(interval: Interval): void {
  assertField('intervalStart', 'uint64', interval.intervalStart);
  assertField('intervalEnd', 'uint64', interval.intervalEnd);
  const lengthMs = interval.intervalEnd - interval.intervalStart;
  if (lengthMs <= 0) throw new LedgerInputError('intervalEnd', `must be after intervalStart (${interval.intervalStart}), got ${interval.intervalEnd}`);
  if (interval.intervalStart % lengthMs !== 0) {
    throw new LedgerInputError('intervalStart', `${interval.intervalStart} is not a multiple of the interval length ${lengthMs} ms (intervals are aligned to the unix epoch)`);
  }
}

export interface IntervalProofOptions extends Interval, MerkleTreeOptions {
  gateway: Address;
  /** The last reading before `intervalStart`, if any: the base of the interval's energy. */
  previous?: CounterReading;
}

/**
 * One settlement interval's tree, fed one reading at a time in time order, and its MeterProof.
 * Throws `LedgerInputError` for a reading outside the interval, of another gateway, earlier than the
 * one before it, or with a field out of its type.
 */
export class IntervalProofBuilder {
  readonly gateway: Address;
  readonly intervalStart: number;
  readonly intervalEnd: number;
  readonly tree: MerkleTreeBuilder;
  private readonly previous: CounterReading | undefined;
  private first: CounterReading | undefined;
  private last: CounterReading | undefined;

  constructor(options: IntervalProofOptions) {
    assertField('gateway', 'address', options.gateway);
    checkInterval(options);
    if (options.previous !== undefined && !(options.previous.ts < options.intervalStart)) {
      throw new LedgerInputError('previous.ts', `the previous reading must be before intervalStart ${options.intervalStart}, got ${options.previous.ts}`);
    }
    this.gateway = options.gateway.toLowerCase() as Address;
    this.intervalStart = options.intervalStart;
    this.intervalEnd = options.intervalEnd;
    this.previous = options.previous;
    this.tree = new MerkleTreeBuilder(options);
  }

  /** Number of readings added. */
  get count(): number {
    return this.tree.size;
  }

  add(reading: MeterReading): void {
    if (typeof reading.gateway !== 'string' || reading.gateway.toLowerCase() !== this.gateway) {
      throw new LedgerInputError('reading.gateway', `expected ${this.gateway}, got ${String(reading.gateway)}`);
    }
    if (!(reading.ts >= this.intervalStart && reading.ts < this.intervalEnd)) {
      throw new LedgerInputError('reading.ts', `${reading.ts} is outside the interval [${this.intervalStart}, ${this.intervalEnd})`);
    }
    if (this.last !== undefined && reading.ts < this.last.ts) {
      throw new LedgerInputError('reading.ts', `${reading.ts} is before the previous reading's ${this.last.ts} (leaves are in time order)`);
    }
    this.tree.appendReading(reading);
    const counters = { ts: reading.ts, importWh: reading.importWh, exportWh: reading.exportWh };
    this.first ??= counters;
    this.last = counters;
  }

  /** The interval's energy so far (PROTOCOL.md §5). */
  energy(): IntervalEnergy {
    if (this.last === undefined || this.first === undefined) return { importWh: 0, exportWh: 0 };
    const base = this.previous ?? this.first;
    return { importWh: counterDelta(this.last.importWh, base.importWh), exportWh: counterDelta(this.last.exportWh, base.exportWh) };
  }

  /** The unsigned MeterProof message of the readings added so far. */
  meterProof(): MeterProof {
    return {
      gateway: this.gateway,
      intervalStart: this.intervalStart,
      intervalEnd: this.intervalEnd,
      count: this.count,
      root: this.tree.root(),
      ...this.energy(),
    };
  }

  /** Inclusion proof of reading `index` (0 = the interval's first reading). */
  inclusionProof(index: number): InclusionProof {
    return this.tree.proof(index);
  }
}

/**
 * The MeterProof of one interval from a list of readings: those with `ts` in `[intervalStart,
 * intervalEnd)` become the leaves (they must be in time order), the last one before the interval is
 * the energy base. Returns the unsigned message and the tree (for inclusion proofs).
 */
export function buildMeterProof(
  gateway: Address,
  interval: Interval,
  readings: readonly MeterReading[],
  options: MerkleTreeOptions = {},
): { message: MeterProof; tree: MerkleTreeBuilder } {
  let previous: CounterReading | undefined;
  for (const r of readings) if (r.ts < interval.intervalStart && (previous === undefined || r.ts >= previous.ts)) previous = r;
  const builder = new IntervalProofBuilder({ ...options, gateway, ...interval, ...(previous ? { previous } : {}) });
  for (const r of readings) if (r.ts >= interval.intervalStart && r.ts < interval.intervalEnd) builder.add(r);
  return { message: builder.meterProof(), tree: builder.tree };
}
