import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { Ticker } from '../ticker.js';
import { householdLoadW, SiteMeter } from './meter.js';

describe.each(['wye', 'der'] as const)('SiteMeter (%s)', (variant) => {
  const model = variant === 'wye' ? 203 : 701;
  const imp = variant === 'wye' ? 'TotWhImp' : 'TotWhAbs';
  const exp = variant === 'wye' ? 'TotWhExp' : 'TotWhInj';
  // 203 W counts import positive; 701 W counts generation/injection positive (model_701.json).
  const busW = (powerW: number) => (variant === 'wye' ? powerW : 0 - powerW);

  it(`powerW = load + battery − PV (import positive), W on the bus ${variant === 'wye' ? 'import' : 'injection'} positive, counters integrate`, () => {
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 1, 12), manual: true });
    const pv = { acPowerW: 0 };
    const battery = { powerW: 0 };
    const meter = new SiteMeter({ clock, variant, baseLoadW: 600, pv, battery });
    const ticker = new Ticker(clock, 1000);
    ticker.add(meter);
    ticker.start();
    battery.powerW = 1400;
    clock.advance(1000);
    expect(meter.powerW).toBe(2000);
    expect(meter.sunspec.get(model, 'W')).toBe(busW(2000));
    if (variant === 'der') expect(meter.sunspec.get(model, 'W')).toBe(-2000); // importing: absorption
    clock.advance(3_600_000); // one hour at 2 kW import
    expect(meter.importWh).toBeCloseTo(600 / 3600 + 2000, 6); // first second still at 600 W
    pv.acPowerW = 5000;
    battery.powerW = -400;
    const removeLoad = meter.addLoad(() => 300);
    clock.advance(1000);
    expect(meter.powerW).toBe(600 - 400 - 5000 + 300);
    expect(meter.sunspec.get(model, 'W')).toBe(busW(-4500));
    clock.advance(1_800_000); // half an hour at 4.5 kW export
    expect(meter.exportWh).toBeCloseTo(2250, 6);
    expect(meter.importWh).toBeCloseTo(600 / 3600 + 2000 + 2000 / 3600, 6);
    expect(meter.sunspec.get(model, imp)).toBe(2000);
    expect(meter.sunspec.get(model, exp)).toBe(2250);
    removeLoad();
    clock.advance(1000);
    expect(meter.powerW).toBe(-4800);
    expect(meter.sunspec.get(model, 'W')).toBe(busW(-4800));
    if (variant === 'der') expect(meter.sunspec.get(model, 'W')).toBe(4800); // exporting: injection
    // Counters never run backwards, whatever the sign of W.
    expect(meter.sunspec.get(model, imp)).toBe(2000);
    expect(meter.sunspec.get(model, exp)).toBe(2250 + 1);
  });
});

describe('householdLoadW', () => {
  it('is deterministic for a seed, higher in the evening than at night', () => {
    const night = Date.UTC(2026, 0, 1, 3);
    const evening = Date.UTC(2026, 0, 1, 19);
    expect(householdLoadW(evening, 5)).toBe(householdLoadW(evening, 5));
    expect(householdLoadW(night + 1234, 5)).not.toBe(householdLoadW(night + 1234, 6));
    let nightSum = 0;
    let eveningSum = 0;
    for (let m = 0; m < 60; m++) {
      nightSum += householdLoadW(night + m * 60_000, 5);
      eveningSum += householdLoadW(evening + m * 60_000, 5);
    }
    expect(eveningSum).toBeGreaterThan(nightSum * 2);
    expect(nightSum / 60).toBeGreaterThan(150);
  });
});
