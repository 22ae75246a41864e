import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { Ticker } from '../ticker.js';
import { WaterHeater, type WaterHeaterOptions } from './water-heater.js';

const HOUR_MS = 3_600_000;

function setup(options: Partial<WaterHeaterOptions> = {}, startMs = Date.UTC(2026, 0, 14, 0)) {
  const clock = new VirtualClock({ startTimeMs: startMs, manual: true });
  const heater = new WaterHeater({ clock, seed: 1, ...options });
  const ticker = new Ticker(clock, 1000);
  ticker.add(heater);
  ticker.start();
  return { clock, heater, ticker };
}

describe('WaterHeater', () => {
  it('thermostat: heats at 2 kW below 55 °C until 60 °C, then stays off until it has cooled below 55 °C', () => {
    const { clock, heater } = setup({ draws: false });
    expect([heater.heating, heater.powerW]).toEqual([true, 2000]);
    // 150 l from 54 to 60 °C at 2 kW: 150 × 4186 × 6 / 2000 ≈ 1884 s (plus a little for the losses).
    let seconds = 0;
    while (heater.heating) {
      clock.advance(1000);
      seconds++;
    }
    expect(seconds).toBeGreaterThan(1884);
    expect(seconds).toBeLessThan(1884 + 120);
    expect(heater.tankC).toBeGreaterThanOrEqual(60);
    expect(heater.powerW).toBe(0);
    // Standing losses only (~60 W): hours pass before it heats again.
    clock.advance(24 * HOUR_MS);
    expect(heater.tankC).toBeLessThan(60);
    expect(heater.tankC).toBeGreaterThan(55);
    expect(heater.powerW).toBe(0);
  });

  it('with the supply off the element cannot heat; the thermostat still calls, and heats when it is back', () => {
    const { clock, heater } = setup({ draws: false, initialC: 50 });
    heater.supplyOn = false;
    heater.recompute();
    expect([heater.heating, heater.powerW]).toEqual([true, 0]);
    const t0 = heater.tankC;
    clock.advance(HOUR_MS);
    expect(heater.tankC).toBeLessThan(t0);
    heater.supplyOn = true;
    heater.recompute();
    expect(heater.powerW).toBe(2000);
  });

  it('energy account: element energy = stored heat change + losses + draws, over two days of draws', () => {
    const { clock, heater } = setup();
    const stored0 = heater.tankEnergyWh();
    let integralWh = 0;
    for (let s = 0; s < 2 * 24 * 3600; s++) {
      integralWh += heater.powerW / 3600;
      clock.advance(1000);
    }
    expect(heater.energyWh).toBeCloseTo(integralWh, 6);
    expect(heater.tankEnergyWh() - stored0).toBeCloseTo(heater.energyWh - heater.lossWh - heater.drawWh, 3);
    // A household's worth of hot water (~100–300 l a day), kept between ~45 and 60 °C.
    expect(heater.drawnL / 2).toBeGreaterThan(100);
    expect(heater.drawnL / 2).toBeLessThan(300);
    expect(heater.energyWh / 2).toBeGreaterThan(3000);
    expect(heater.energyWh / 2).toBeLessThan(12_000);
  });

  it('draws are seeded: the same seed draws at the same minutes, another seed at others', () => {
    const drawMinutes = (seed: number) => {
      const { clock, heater } = setup({ seed });
      const minutes: number[] = [];
      for (let m = 0; m < 24 * 60; m++) {
        clock.advance(60_000);
        if (heater.drawing) minutes.push(m);
      }
      return minutes;
    };
    const a = drawMinutes(4);
    expect(drawMinutes(4)).toEqual(a);
    expect(drawMinutes(5)).not.toEqual(a);
    // Mostly in the morning (06:30–08:00) and the evening (18:00–22:00).
    const peak = a.filter((m) => (m >= 390 && m < 480) || (m >= 1080 && m < 1320));
    expect(peak.length / a.length).toBeGreaterThan(0.5);
  });
});
