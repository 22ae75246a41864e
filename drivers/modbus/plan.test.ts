import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { joinsInside, planReads, sliceRanges, type ReadBlock } from './plan.js';
import type { RegisterRange } from './types.js';

const rangeArb = (maxAddress: number, maxCount: number) =>
  fc.record({ address: fc.integer({ min: 0, max: maxAddress }), count: fc.integer({ min: 1, max: maxCount }) });

/** What a device at those blocks would answer: every register holds its own address. */
function fakeRead(blocks: readonly ReadBlock[]): Uint16Array[] {
  return blocks.map((b) => Uint16Array.from({ length: b.count }, (_, i) => (b.address + i) & 0xffff));
}

function requestedSet(ranges: readonly RegisterRange[]): Set<number> {
  const s = new Set<number>();
  for (const r of ranges) for (let a = r.address; a < r.address + r.count; a++) s.add(a);
  return s;
}

/** Reference optimum by dynamic programming over the requested registers (small inputs only). */
function optimalCount(ranges: readonly RegisterRange[], maxRegisters: number, forbidden: readonly number[], maxGap: number): number {
  const pts = [...requestedSet(ranges)].sort((a, b) => a - b);
  const forb = new Set(forbidden);
  const n = pts.length;
  const f = new Array<number>(n + 1).fill(Infinity);
  f[n] = 0;
  for (let i = n - 1; i >= 0; i--) {
    for (let j = i + 1; j <= n; j++) {
      const last = pts[j - 1]!;
      if (last - pts[i]! + 1 > maxRegisters) break;
      if (j - 1 > i) {
        const prev = pts[j - 2]!;
        if (last - prev - 1 > maxGap) break;
        let crosses = false;
        for (let b = prev + 1; b <= last; b++) if (forb.has(b)) crosses = true;
        if (crosses) break;
      }
      f[i] = Math.min(f[i]!, 1 + f[j]!);
    }
  }
  return f[0]!;
}

describe('planReads', () => {
  it('covers every requested register in the minimum number of legal transactions, and maps answers back exactly', () => {
    fc.assert(
      fc.property(
        fc.array(rangeArb(400, 60), { minLength: 1, maxLength: 15 }),
        fc.oneof(fc.constant(125), fc.integer({ min: 1, max: 60 })),
        fc.array(fc.integer({ min: 1, max: 460 }), { maxLength: 6 }),
        // small gaps, and gaps as wide as a read (SunSpec bridges whole models)
        fc.oneof(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 130 })),
        (ranges, maxRegisters, forbidden, maxGapRegisters) => {
          const blocks = planReads(ranges, { maxRegisters, forbidden, maxGapRegisters });
          const wanted = requestedSet(ranges);
          const read = new Map<number, number>();
          for (const b of blocks) {
            expect(b.count).toBeGreaterThanOrEqual(1);
            expect(b.count).toBeLessThanOrEqual(maxRegisters);
            // never crosses a forbidden boundary
            for (const f of forbidden) expect(b.address < f && f < b.address + b.count).toBe(false);
            // starts and ends on requested registers, bridges only small gaps
            expect(wanted.has(b.address)).toBe(true);
            expect(wanted.has(b.address + b.count - 1)).toBe(true);
            let gap = 0;
            for (let a = b.address; a < b.address + b.count; a++) {
              read.set(a, (read.get(a) ?? 0) + 1);
              gap = wanted.has(a) ? 0 : gap + 1;
              expect(gap).toBeLessThanOrEqual(maxGapRegisters);
            }
          }
          for (const a of wanted) expect(read.get(a)).toBe(1);
          for (const [, n] of read) expect(n).toBe(1); // disjoint
          expect(blocks.length).toBe(optimalCount(ranges, maxRegisters, forbidden, maxGapRegisters));
          const sliced = sliceRanges(ranges, blocks, fakeRead(blocks));
          expect(sliced.length).toBe(ranges.length);
          ranges.forEach((r, i) => {
            expect(Array.from(sliced[i]!)).toEqual(Array.from({ length: r.count }, (_, k) => r.address + k));
          });
        },
      ),
      { numRuns: 400 },
    );
  });

  it('a join across a gap can be forbidden like an adjacent one: the next plan splits there and stays minimal', () => {
    fc.assert(
      fc.property(
        fc.array(rangeArb(400, 30), { minLength: 2, maxLength: 12 }),
        fc.integer({ min: 0, max: 130 }),
        fc.nat(),
        (ranges, maxGapRegisters, pick) => {
          const forbidden: number[] = [];
          let blocks = planReads(ranges, { maxGapRegisters });
          // What readRanges does on exception 2: forbid a join inside a merged block, re-plan, until
          // no block holds a join (each transaction then reads only one group of ranges).
          for (let round = 0; ; round++) {
            expect(round).toBeLessThanOrEqual(ranges.length);
            const joins = blocks.flatMap((b) => joinsInside(b, ranges));
            if (joins.length === 0) break;
            const join = joins[pick % joins.length]!;
            expect(forbidden).not.toContain(join);
            forbidden.push(join);
            blocks = planReads(ranges, { maxGapRegisters, forbidden });
            for (const b of blocks) for (const f of forbidden) expect(b.address < f && f < b.address + b.count).toBe(false);
            expect(blocks.length).toBe(optimalCount(ranges, 125, forbidden, maxGapRegisters));
          }
          const sliced = sliceRanges(ranges, blocks, fakeRead(blocks));
          ranges.forEach((r, i) => expect(Array.from(sliced[i]!)).toEqual(Array.from({ length: r.count }, (_, k) => r.address + k)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('reads one contiguous run, however it is cut into requests, in ceil(len/125) transactions', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 60_000 }),
        fc.array(fc.integer({ min: 1, max: 140 }), { minLength: 1, maxLength: 40 }),
        fc.boolean(),
        (start, sizes, shuffle) => {
          const ranges: RegisterRange[] = [];
          let a = start;
          for (const s of sizes) {
            if (a + s > 0x10000) break;
            ranges.push({ address: a, count: s });
            a += s;
          }
          fc.pre(ranges.length > 0);
          if (shuffle) ranges.reverse();
          const len = a - start;
          const blocks = planReads(ranges);
          expect(blocks.length).toBe(Math.ceil(len / 125));
          expect(blocks.every((b) => b.count <= 125)).toBe(true);
          const sliced = sliceRanges(ranges, blocks, fakeRead(blocks));
          ranges.forEach((r, i) => expect(sliced[i]![0]).toBe(r.address & 0xffff));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('keeps a two-register value in one transaction when that costs nothing', () => {
    // 0..123 single registers, a 32-bit value at 124..125, more singles up to 199
    const ranges: RegisterRange[] = [];
    for (let a = 0; a < 124; a++) ranges.push({ address: a, count: 1 });
    ranges.push({ address: 124, count: 2 });
    for (let a = 126; a < 200; a++) ranges.push({ address: a, count: 1 });
    expect(planReads(ranges)).toEqual([
      { address: 0, count: 124 },
      { address: 124, count: 76 },
    ]);
  });

  it('splits at a forbidden join and does not merge across gaps by default', () => {
    const ranges = [
      { address: 0, count: 10 },
      { address: 10, count: 10 },
      { address: 25, count: 5 },
    ];
    expect(planReads(ranges)).toEqual([
      { address: 0, count: 20 },
      { address: 25, count: 5 },
    ]);
    expect(planReads(ranges, { forbidden: [10] })).toEqual([
      { address: 0, count: 10 },
      { address: 10, count: 10 },
      { address: 25, count: 5 },
    ]);
    expect(planReads(ranges, { maxGapRegisters: 5 })).toEqual([{ address: 0, count: 30 }]);
    expect(planReads(ranges, { maxGapRegisters: 5, forbidden: [25] })).toEqual([
      { address: 0, count: 20 },
      { address: 25, count: 5 },
    ]);
    // A join across a gap is the start of the range after the gap.
    expect(planReads(ranges, { maxGapRegisters: 5, forbidden: [21] })).toEqual(planReads(ranges, { maxGapRegisters: 5, forbidden: [25] }));
    expect(joinsInside({ address: 0, count: 30 }, ranges)).toEqual([10, 25]);
    expect(joinsInside({ address: 0, count: 10 }, ranges)).toEqual([]);
  });

  it('rejects ranges outside the register space', () => {
    expect(() => planReads([{ address: 65535, count: 2 }])).toThrow(RangeError);
    expect(() => planReads([{ address: 0, count: 0 }])).toThrow(RangeError);
    expect(planReads([])).toEqual([]);
  });
});
