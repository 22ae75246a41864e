/**
 * Property test, part 2: the same generator weighted towards content faults (untrusted, wrong
 * gateway, expired, replayed, clock skew, unsupported signal, out of range, unknown order, and
 * combinations of them, with address case mixes and number spellings that change nothing), and a
 * long stateful stream in which state accumulates: fresh orders, modifications and CANCELs of live
 * orders, re-deliveries of everything sent before (a redelivered order that passed checks 1–6 is a
 * REPLAY, any other gets its first reason again), stale sequences and garbage.
 */
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import type { DispatchOrder } from '../../ledger-client/eip712.js';
import { buildBaseline, mutationArb, neutralArb, NOW, runCase, signPool, type CaseOutcome } from './property-support.js';
import { AGGREGATOR, AGGREGATOR_2, makeSide, orderMessage, signed } from './test-support.js';

const RUNS = Number(process.env['FLEXGATE_PROPERTY_RUNS'] ?? 10_000);
const STREAM_STEPS = Number(process.env['FLEXGATE_PROPERTY_STREAM'] ?? 1500);
const POOL = 600;

describe('property: content faults and their order', () => {
  const baseline = buildBaseline();
  afterAll(() => baseline.side.close());

  it(`gives each of ${RUNS} orders the reason of the first failing check`, () => {
    const started = performance.now();
    const pool = signPool(POOL, 100_000);
    const outcomes: CaseOutcome[] = [];
    const mostlyClean = fc.oneof({ weight: 6, arbitrary: fc.constant({ kind: 'none' } as const) }, { weight: 1, arbitrary: mutationArb });
    fc.assert(
      fc.property(fc.nat({ max: POOL - 1 }), mostlyClean, neutralArb, (index, mutation, neutral) => {
        outcomes.push(runCase(baseline, pool[index]!, mutation, neutral));
      }),
      { numRuns: RUNS },
    );
    const byReason = new Map<string, number>();
    for (const o of outcomes) {
      const k = o.expected.ok ? `accepted ${o.expected.kind}` : `reason ${o.expected.reason}`;
      byReason.set(k, (byReason.get(k) ?? 0) + 1);
    }
    process.stderr.write(
      `property (content): ${outcomes.length} orders in ${((performance.now() - started) / 1000).toFixed(1)} s; ${[...byReason].sort().map(([k, n]) => `${k}: ${n}`).join(', ')}\n`,
    );
    if (RUNS >= 5000) {
      for (let reason = 1; reason <= 10; reason++) expect(byReason.get(`reason ${reason}`) ?? 0, `reason ${reason}`).toBeGreaterThan(40);
      for (const kind of ['new', 'modification', 'cancel']) expect(byReason.get(`accepted ${kind}`) ?? 0, kind).toBeGreaterThan(20);
    }
  }, 300_000);
});

describe('property: a stateful stream of orders, redeliveries and garbage', () => {
  it(`keeps replay protection and never lets a rejected order reach the dispatcher (${STREAM_STEPS} steps)`, async () => {
    const side = makeSide({ nowMs: NOW, startStatuses: false });
    const started = performance.now();
    let seed = 0x1234567;
    const rand = () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 4294967296;
    };
    const int = (min: number, max: number) => min + Math.floor(rand() * (max - min + 1));
    const sequence = new Map<string, number>([
      [AGGREGATOR.address, 0],
      [AGGREGATOR_2.address, 0],
    ]);
    const keys = { [AGGREGATOR.address]: AGGREGATOR.privateKey, [AGGREGATOR_2.address]: AGGREGATOR_2.privateKey };
    /** What was sent, its first verdict, and from when it is EXPIRED (validUntil passed or window ended). */
    const sent: { raw: Uint8Array; first: number | 'ok'; expiredFromMs: number }[] = [];
    const acceptedKeys = new Set<string>();
    const counts = new Map<string, number>();
    let versions = 0;
    for (let step = 0; step < STREAM_STEPS; step++) {
      side.clock.advance(100);
      side.book.tick(); // orders whose end has come end now (submit would end them first)
      const now = side.clock.now();
      const aggregator = rand() < 0.5 ? AGGREGATOR.address : AGGREGATOR_2.address;
      const nextSeq = () => {
        const s = sequence.get(aggregator)! + int(1, 5);
        sequence.set(aggregator, s);
        return s;
      };
      const fresh = (patch: Partial<DispatchOrder>): DispatchOrder =>
        orderMessage(now, {
          aggregator,
          sequence: nextSeq(),
          validUntil: now + 10 * 60_000,
          start: now + int(0, 60_000),
          durationMs: int(1000, 120_000),
          signal: int(1, 4),
          valueW: int(0, 1000),
          ...patch,
        });
      const live = side.book.liveOrders().filter((o) => o.aggregator === aggregator);
      const roll = rand();
      let kind: string;
      let raw: Uint8Array;
      let message: DispatchOrder | undefined;
      let expected: number | 'ok' | 'new' | 'modification' | 'cancel';
      if (roll < 0.35 || (roll < 0.5 && live.length === 0)) {
        kind = 'fresh';
        message = fresh({});
        raw = Buffer.from(signed(message, keys[aggregator]));
        expected = 'new';
      } else if (roll < 0.5) {
        const target = live[int(0, live.length - 1)]!;
        const isCancel = rand() < 0.3;
        kind = isCancel ? 'cancel' : 'modify';
        message = fresh({ orderId: target.orderId, modification: target.modification + int(1, 3), ...(isCancel ? { signal: 0 } : {}) });
        raw = Buffer.from(signed(message, keys[aggregator]));
        expected = isCancel ? 'cancel' : 'modification';
      } else if (roll < 0.75 && sent.length > 0) {
        kind = 'redeliver';
        const previous = sent[int(0, sent.length - 1)]!;
        raw = previous.raw;
        // checks 1–4 do not depend on time or state; then EXPIRED comes before REPLAY
        expected = previous.first !== 'ok' && previous.first <= 4 ? previous.first : now >= previous.expiredFromMs ? 5 : 6;
      } else if (roll < 0.87) {
        kind = 'stale';
        const last = sequence.get(aggregator)!;
        message = fresh({ sequence: int(Math.max(0, last - 20), last) });
        raw = Buffer.from(signed(message, keys[aggregator]));
        sequence.set(aggregator, last);
        expected = last === 0 ? 'new' : 6;
      } else {
        kind = 'garbage';
        raw = Uint8Array.from({ length: int(0, 200) }, () => int(0, 255));
        expected = 1;
      }
      const callsBefore = side.execution.calls;
      const result = side.book.submit(raw);
      expect(result.error).toBeUndefined();
      const v = result.verdict;
      const got = v.ok ? v.kind : v.reason;
      expect(got, `step ${step} (${kind}): ${v.ok ? '' : v.detail}`).toBe(expected);
      counts.set(kind, (counts.get(kind) ?? 0) + 1);
      if (v.ok && v.kind !== 'cancel') {
        acceptedKeys.add(`${v.order.orderId}:${v.order.modification}`);
        versions++;
      }
      if (!v.ok) expect(side.execution.calls).toBe(callsBefore);
      if (kind !== 'redeliver') {
        const windowEndMs = message && message.signal !== 0 && message.start !== 0 ? message.start + message.durationMs : Infinity;
        sent.push({ raw, first: v.ok ? 'ok' : v.reason, expiredFromMs: message ? Math.min(message.validUntil + 1, windowEndMs) : Infinity });
      }
      for (const o of side.book.activeOrders()) expect(acceptedKeys.has(o.key)).toBe(true);
    }
    // every stored version is one that was accepted, and nothing else was stored
    const stored = side.dispatch.recentOrders(1_000_000).map((o) => o.key);
    expect(stored).toHaveLength(versions);
    for (const key of stored) expect(acceptedKeys.has(key)).toBe(true);
    process.stderr.write(
      `property (stream): ${STREAM_STEPS} steps in ${((performance.now() - started) / 1000).toFixed(1)} s; ${[...counts].map(([k, n]) => `${k}: ${n}`).join(', ')}; ${versions} versions accepted\n`,
    );
    await side.close();
  }, 120_000);
});
