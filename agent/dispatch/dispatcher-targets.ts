/**
 * The dispatcher's site targets (docs/dispatch.md): the short history of the site meter, the
 * "meter-before" baseline, the ramp, and how the orders of several aggregators combine into one
 * constraint on the grid power. Pure functions and one small ring buffer; no I/O.
 *
 * Sign convention (PROTOCOL.md §1): grid power is positive when the site imports.
 */
import { SITE_SIGNALS, type ActiveOrder } from './types.js';

/** The tolerance the dispatcher holds a target to: ±max(100 W, 5 %). */
export function toleranceW(targetW: number): number {
  return Math.max(100, 0.05 * Math.abs(targetW));
}

/** How far inside a limit the dispatcher aims once the limit acts: max(50 W, 2 %). */
export function limitMarginW(limitW: number): number {
  return Math.max(50, 0.02 * Math.abs(limitW));
}

/**
 * The site meter's recent readings, one per control cycle, in a fixed ring (no allocation per
 * sample). Enough for the baseline window before an order's start.
 */
export class GridHistory {
  private readonly tsMs: Float64Array;
  private readonly powerW: Float64Array;
  private next = 0;
  private count = 0;

  constructor(readonly capacity: number) {
    if (!(capacity >= 2)) throw new RangeError(`GridHistory capacity must be ≥ 2, got ${capacity}`);
    this.tsMs = new Float64Array(capacity);
    this.powerW = new Float64Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  push(tsMs: number, powerW: number): void {
    this.tsMs[this.next] = tsMs;
    this.powerW[this.next] = powerW;
    this.next = (this.next + 1) % this.capacity;
    if (this.count < this.capacity) this.count++;
  }

  /** Mean and number of the samples taken in [fromMs, toMs). */
  mean(fromMs: number, toMs: number): { meanW: number; samples: number } {
    let sum = 0;
    let n = 0;
    for (let i = 0; i < this.count; i++) {
      const idx = (this.next - 1 - i + this.capacity) % this.capacity;
      const ts = this.tsMs[idx]!;
      if (ts >= fromMs && ts < toMs) {
        sum += this.powerW[idx]!;
        n++;
      }
    }
    return { meanW: n > 0 ? sum / n : Number.NaN, samples: n };
  }

  /** The newest sample taken at or before `atMs`. */
  latestAtOrBefore(atMs: number): { tsMs: number; powerW: number } | undefined {
    for (let i = 0; i < this.count; i++) {
      const idx = (this.next - 1 - i + this.capacity) % this.capacity;
      if (this.tsMs[idx]! <= atMs) return { tsMs: this.tsMs[idx]!, powerW: this.powerW[idx]! };
    }
    return undefined;
  }
}

/**
 * The "meter-before" baseline of an order: the mean site power over the `windowMs` before its
 * effective start. When the history holds nothing from that window (the agent started during the
 * order's window), the mean of what it has from before `nowMs` within the same length, else
 * undefined (no meter reading yet: the order waits for one).
 */
export function meterBeforeBaseline(
  history: GridHistory,
  effectiveStartMs: number,
  nowMs: number,
  windowMs: number,
): { baselineW: number; samples: number; method: 'before-start' | 'first-readings' } | undefined {
  const before = history.mean(effectiveStartMs - windowMs, effectiveStartMs);
  if (before.samples > 0) return { baselineW: before.meanW, samples: before.samples, method: 'before-start' };
  const latest = history.latestAtOrBefore(nowMs);
  if (!latest) return undefined;
  const recent = history.mean(latest.tsMs - windowMs, latest.tsMs + 1);
  return { baselineW: recent.meanW, samples: recent.samples, method: 'first-readings' };
}

/** Linear ramp from `fromW` at `startMs` to `toW` at `startMs + rampMs` (and `toW` after). */
export function rampW(fromW: number, toW: number, startMs: number, rampMs: number, atMs: number): number {
  if (rampMs <= 0 || atMs >= startMs + rampMs) return toW;
  if (atMs <= startMs) return fromW;
  return fromW + ((toW - fromW) * (atMs - startMs)) / rampMs;
}

/** What the dispatcher needs of one running order to know its target. */
export interface OrderTargetInput {
  readonly order: ActiveOrder;
  /** The order's baseline (W). */
  readonly baselineW: number;
  /** The site's grid power when the dispatcher first acted on the order (the ramp's start). */
  readonly startGridW: number;
}

/** One order's own constraint at a time, ramped. */
export type OrderConstraint = { kind: 'upper' | 'lower' | 'exact'; valueW: number; finalW: number };

/**
 * The constraint one order puts on the grid power at `atMs` (or its final one with `atMs` =
 * Infinity). Limits ramp from where the site was, if it was beyond them, to the limit; setpoints
 * and deltas ramp from where the site was to the final value.
 */
export function orderConstraint(input: OrderTargetInput, atMs: number): OrderConstraint {
  const { order, startGridW, baselineW } = input;
  const at = (fromW: number, toW: number) => rampW(fromW, toW, order.effectiveStartMs, order.rampMs, atMs);
  switch (order.signal) {
    case SITE_SIGNALS.SITE_IMPORT_LIMIT: {
      const limitW = order.valueW;
      return { kind: 'upper', valueW: at(Math.max(startGridW, limitW), limitW), finalW: limitW };
    }
    case SITE_SIGNALS.SITE_EXPORT_LIMIT: {
      const limitW = -order.valueW;
      return { kind: 'lower', valueW: at(Math.min(startGridW, limitW), limitW), finalW: limitW };
    }
    case SITE_SIGNALS.SITE_SETPOINT:
      return { kind: 'exact', valueW: at(startGridW, order.valueW), finalW: order.valueW };
    case SITE_SIGNALS.SITE_DELTA:
      return { kind: 'exact', valueW: at(startGridW, baselineW + order.valueW), finalW: baselineW + order.valueW };
  }
}

/** The site's combined constraint at one time. */
export interface SiteTarget {
  /** Hold the grid power here (setpoint / delta), already inside the limits; undefined = limits only. */
  exactW: number | undefined;
  /** Grid power ≤ this (the tightest import limit). */
  upperW: number | undefined;
  /** Grid power ≥ this (the tightest export limit, negative). */
  lowerW: number | undefined;
  /** The order whose setpoint / delta is followed (the newest accepted). */
  exactKey: string | undefined;
  upperKey: string | undefined;
  lowerKey: string | undefined;
  /** Setpoint / delta orders that lost the conflict to a newer one. */
  overriddenKeys: string[];
}

/**
 * Combines the orders: limits combine to the tightest; among setpoints and deltas the newest
 * accepted (acceptedAtMs, then key) wins and the others are overridden; the winner is clamped into
 * the limits. `final` uses each order's final (unramped) value.
 */
export function combineTargets(inputs: readonly OrderTargetInput[], atMs: number, final = false): SiteTarget {
  const target: SiteTarget = { exactW: undefined, upperW: undefined, lowerW: undefined, exactKey: undefined, upperKey: undefined, lowerKey: undefined, overriddenKeys: [] };
  let exactOrder: ActiveOrder | undefined;
  for (const input of inputs) {
    const c = orderConstraint(input, atMs);
    const valueW = final ? c.finalW : c.valueW;
    const o = input.order;
    if (c.kind === 'upper') {
      if (target.upperW === undefined || valueW < target.upperW) {
        target.upperW = valueW;
        target.upperKey = o.key;
      }
    } else if (c.kind === 'lower') {
      if (target.lowerW === undefined || valueW > target.lowerW) {
        target.lowerW = valueW;
        target.lowerKey = o.key;
      }
    } else if (exactOrder === undefined || o.acceptedAtMs > exactOrder.acceptedAtMs || (o.acceptedAtMs === exactOrder.acceptedAtMs && o.key > exactOrder.key)) {
      if (exactOrder) target.overriddenKeys.push(exactOrder.key);
      exactOrder = o;
      target.exactW = valueW;
      target.exactKey = o.key;
    } else {
      target.overriddenKeys.push(o.key);
    }
  }
  // Import limits are ≥ 0 and export limits ≤ 0, so they never cross; keep the import limit if a
  // ramp ever made them.
  if (target.upperW !== undefined && target.lowerW !== undefined && target.lowerW > target.upperW) target.lowerW = target.upperW;
  if (target.exactW !== undefined) {
    if (target.upperW !== undefined && target.exactW > target.upperW) target.exactW = target.upperW;
    if (target.lowerW !== undefined && target.exactW < target.lowerW) target.exactW = target.lowerW;
  }
  return target;
}

/**
 * The next departure at local time "HH:MM" after `nowMs` (today's if still ahead, else tomorrow's),
 * in the gateway's local time zone.
 */
export function nextLocalTimeMs(nowMs: number, hhmm: string): number {
  const match = /^(\d{2}):(\d{2})$/.exec(hhmm);
  if (!match) throw new RangeError(`expected HH:MM, got "${hhmm}"`);
  const d = new Date(nowMs);
  d.setHours(Number(match[1]), Number(match[2]), 0, 0);
  if (d.getTime() <= nowMs) d.setDate(d.getDate() + 1);
  return d.getTime();
}

/**
 * The lowest charging power (W) that still meets the departure need if charging is held at it for
 * `horizonMs` and then runs at `maxPowerW` until departure: Infinity when the need could not be
 * met even at full power (then charging is never cut back), 0 when it can pause.
 * A 5 % energy margin and one cycle of time margin are kept.
 */
export function departureMinPowerW(p: { remainingWh: number; nowMs: number; departureMs: number; horizonMs: number; maxPowerW: number; marginMs: number }): number {
  if (p.remainingWh <= 0) return 0;
  const neededWh = p.remainingWh * 1.05;
  const timeLeftMs = p.departureMs - p.nowMs - p.marginMs;
  if (timeLeftMs <= 0 || p.maxPowerW <= 0) return Number.POSITIVE_INFINITY;
  const fullWh = (p.maxPowerW * timeLeftMs) / 3_600_000;
  if (fullWh < neededWh) return Number.POSITIVE_INFINITY;
  const horizonMs = Math.min(Math.max(p.horizonMs, 1), timeLeftMs);
  const afterWh = (p.maxPowerW * (timeLeftMs - horizonMs)) / 3_600_000;
  const duringWh = neededWh - afterWh;
  if (duringWh <= 0) return 0;
  return (duringWh * 3_600_000) / horizonMs;
}
