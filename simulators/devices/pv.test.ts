import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { Ticker } from '../ticker.js';
import { writeMultiple } from './test-support.js';
import { clearSkyFraction, cloudFactor, PvInverter } from './pv.js';

const DAY = Date.UTC(2026, 5, 21);
const at = (hour: number) => DAY + hour * 3_600_000;

function setup(variant: 'inverter' | 'der', startHour = 13, cloudiness = 0, tickMs = 1000) {
  const clock = new VirtualClock({ startTimeMs: at(startHour), manual: true });
  const pv = new PvInverter({ clock, variant, ratedPowerW: 8000, cloudiness, seed: 42 });
  const ticker = new Ticker(clock, tickMs);
  ticker.add(pv);
  ticker.start();
  return { clock, pv, ticker };
}

/** Writes as a bus client would (through the image's write path), by point name. */
function busWrite(pv: PvInverter, modelId: number, values: Record<string, number>): number | undefined {
  for (const [name, value] of Object.entries(values)) {
    const p = pv.sunspec.point(modelId, name);
    const sf = pv.sunspec.scaleFactor(modelId, name);
    const raw = Math.round(value / 10 ** sf);
    const regs = p.size === 2 ? [(raw >>> 16) & 0xffff, raw & 0xffff] : [raw & 0xffff];
    const code = pv.sunspec.image.writeFromBus(p.address, regs);
    if (code !== undefined) return code;
  }
  return undefined;
}

function fc16(pv: PvInverter, address: number, values: readonly number[]): number | undefined {
  return writeMultiple(pv.sunspec.image, address, values);
}

describe('PV clear-sky curve and clouds', () => {
  it('is zero at night, peaks at solar noon, symmetric', () => {
    expect(clearSkyFraction(at(3))).toBe(0);
    expect(clearSkyFraction(at(6))).toBe(0);
    expect(clearSkyFraction(at(13))).toBeCloseTo(1, 9);
    expect(clearSkyFraction(at(9))).toBeCloseTo(clearSkyFraction(at(17)), 9);
    expect(clearSkyFraction(at(9))).toBeCloseTo(Math.sin(Math.PI * 3 / 14) ** 1.5, 9);
  });

  it('clouds are deterministic for a seed and only take power away', () => {
    const a = [0, 1, 2, 3].map((k) => cloudFactor(at(10) + k * 300_000, 7, 0.8));
    const b = [0, 1, 2, 3].map((k) => cloudFactor(at(10) + k * 300_000, 7, 0.8));
    const c = [0, 1, 2, 3].map((k) => cloudFactor(at(10) + k * 300_000, 8, 0.8));
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    for (const f of [...a, ...c]) expect(f).toBeGreaterThanOrEqual(0.2);
    for (const f of [...a, ...c]) expect(f).toBeLessThanOrEqual(1);
  });
});

describe.each(['inverter', 'der'] as const)('PvInverter (%s)', (variant) => {
  const measured = variant === 'inverter' ? { model: 103, w: 'W', wh: 'WH' } : { model: 701, w: 'W', wh: 'TotWhInj' };
  const control =
    variant === 'inverter'
      ? { model: 123, pct: 'WMaxLimPct', ena: 'WMaxLim_Ena', rvrt: 'WMaxLimPct_RvrtTms' }
      : { model: 704, pct: 'WMaxLimPct', ena: 'WMaxLimPctEna', rvrt: 'WMaxLimPctRvrtTms' };

  it('follows the curve through the day and integrates energy', () => {
    const { clock, pv } = setup(variant, 5, 0, 10_000);
    expect(pv.acPowerW).toBe(0);
    clock.advance(4 * 3_600_000); // 09:00
    expect(pv.acPowerW).toBe(Math.round(8000 * clearSkyFraction(clock.now())));
    expect(pv.sunspec.get(measured.model, measured.w)).toBe(pv.acPowerW);
    clock.advance(4 * 3_600_000); // 13:00
    expect(pv.acPowerW).toBe(8000);
    // Energy 05:00–13:00: integral of 8000·sin(π(h−6)/14)^1.5 from 6 to 13 ≈ the tick sum.
    let expectedWh = 0;
    for (let t = at(5); t < at(13); t += 10_000) expectedWh += (Math.round(8000 * clearSkyFraction(t)) * 10) / 3600;
    expect(pv.energyWh).toBeCloseTo(expectedWh, 3);
    expect(pv.sunspec.get(measured.model, measured.wh)).toBe(Math.floor(pv.energyWh));
  });

  it('obeys a curtailment write and drops it when the revert timer runs out', () => {
    const { clock, pv } = setup(variant);
    expect(pv.acPowerW).toBeGreaterThan(7900);
    expect(busWrite(pv, control.model, { [control.rvrt]: 60, [control.pct]: 40.5, [control.ena]: 1 })).toBeUndefined();
    expect(pv.limitPct).toBe(40.5);
    expect(pv.acPowerW).toBe(3240); // applied at once
    clock.advance(30_000);
    expect(pv.sunspec.get(measured.model, measured.w)).toBe(3240);
    // Re-writing the limit restarts the 60 s timer.
    busWrite(pv, control.model, { [control.pct]: 40.5 });
    clock.advance(59_000);
    expect(pv.limitPct).toBe(40.5);
    expect(pv.acPowerW).toBe(3240);
    clock.advance(1_000);
    expect(pv.limitPct).toBeUndefined();
    expect(pv.sunspec.get(control.model, control.ena)).toBe(0);
    expect(pv.acPowerW).toBeGreaterThan(7900);
  });

  it('keeps a limit without revert timer and refuses a limit above 100 %', () => {
    const { clock, pv } = setup(variant);
    busWrite(pv, control.model, { [control.pct]: 10, [control.ena]: 1 });
    clock.advance(3_600_000);
    expect(pv.acPowerW).toBe(800);
    expect(busWrite(pv, control.model, { [control.pct]: 101 })).toBe(3);
    busWrite(pv, control.model, { [control.ena]: 0 });
    expect(pv.acPowerW).toBeGreaterThan(7000);
  });
});

describe('PvInverter: the whole curtailment block in one FC16', () => {
  it('123: WMaxLimPct, WinTms, RvrtTms, RmpTms and WMaxLim_Ena (offsets 5..9) are taken and applied together', () => {
    const { clock, pv } = setup('inverter');
    const start = pv.sunspec.point(123, 'WMaxLimPct').address;
    expect(pv.sunspec.point(123, 'WMaxLim_Ena').address).toBe(start + 4);
    expect(fc16(pv, start, [405, 0, 60, 7, 1])).toBeUndefined(); // 40.5 % (sf −1), 60 s timer, enable
    expect(pv.limitPct).toBe(40.5);
    expect(pv.acPowerW).toBe(3240);
    expect(pv.revertRemainingMs).toBe(60_000);
    expect(pv.sunspec.get(123, 'WMaxLimPct_WinTms')).toBe(0);
    expect(pv.sunspec.get(123, 'WMaxLimPct_RmpTms')).toBe(7); // kept as written
    // The same block again restarts the timer.
    clock.advance(30_000);
    expect(fc16(pv, start, [405, 0, 60, 7, 1])).toBeUndefined();
    clock.advance(59_000);
    expect(pv.limitPct).toBe(40.5);
    clock.advance(1_000);
    expect(pv.limitPct).toBeUndefined();
    // One value refused: nothing of the block is written.
    expect(fc16(pv, start, [1010, 0, 60, 0, 1])).toBe(3);
    expect(pv.limitPct).toBeUndefined();
    expect(pv.sunspec.get(123, 'WMaxLimPct')).toBe(40.5);
    expect(pv.sunspec.get(123, 'WMaxLimPct_RmpTms')).toBe(7);
  });

  it('704: WMaxLimPctEna, WMaxLimPct, WMaxLimPctRvrt, WMaxLimPctEnaRvrt, WMaxLimPctRvrtTms (offsets 14..19) together', () => {
    const { clock, pv } = setup('der');
    const start = pv.sunspec.point(704, 'WMaxLimPctEna').address;
    expect(pv.sunspec.point(704, 'WMaxLimPctRvrtTms').address).toBe(start + 4);
    // The enable comes first in register order; the device still sees the value and the timer with it.
    expect(fc16(pv, start, [1, 405, 1000, 0, 0, 60])).toBeUndefined();
    expect(pv.limitPct).toBe(40.5);
    expect(pv.acPowerW).toBe(3240);
    expect(pv.revertRemainingMs).toBe(60_000);
    expect(pv.sunspec.get(704, 'WMaxLimPctRvrt')).toBe(100);
    clock.advance(60_000);
    expect(pv.limitPct).toBeUndefined();
    expect(pv.sunspec.get(704, 'WMaxLimPct')).toBe(100); // WMaxLimPctRvrt restored
    expect(fc16(pv, start, [1, 405, 1010, 0, 0, 60])).toBe(3); // WMaxLimPctRvrt 101 %: all refused
    expect(pv.limitPct).toBeUndefined();
  });
});
