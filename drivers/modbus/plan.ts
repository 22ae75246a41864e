/**
 * Read coalescing: which transactions read a set of register ranges. Pure functions, no I/O.
 *
 * Terms used below:
 * - a *boundary* `b` is the line between register `b - 1` and register `b`; a transaction crosses
 *   it when it reads both;
 * - a *group* is a set of requested ranges that overlap (share registers); a cut inside a group
 *   would tear a requested value across two transactions, so the planner avoids it when it can
 *   without adding a transaction;
 * - a *join* is the boundary at the start of a group that follows another group in the same
 *   transaction (adjacent, or across a gap): the place where a device may reject the merged read.
 */
import type { RegisterRange } from './types.js';

/** One read transaction. */
export interface ReadBlock {
  address: number;
  count: number;
}

export interface PlanOptions {
  /** Largest transaction; default 125 (FC3/FC4 limit). */
  maxRegisters?: number;
  /** Boundaries no transaction may cross (joins the device rejected before). */
  forbidden?: Iterable<number>;
  /** Read across gaps of at most this many unrequested registers when it saves a transaction;
   * default 0 (only adjacent or overlapping ranges are merged). */
  maxGapRegisters?: number;
}

export const MAX_READ_REGISTERS = 125;
export const REGISTER_SPACE = 0x10000;

interface Interval {
  start: number;
  end: number; // exclusive
}

function validateRange(r: RegisterRange, i: number): void {
  if (!Number.isInteger(r.address) || !Number.isInteger(r.count) || r.address < 0 || r.count < 1 || r.address + r.count > REGISTER_SPACE) {
    throw new RangeError(`register range ${i} (address ${r.address}, count ${r.count}) is outside 0..65535 or empty`);
  }
}

/** Sorted groups of overlapping requested ranges (adjacent ranges stay separate groups). */
function groupsOf(ranges: readonly RegisterRange[]): Interval[] {
  const sorted = ranges
    .map((r): Interval => ({ start: r.address, end: r.address + r.count }))
    .sort((a, b) => a.start - b.start || a.end - b.end);
  const groups: Interval[] = [];
  for (const r of sorted) {
    const last = groups[groups.length - 1];
    if (last !== undefined && r.start < last.end) last.end = Math.max(last.end, r.end);
    else groups.push({ ...r });
  }
  return groups;
}

/** The group holding boundary `x` strictly inside it (a cut at `x` would tear it), if any. */
function groupAround(groups: readonly Interval[], x: number): Interval | undefined {
  let lo = 0;
  let hi = groups.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const g = groups[mid]!;
    if (x <= g.start) hi = mid - 1;
    else if (x >= g.end) lo = mid + 1;
    else return g;
  }
  return undefined;
}

/**
 * Plans the fewest read transactions (each ≤ `maxRegisters`) covering every requested register,
 * none crossing a forbidden boundary. Within those constraints a cut is placed at a group's start
 * rather than inside it whenever that does not cost an extra transaction, so multi-register values
 * are read in one transaction where possible. Blocks are returned sorted by address and disjoint.
 */
export function planReads(ranges: readonly RegisterRange[], options: PlanOptions = {}): ReadBlock[] {
  const maxRegisters = options.maxRegisters ?? MAX_READ_REGISTERS;
  const maxGap = options.maxGapRegisters ?? 0;
  if (!Number.isInteger(maxRegisters) || maxRegisters < 1) throw new RangeError(`maxRegisters must be a positive integer, got ${maxRegisters}`);
  if (!Number.isInteger(maxGap) || maxGap < 0) throw new RangeError(`maxGapRegisters must be a non-negative integer, got ${maxGap}`);
  ranges.forEach(validateRange);
  if (ranges.length === 0) return [];

  const forbidden = [...new Set(options.forbidden ?? [])].sort((a, b) => a - b);
  const groups = groupsOf(ranges);

  // Pieces: requested registers (union of groups, adjacency merged) cut at every forbidden boundary.
  const pieces: Interval[] = [];
  let fi = 0;
  for (const g of groups) {
    const last = pieces[pieces.length - 1];
    let start = g.start;
    if (last !== undefined && last.end === g.start && !isForbiddenIn(forbidden, g.start, g.start)) {
      start = last.start;
      pieces.pop();
    }
    while (fi < forbidden.length && forbidden[fi]! <= start) fi++;
    let cursor = start;
    let k = fi;
    while (k < forbidden.length && forbidden[k]! < g.end) {
      pieces.push({ start: cursor, end: forbidden[k]! });
      cursor = forbidden[k]!;
      k++;
    }
    pieces.push({ start: cursor, end: g.end });
  }

  // Segments: runs of pieces a transaction may span (small gaps, no forbidden boundary).
  const blocks: ReadBlock[] = [];
  let segment: Interval[] = [];
  for (const p of pieces) {
    const prev = segment[segment.length - 1];
    if (prev !== undefined && (p.start - prev.end > maxGap || isForbiddenIn(forbidden, prev.end, p.start))) {
      planSegment(segment, groups, maxRegisters, blocks);
      segment = [];
    }
    segment.push(p);
  }
  if (segment.length > 0) planSegment(segment, groups, maxRegisters, blocks);
  return blocks;
}

/** Is any forbidden boundary in [from, to]? */
function isForbiddenIn(sortedForbidden: readonly number[], from: number, to: number): boolean {
  let lo = 0;
  let hi = sortedForbidden.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (sortedForbidden[mid]! < from) lo = mid + 1;
    else hi = mid;
  }
  return lo < sortedForbidden.length && sortedForbidden[lo]! <= to;
}

/** Greedy cover of one segment (optimal: covering points with windows), once plain and once with
 * cuts moved back to group starts; the aligned plan is used when it needs no more transactions. */
function planSegment(pieces: readonly Interval[], groups: readonly Interval[], maxRegisters: number, out: ReadBlock[]): void {
  const plain = greedy(pieces, groups, maxRegisters, false);
  const aligned = greedy(pieces, groups, maxRegisters, true);
  out.push(...(aligned.length <= plain.length ? aligned : plain));
}

function greedy(pieces: readonly Interval[], groups: readonly Interval[], maxRegisters: number, align: boolean): ReadBlock[] {
  const blocks: ReadBlock[] = [];
  const segEnd = pieces[pieces.length - 1]!.end;
  let pi = 0; // index of the piece holding `pos`
  let pos = pieces[0]!.start;
  while (true) {
    let x = Math.min(pos + maxRegisters, segEnd);
    if (align) {
      const g = groupAround(groups, x);
      if (g !== undefined && g.start > pos) x = g.start;
    }
    // Trim x back to the end of requested registers (never read a trailing gap).
    let pj = pi;
    while (pj + 1 < pieces.length && pieces[pj + 1]!.start < x) pj++;
    const end = Math.min(x, pieces[pj]!.end);
    blocks.push({ address: pos, count: end - pos });
    if (end < pieces[pj]!.end) {
      pi = pj;
      pos = end;
    } else if (pj + 1 < pieces.length) {
      pi = pj + 1;
      pos = pieces[pi]!.start;
    } else {
      return blocks;
    }
  }
}

/**
 * The joins inside `block`: the start of every group (of `ranges`) that begins inside the block
 * after another group. Forbidding one of them splits the block there on the next plan.
 */
export function joinsInside(block: ReadBlock, ranges: readonly RegisterRange[]): number[] {
  const end = block.address + block.count;
  return groupsOf(ranges)
    .filter((g) => g.start > block.address && g.start < end)
    .map((g) => g.start);
}

/**
 * Maps transaction results back to the requested ranges: one array per range, in request order.
 * `data[i]` is the answer to `blocks[i]`. Throws when a requested register is not covered.
 */
export function sliceRanges(ranges: readonly RegisterRange[], blocks: readonly ReadBlock[], data: readonly Uint16Array[]): Uint16Array[] {
  if (data.length !== blocks.length) throw new Error(`sliceRanges: ${blocks.length} blocks but ${data.length} answers`);
  const order = blocks.map((_, i) => i).sort((a, b) => blocks[a]!.address - blocks[b]!.address);
  return ranges.map((r) => {
    const out = new Uint16Array(r.count);
    const rEnd = r.address + r.count;
    let filled = 0;
    // first block (in address order) whose end is past r.address
    let lo = 0;
    let hi = order.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const b = blocks[order[mid]!]!;
      if (b.address + b.count <= r.address) lo = mid + 1;
      else hi = mid;
    }
    for (let k = lo; k < order.length; k++) {
      const bi = order[k]!;
      const b = blocks[bi]!;
      if (b.address >= rEnd) break;
      const d = data[bi]!;
      if (d.length !== b.count) throw new Error(`sliceRanges: block at ${b.address} has ${b.count} registers but ${d.length} values`);
      const from = Math.max(r.address, b.address);
      const to = Math.min(rEnd, b.address + b.count);
      out.set(d.subarray(from - b.address, to - b.address), from - r.address);
      filled += to - from;
    }
    if (filled !== r.count) throw new Error(`sliceRanges: range at ${r.address} (${r.count}) not covered by the plan`);
    return out;
  });
}
