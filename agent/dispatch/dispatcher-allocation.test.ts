import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { allocate, type ContinuousUnit, type DiscreteUnit, type Unit } from './dispatcher-allocation.js';
import { capacityW } from './dispatcher.js';
import { combineTargets, departureMinPowerW, meterBeforeBaseline, GridHistory, rampW } from './dispatcher-targets.js';
import { SITE_SIGNALS, type ActiveOrder } from './types.js';

const battery = (minFlexW: number, maxFlexW: number, flexNowW = 0): ContinuousUnit => ({ id: 'battery', kind: 'battery', discrete: false, frozen: false, flexNowW, minFlexW, maxFlexW });
const ev = (naturalW: number): ContinuousUnit => ({
  id: 'ev',
  kind: 'ev',
  discrete: false,
  frozen: false,
  flexNowW: 0,
  minFlexW: -naturalW,
  maxFlexW: 11_040 - naturalW,
  // 690 W steps from 6 A, or paused
  quantize: (wantW, cover) => {
    const steps = [0, ...Array.from({ length: 11 }, (_, i) => (6 + i) * 690)];
    const target = naturalW + wantW;
    const pick = cover ? (wantW < 0 ? steps.filter((p) => p <= target + 1).pop() ?? 0 : steps.find((p) => p >= target - 1) ?? steps.at(-1)!) : steps.reduce((b, p) => (Math.abs(p - target) < Math.abs(b - target) ? p : b));
    return pick - naturalW;
  },
});
const load = (powerW: number, canEngageDown = true): DiscreteUnit => ({
  id: 'load',
  kind: 'load',
  discrete: true,
  frozen: false,
  engaged: 0,
  flexNowW: 0,
  downFlexW: -powerW,
  upFlexW: 0,
  canEngageDown,
  canEngageUp: false,
  canRelease: true,
  mustRelease: false,
});

describe('allocate', () => {
  it('uses the battery alone when it can, and nothing else', () => {
    const a = allocate([battery(-3000, 2000), ev(6900), load(2000)], -1500, { exact: true });
    expect(a.flexW).toEqual([-1500, 0, 0]);
    expect(a.residualW).toBe(0);
  });

  it('goes down the merit order when the battery is not enough: load before EV; the battery settles the rounding', () => {
    const a = allocate([battery(-1000, 4000), ev(6900), load(2000)], -4000, { exact: true });
    expect(a.engaged[2]).toBe(-1);
    expect(a.flexW[2]).toBe(-2000);
    expect(a.flexW[1]).toBeLessThan(0);
    expect(a.totalW).toBeCloseTo(-4000, 6);
  });

  it('a load that may not switch is left alone and the EV takes its part', () => {
    const a = allocate([battery(0, 0), ev(6900), load(2000, false)], -2000, { exact: false });
    expect(a.flexW[2]).toBe(0);
    expect(a.flexW[1]).toBeLessThanOrEqual(-2000);
  });

  it('property: every unit stays within its limits; the residual is the difference; none is left when the range allows', () => {
    const unitArb: fc.Arbitrary<Unit> = fc.oneof(
      fc.tuple(fc.integer({ min: -6000, max: 0 }), fc.integer({ min: 0, max: 6000 })).map(([lo, hi]) => battery(lo, hi)),
      fc.integer({ min: 0, max: 11_040 }).map((n) => ev(n)),
      fc.tuple(fc.integer({ min: 0, max: 3000 }), fc.boolean()).map(([p, can]) => load(p, can)),
    );
    fc.assert(
      fc.property(fc.array(unitArb, { minLength: 1, maxLength: 6 }), fc.integer({ min: -30_000, max: 30_000 }), fc.boolean(), (units, wantW, exact) => {
        const a = allocate(units, wantW, { exact });
        units.forEach((u, i) => {
          const f = a.flexW[i]!;
          expect(Number.isFinite(f)).toBe(true);
          if (u.discrete) {
            expect([0, u.downFlexW, u.upFlexW]).toContain(f);
            if (f !== 0) expect(f < 0 ? u.canEngageDown : u.canEngageUp).toBe(true);
          } else {
            expect(f).toBeGreaterThanOrEqual(u.minFlexW - 1e-6);
            expect(f).toBeLessThanOrEqual(u.maxFlexW + 1e-6);
          }
        });
        expect(a.totalW + a.residualW).toBeCloseTo(wantW, 6);
        const cap = capacityW(units);
        // A want within the range of the batteries is always met exactly.
        const batteries = units.filter((u): u is ContinuousUnit => u.kind === 'battery');
        const bMin = batteries.reduce((s, b) => s + b.minFlexW, 0);
        const bMax = batteries.reduce((s, b) => s + b.maxFlexW, 0);
        if (wantW >= bMin && wantW <= bMax) expect(Math.abs(a.residualW)).toBeLessThan(1e-6);
        expect(a.totalW).toBeGreaterThanOrEqual(cap.minW - 1e-6);
        expect(a.totalW).toBeLessThanOrEqual(cap.maxW + 1e-6);
      }),
      { numRuns: 3000 },
    );
  });
});

describe('targets', () => {
  const order = (signal: ActiveOrder['signal'], valueW: number, acceptedAtMs = 0, rampMs = 0): ActiveOrder => ({
    key: `0x${signal}${valueW}:0`,
    orderId: `0x${'00'.repeat(32)}`,
    modification: 0,
    aggregator: `0x${'11'.repeat(20)}`,
    signal,
    valueW,
    effectiveStartMs: 1000,
    endMs: 100_000,
    rampMs,
    priceMicros: 0,
    acceptedAtMs,
  });

  it('limits combine to the tightest; the newest setpoint wins and is clamped into them', () => {
    const t = combineTargets(
      [
        { order: order(SITE_SIGNALS.SITE_IMPORT_LIMIT, 3000), baselineW: 0, startGridW: 5000 },
        { order: order(SITE_SIGNALS.SITE_IMPORT_LIMIT, 2000), baselineW: 0, startGridW: 5000 },
        { order: order(SITE_SIGNALS.SITE_SETPOINT, 4000, 1), baselineW: 0, startGridW: 5000 },
        { order: order(SITE_SIGNALS.SITE_SETPOINT, 2500, 2), baselineW: 0, startGridW: 5000 },
      ],
      50_000,
    );
    expect(t.upperW).toBe(2000);
    expect(t.exactW).toBe(2000);
    expect(t.overriddenKeys).toHaveLength(1);
  });

  it('a delta is against the baseline and ramps from where the site was', () => {
    const input = { order: order(SITE_SIGNALS.SITE_DELTA, -2000, 0, 10_000), baselineW: 3000, startGridW: 3200 };
    expect(combineTargets([input], 1000).exactW).toBe(3200);
    expect(combineTargets([input], 6000).exactW).toBeCloseTo(3200 + (1000 - 3200) / 2, 6);
    expect(combineTargets([input], 11_000).exactW).toBe(1000);
    expect(rampW(0, 100, 0, 0, 0)).toBe(100);
  });

  it('meter-before baseline: the mean of the window before the start, else the first readings', () => {
    const h = new GridHistory(100);
    for (let t = 0; t < 60; t++) h.push(t * 1000, t < 30 ? 1000 : 3000);
    expect(meterBeforeBaseline(h, 60_000, 61_000, 60_000)).toMatchObject({ baselineW: 2000, method: 'before-start', samples: 60 });
    const late = new GridHistory(10);
    late.push(500_000, 1234);
    expect(meterBeforeBaseline(late, 100_000, 500_000, 60_000)).toMatchObject({ baselineW: 1234, method: 'first-readings' });
    expect(meterBeforeBaseline(new GridHistory(4), 0, 0, 60_000)).toBeUndefined();
  });

  it('EV departure: never below what still delivers the session by the departure time', () => {
    const hour = 3_600_000;
    // 11 kWh in 2 h at most 11 kW: may pause for up to ~55 min of a 1 h order.
    expect(departureMinPowerW({ remainingWh: 11_000, nowMs: 0, departureMs: 2 * hour, horizonMs: hour, maxPowerW: 11_000, marginMs: 0 })).toBeCloseTo(550, 0);
    expect(departureMinPowerW({ remainingWh: 30_000, nowMs: 0, departureMs: 2 * hour, horizonMs: hour, maxPowerW: 11_000, marginMs: 0 })).toBe(Number.POSITIVE_INFINITY);
    expect(departureMinPowerW({ remainingWh: 1000, nowMs: 0, departureMs: 5 * hour, horizonMs: hour, maxPowerW: 11_000, marginMs: 0 })).toBe(0);
  });
});
