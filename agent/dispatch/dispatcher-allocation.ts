/**
 * Allocation (docs/dispatch.md): how much each flexible device moves so that the site moves by the
 * wanted amount, cheapest discomfort first, within every device's limits. Pure: no I/O, no clock.
 *
 * Everything is "flex": a device's change of site power against its natural behaviour (what it
 * would do without flexgate), W, positive = the site consumes more. The dispatcher turns the site
 * error into a wanted total flex; `allocate` splits it:
 *
 *  1. Units that cannot move now keep their flex ("fixed"): a failing unit, a discrete unit inside
 *     its minimum on/off / switching time.
 *  2. The batteries take what they can (they are first in both merit orders and, being continuous,
 *     the fine regulator of the closed loop).
 *  3. What they cannot take goes down the merit order of its direction:
 *        consume less: load off → EV current down / pause → heat pump blocked / offset down
 *        consume more: EV current up → load on → heat pump forced / offset up → PV curtailed
 *     A discrete unit engages when the remaining need is at least half its power, or when the
 *     continuous units after it could not cover the need; once engaged it stays while the need is
 *     at least a tenth of its power or the units after it could not cover it (hysteresis).
 *     Continuous units after a discrete one take the rest; EV current steps are rounded so that the
 *     need is covered whenever a battery can absorb the rounding.
 *  4. The batteries settle the difference (overshoot of discrete steps, EV rounding).
 */

export type UnitKind = 'battery' | 'ev' | 'pv' | 'load' | 'hvac';
export type Engagement = -1 | 0 | 1;

/** Merit order to consume less (or export more). */
export const DOWN_ORDER: readonly UnitKind[] = ['battery', 'load', 'ev', 'hvac'];
/** Merit order to consume more (or export less). */
export const UP_ORDER: readonly UnitKind[] = ['battery', 'ev', 'load', 'hvac', 'pv'];

interface UnitBase {
  readonly id: string;
  readonly kind: UnitKind;
  /** The unit's flex now (W): measured, or what its last acknowledged command gives when the
   * reading is older than the command. */
  readonly flexNowW: number;
  /** The unit cannot be moved this step (its writes are failing): it keeps flexNowW. */
  readonly frozen: boolean;
}

export interface ContinuousUnit extends UnitBase {
  readonly kind: 'battery' | 'ev' | 'pv';
  readonly discrete: false;
  /** The flex a command can reach now, within every limit of the device (W). */
  readonly minFlexW: number;
  readonly maxFlexW: number;
  /** The flex the device can really take nearest to `wantW` (EV current steps, pause); with
   * `cover` the result covers `wantW` (|result| ≥ |wantW|) when it can. Identity when undefined. */
  quantize?(wantW: number, cover: boolean): number;
}

export interface DiscreteUnit extends UnitBase {
  readonly kind: 'load' | 'hvac';
  readonly discrete: true;
  /** Current engagement by flexgate: -1 consuming less, 1 consuming more, 0 natural. */
  readonly engaged: Engagement;
  /** Flex when engaged down (≤ 0) / up (≥ 0); 0 when that direction gives nothing. */
  readonly downFlexW: number;
  readonly upFlexW: number;
  /** Engaging is allowed now (comfort band, minimum switching times, refusals). */
  readonly canEngageDown: boolean;
  readonly canEngageUp: boolean;
  /** Releasing is allowed now (minimum on/off or switching time passed). */
  readonly canRelease: boolean;
  /** The unit must be released now (the indoor temperature left the comfort band). */
  readonly mustRelease: boolean;
}

export type Unit = ContinuousUnit | DiscreteUnit;

export interface AllocationOptions {
  /** A setpoint / delta (true) or limits only: with no battery to absorb EV rounding, exact
   * targets round to the nearest step while limits always cover. */
  exact: boolean;
  /** Engage a discrete unit when the need is ≥ this fraction of its power (default 0.5). */
  engageFraction?: number;
  /** Keep an engaged discrete unit while the need is ≥ this fraction of its power (default 0.1). */
  releaseFraction?: number;
  /** Engage a discrete unit anyway when the later continuous units fall short by more than this (W). */
  shortfallW?: number;
}

export interface Allocation {
  /** Per unit (same index as the input): the flex to command (W). */
  readonly flexW: number[];
  /** Per discrete unit: the engagement to command (0 for continuous units). */
  readonly engaged: Engagement[];
  /** The flex allocated in total (W). */
  readonly totalW: number;
  /** Wanted − allocated (W): what the devices cannot do within their limits. */
  readonly residualW: number;
}

const clamp = (x: number, lo: number, hi: number): number => (x < lo ? lo : x > hi ? hi : x);

function meritIndex(kind: UnitKind, order: readonly UnitKind[]): number {
  const i = order.indexOf(kind);
  return i < 0 ? Number.POSITIVE_INFINITY : i;
}

/** Splits `wantW` (the total flex wanted) over the units. */
export function allocate(units: readonly Unit[], wantW: number, options: AllocationOptions): Allocation {
  const engageFraction = options.engageFraction ?? 0.5;
  const releaseFraction = options.releaseFraction ?? 0.1;
  const shortfallW = options.shortfallW ?? 50;
  const n = units.length;
  const flexW = new Array<number>(n).fill(0);
  const engaged = new Array<Engagement>(n).fill(0);
  const fixed = new Array<boolean>(n).fill(false);

  // 1. Units that cannot move keep their flex; units that must be released give none.
  let fixedW = 0;
  for (let i = 0; i < n; i++) {
    const u = units[i]!;
    if (u.discrete) {
      if (u.frozen || (u.engaged !== 0 && !u.canRelease && !u.mustRelease)) {
        fixed[i] = true;
        flexW[i] = u.flexNowW;
        engaged[i] = u.engaged;
        fixedW += u.flexNowW;
      } else if (u.mustRelease) {
        fixed[i] = true;
      }
    } else if (u.frozen) {
      fixed[i] = true;
      flexW[i] = u.flexNowW;
      fixedW += u.flexNowW;
    }
  }
  const movableW = wantW - fixedW;

  // 2. The batteries first.
  let batteryMinW = 0;
  let batteryMaxW = 0;
  for (let i = 0; i < n; i++) {
    const u = units[i]!;
    if (fixed[i] || u.kind !== 'battery' || u.discrete) continue;
    batteryMinW += u.minFlexW;
    batteryMaxW += u.maxFlexW;
  }
  const batteryAloneW = clamp(movableW, batteryMinW, batteryMaxW);
  const needW = movableW - batteryAloneW;
  const dir: Engagement = needW < -0.5 ? -1 : needW > 0.5 ? 1 : 0;

  // 3. The rest down the merit order of the need's direction.
  if (dir !== 0) {
    const order = dir < 0 ? DOWN_ORDER : UP_ORDER;
    const walk: number[] = [];
    for (let i = 0; i < n; i++) {
      const u = units[i]!;
      if (!fixed[i] && u.kind !== 'battery' && meritIndex(u.kind, order) < Number.POSITIVE_INFINITY) walk.push(i);
    }
    walk.sort((a, b) => meritIndex(units[a]!.kind, order) - meritIndex(units[b]!.kind, order) || a - b);
    // What the continuous units after each position could still take in this direction.
    const laterW = new Array<number>(walk.length + 1).fill(0);
    for (let k = walk.length - 1; k >= 0; k--) {
      const u = units[walk[k]!]!;
      laterW[k] = laterW[k + 1]! + (u.discrete ? 0 : dir < 0 ? Math.min(0, u.minFlexW) : Math.max(0, u.maxFlexW));
    }
    const cover = options.exact ? batteryMaxW - batteryMinW >= 1 : true;
    let remW = needW;
    for (let k = 0; k < walk.length; k++) {
      const i = walk[k]!;
      const u = units[i]!;
      const shortfall = dir * (remW - laterW[k + 1]!);
      if (u.discrete) {
        const stepW = u.engaged === dir ? u.flexNowW : dir < 0 ? u.downFlexW : u.upFlexW;
        const magnitudeW = Math.abs(stepW);
        if (magnitudeW < 1 || dir * stepW < 0) continue;
        const remMagnitudeW = dir * remW;
        const on =
          u.engaged === dir
            ? remMagnitudeW >= releaseFraction * magnitudeW || shortfall > 0
            : (dir < 0 ? u.canEngageDown : u.canEngageUp) && (remMagnitudeW >= engageFraction * magnitudeW || shortfall > shortfallW);
        if (on) {
          engaged[i] = dir;
          flexW[i] = stepW;
          remW -= stepW;
        }
      } else {
        const capW = dir < 0 ? Math.min(0, u.minFlexW) : Math.max(0, u.maxFlexW);
        const wantHereW = dir < 0 ? Math.max(remW, capW) : Math.min(remW, capW);
        if (dir * wantHereW <= 0) continue;
        const gotW = u.quantize ? u.quantize(wantHereW, cover) : wantHereW;
        flexW[i] = gotW;
        remW -= gotW;
      }
    }
  }

  // 4. The batteries settle the difference.
  let othersW = 0;
  for (let i = 0; i < n; i++) if (!fixed[i] && units[i]!.kind !== 'battery') othersW += flexW[i]!;
  const batteryW = clamp(movableW - othersW, batteryMinW, batteryMaxW);
  distributeBatteries(units, fixed, flexW, batteryW);
  const totalW = fixedW + othersW + batteryW;
  return { flexW, engaged, totalW, residualW: wantW - totalW };
}

/**
 * Shares `totalW` over the batteries: each starts at the point of its range nearest to zero, and
 * the rest is shared in proportion to the room each has in that direction.
 */
function distributeBatteries(units: readonly Unit[], fixed: readonly boolean[], flexW: number[], totalW: number): void {
  let baseSumW = 0;
  let roomSumW = 0;
  for (let i = 0; i < units.length; i++) {
    const u = units[i]!;
    if (fixed[i] || u.kind !== 'battery' || u.discrete) continue;
    baseSumW += clamp(0, u.minFlexW, u.maxFlexW);
  }
  const restW = totalW - baseSumW;
  for (let i = 0; i < units.length; i++) {
    const u = units[i]!;
    if (fixed[i] || u.kind !== 'battery' || u.discrete) continue;
    const base = clamp(0, u.minFlexW, u.maxFlexW);
    roomSumW += restW >= 0 ? u.maxFlexW - base : base - u.minFlexW;
  }
  for (let i = 0; i < units.length; i++) {
    const u = units[i]!;
    if (fixed[i] || u.kind !== 'battery' || u.discrete) continue;
    const base = clamp(0, u.minFlexW, u.maxFlexW);
    const room = restW >= 0 ? u.maxFlexW - base : base - u.minFlexW;
    flexW[i] = clamp(roomSumW > 0 ? base + (restW * room) / roomSumW : base, u.minFlexW, u.maxFlexW);
  }
}
