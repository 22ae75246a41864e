/**
 * Property test, part 1 (PROTOCOL.md §1–3; DESIGN.md: bad input never crashes the agent and never
 * moves a device): tens of thousands of orders, malformed (not JSON, not UTF-8, over 16 KiB, keys,
 * missing and extra fields, wrong types, floats, strings for numbers, values beyond their type, hex
 * of the wrong length), with bad signatures (high s, v ∉ {27, 28}, r/s out of range, tampered, signed
 * by another key or for another chain) and content faults, each through the whole order book: each
 * gets the reason of the first check its injected faults fail, and none reaches the dispatcher.
 * Part 2 (property-content.test.ts) weights the content faults.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { buildBaseline, mutationArb, neutralArb, runCase, signPool, type CaseOutcome } from './property-support.js';

const RUNS = Number(process.env['FLEXGATE_PROPERTY_RUNS'] ?? 14_000);
const POOL = 600;

describe('property: malformed, tampered and wrongly signed orders', () => {
  const baseline = buildBaseline();
  afterAll(() => baseline.side.close());

  it(`gives each of ${RUNS} orders the reason of the first failing check, without a crash or a device moved`, () => {
    const started = performance.now();
    const pool = signPool(POOL, 1);
    const signedMs = performance.now() - started;
    const outcomes: CaseOutcome[] = [];
    fc.assert(
      fc.property(fc.nat({ max: POOL - 1 }), mutationArb, neutralArb, (index, mutation, neutral) => {
        outcomes.push(runCase(baseline, pool[index]!, mutation, neutral));
      }),
      { numRuns: RUNS },
    );
    const byReason = new Map<string, number>();
    const byMutation = new Map<string, number>();
    for (const o of outcomes) {
      const k = o.expected.ok ? `accepted ${o.expected.kind}` : `reason ${o.expected.reason}`;
      byReason.set(k, (byReason.get(k) ?? 0) + 1);
      byMutation.set(o.mutation, (byMutation.get(o.mutation) ?? 0) + 1);
    }
    const totalMs = performance.now() - started;
    process.stderr.write(
      `property (envelope): ${outcomes.length} orders in ${(totalMs / 1000).toFixed(1)} s (pool of ${POOL} signed in ${(signedMs / 1000).toFixed(1)} s); ` +
        `${[...byReason].sort().map(([k, n]) => `${k}: ${n}`).join(', ')}\n`,
    );
    // the generator reaches every reason of the table and acceptance, and every mutation kind
    if (RUNS >= 5000) {
      for (let reason = 1; reason <= 10; reason++) expect(byReason.get(`reason ${reason}`) ?? 0, `reason ${reason}`).toBeGreaterThan(20);
      expect(byReason.get('accepted new') ?? 0).toBeGreaterThan(20);
      expect(byMutation.size).toBe(22); // every kind of Mutation, 'none' included
    }
  }, 300_000);
});
