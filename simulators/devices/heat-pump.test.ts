import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { Ticker } from '../ticker.js';
import { HeatPump, type HeatPumpOptions } from './heat-pump.js';

const HOUR_MS = 3_600_000;

function setup(options: Partial<HeatPumpOptions> = {}, startMs = Date.UTC(2026, 0, 14, 0)) {
  const clock = new VirtualClock({ startTimeMs: startMs, manual: true });
  const hp = new HeatPump({ clock, seed: 1, ...options });
  const ticker = new Ticker(clock, 1000);
  ticker.add(hp);
  ticker.start();
  return { clock, hp, ticker };
}

/** Advances `hours`, one minute at a time, calling `each` after every minute. */
function run(clock: VirtualClock, hours: number, each: () => void = () => undefined): void {
  for (let m = 0; m < hours * 60; m++) {
    clock.advance(60_000);
    each();
  }
}

describe('HeatPump: house (1R1C) and outdoor profile', () => {
  it('outdoor follows a seeded daily sine, about −3..+7 °C, coldest early morning, same for the same seed', () => {
    const { hp } = setup();
    const day = Date.UTC(2026, 0, 14);
    const temps = Array.from({ length: 24 }, (_, h) => hp.outdoorAt(day + h * HOUR_MS));
    expect(Math.min(...temps)).toBeGreaterThan(-4.5);
    expect(Math.max(...temps)).toBeLessThan(8.5);
    expect(Math.max(...temps) - Math.min(...temps)).toBeGreaterThan(7);
    expect(temps.indexOf(Math.min(...temps))).toBeGreaterThanOrEqual(3);
    expect(temps.indexOf(Math.min(...temps))).toBeLessThanOrEqual(7);
    const again = setup().hp;
    expect(again.outdoorAt(day + 5 * HOUR_MS)).toBe(hp.outdoorAt(day + 5 * HOUR_MS));
    const other = setup({ seed: 2 }).hp;
    expect(other.outdoorAt(day + 5 * HOUR_MS)).not.toBe(hp.outdoorAt(day + 5 * HOUR_MS));
  });

  it('with the compressor off the room cools toward outdoors at (T_in − T_out) / RC, ~0.5–0.8 K per hour', () => {
    const { clock, hp } = setup({ outdoorAmplitudeC: 0, outdoorMeanC: 5 });
    hp.sgReady = 1;
    hp.recompute();
    expect(hp.electricalPowerW).toBe(0);
    const rateKPerH = ((hp.indoorC - hp.outdoorC) / (hp.resistanceKPerW * hp.capacitanceJPerK)) * 3600;
    const before = hp.indoorC;
    run(clock, 1);
    expect(before - hp.indoorC).toBeCloseTo(rateKPerH, 1); // the rate slows a little within the hour
    expect(before - hp.indoorC).toBeGreaterThan(0.4);
    expect(before - hp.indoorC).toBeLessThan(0.8);
    // Days later it has not crossed the outdoor temperature (and the cooling slowed down).
    run(clock, 72);
    expect(hp.indoorC).toBeGreaterThan(hp.outdoorC);
    expect(hp.indoorC).toBeLessThan(before - 5);
  });

  it('holds the room at its setpoint through cold days, with COP 2.5–4.5 and up to ~2 kW', () => {
    const { clock, hp } = setup();
    const powers: number[] = [];
    run(clock, 48, () => {
      powers.push(hp.electricalPowerW);
      expect(Math.abs(hp.indoorC - 21)).toBeLessThan(0.3);
      expect(hp.cop).toBeGreaterThan(2.5);
      expect(hp.cop).toBeLessThan(4.5);
    });
    expect(Math.min(...powers)).toBeGreaterThan(400); // cold: it runs all the time
    expect(Math.max(...powers)).toBeLessThan(2200);
    // More power when it is colder.
    const night = setup({}, Date.UTC(2026, 0, 14, 5)).hp.electricalPowerW;
    const afternoon = setup({}, Date.UTC(2026, 0, 14, 16)).hp.electricalPowerW;
    expect(night).toBeGreaterThan(afternoon);
  });

  it('responds in the right direction: a flow offset up heats the house (more power), down cools it', () => {
    for (const offset of [3, -3]) {
      const { clock, hp } = setup({ outdoorAmplitudeC: 0 });
      const basePowerW = hp.electricalPowerW;
      hp.flowOffsetC = offset;
      hp.recompute();
      expect(Math.sign(hp.electricalPowerW - basePowerW)).toBe(Math.sign(offset));
      run(clock, 6);
      expect(Math.sign(hp.indoorC - 21)).toBe(Math.sign(offset));
      // The room's own influence pulls back: the drift stays well under the offset.
      expect(Math.abs(hp.indoorC - 21)).toBeLessThan(1.5);
    }
  });
});

describe('HeatPump: SG Ready and PV excess', () => {
  it('blocked: compressor off (frost protection aside); normal; encouraged: target +1 K; forced: full power', () => {
    const { clock, hp } = setup({ outdoorAmplitudeC: 0 });
    const normalW = hp.electricalPowerW;
    hp.sgReady = 1;
    hp.recompute();
    expect([hp.electricalPowerW, hp.heatW, hp.compressorOn]).toEqual([0, 0, false]);
    hp.sgReady = 3;
    hp.recompute();
    expect(hp.targetC).toBe(22);
    expect(hp.electricalPowerW).toBeGreaterThan(normalW);
    run(clock, 12);
    expect(hp.indoorC).toBeGreaterThan(21.5);
    hp.sgReady = 4;
    hp.recompute();
    expect(hp.electricalPowerW).toBe(hp.maxElectricalPowerW);
    expect(hp.heatW).toBeCloseTo(hp.maxElectricalPowerW * hp.cop, 6);
    const t0 = hp.indoorC;
    run(clock, 1);
    expect(hp.indoorC).toBeGreaterThan(t0 + 0.2);
    hp.sgReady = 2;
    hp.recompute();
    expect(hp.electricalPowerW).toBeLessThan(normalW); // the room is warm: it backs off
    // Frost protection: blocked, yet it heats a room below 10 °C.
    const cold = setup({ initialIndoorC: 8, outdoorAmplitudeC: 0 }).hp;
    cold.sgReady = 1;
    cold.recompute();
    expect(cold.electricalPowerW).toBeGreaterThan(0);
  });

  it('PV excess: runs at least at the offered power until the room is 2 K above target', () => {
    const { clock, hp } = setup({ outdoorAmplitudeC: 0, outdoorMeanC: 5 });
    hp.excessPowerW = 2500;
    hp.recompute();
    expect(hp.electricalPowerW).toBe(2500);
    let maxIndoorC = hp.indoorC;
    let backedOff = false;
    run(clock, 48, () => {
      maxIndoorC = Math.max(maxIndoorC, hp.indoorC);
      if (hp.indoorC >= 23) backedOff ||= hp.electricalPowerW < 2500;
      else expect(hp.electricalPowerW).toBeGreaterThanOrEqual(2500);
    });
    expect(maxIndoorC).toBeGreaterThan(22.9);
    expect(maxIndoorC).toBeLessThan(23.1);
    expect(backedOff).toBe(true);
    hp.excessPowerW = 0;
    hp.sgReady = 1;
    hp.recompute();
    expect(hp.electricalPowerW).toBe(0); // blocked wins
  });
});

describe('HeatPump: energy account', () => {
  it('electrical and heat counters are the integrals of power; the house stores heat − loss', () => {
    const { clock, hp } = setup({ initialEnergyWh: 1000 });
    hp.flowOffsetC = 2;
    hp.recompute();
    const heat0 = hp.heatEnergyWh;
    const indoor0 = hp.indoorC;
    let electricalWh = 0;
    let heatWh = 0;
    let lossWh = 0;
    for (let s = 0; s < 6 * 3600; s++) {
      if (s === 3 * 3600) {
        hp.sgReady = 4;
        hp.recompute();
      }
      electricalWh += hp.electricalPowerW / 3600;
      heatWh += hp.heatW / 3600;
      lossWh += hp.lossW / 3600;
      clock.advance(1000);
    }
    expect(hp.energyWh - 1000).toBeCloseTo(electricalWh, 6);
    expect(hp.heatEnergyWh - heat0).toBeCloseTo(heatWh, 6);
    const storedWh = (hp.capacitanceJPerK * (hp.indoorC - indoor0)) / 3600;
    expect(storedWh).toBeCloseTo(heatWh - lossWh, 3);
    expect(heatWh / electricalWh).toBeGreaterThan(2.5);
    expect(heatWh / electricalWh).toBeLessThan(4.5);
  });
});
