import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { Ticker } from '../ticker.js';
import { EvCharging } from './ev.js';

const HOUR_MS = 3_600_000;

function setup(startMs = Date.UTC(2026, 0, 14, 12), options: Partial<ConstructorParameters<typeof EvCharging>[0]> = {}) {
  const clock = new VirtualClock({ startTimeMs: startMs, manual: true });
  const ev = new EvCharging({ clock, arrivals: false, ...options });
  const ticker = new Ticker(clock, 1000);
  ticker.add(ev);
  ticker.start();
  return { clock, ev, ticker };
}

describe('EvCharging', () => {
  it('draws phases × 230 V × min(setpoint, vehicle max) when enabled and wanting energy; states A/B/C', () => {
    const { clock, ev } = setup();
    expect(ev.pilot).toBe('A');
    expect(ev.powerW).toBe(0);
    ev.plugIn({ energyWantedWh: 20_000, socPct: 30 });
    expect(ev.pilot).toBe('C');
    expect(ev.powerW).toBe(3 * 230 * 16);
    ev.offeredCurrentA = 10;
    ev.recompute();
    expect(ev.powerW).toBe(3 * 230 * 10);
    expect(ev.currentA).toBeCloseTo(10, 9);
    ev.offeredCurrentA = 32; // above the vehicle's onboard charger (16 A)
    ev.recompute();
    expect(ev.powerW).toBe(3 * 230 * 16);
    ev.offeredCurrentA = 5; // below 6 A: nothing offered
    ev.recompute();
    expect([ev.powerW, ev.pilot]).toEqual([0, 'B']);
    ev.offeredCurrentA = 16;
    ev.enabled = false;
    ev.recompute();
    expect([ev.powerW, ev.pilot]).toEqual([0, 'B']);
    ev.enabled = true;
    ev.recompute();
    // A single-phase vehicle on a three-phase charger.
    ev.plugIn({ energyWantedWh: 5000, phases: 1, maxCurrentA: 32 });
    expect(ev.powerW).toBe(230 * 16);
    expect(ev.activePhases).toBe(1);
    clock.advance(1000);
    ev.unplug();
    expect([ev.pilot, ev.powerW, ev.plugged]).toEqual(['A', 0, false]);
  });

  it('session and lifetime counters are the integral of the power; it stops at the energy wanted', () => {
    const { clock, ev } = setup(Date.UTC(2026, 0, 14, 12), { initialEnergyWh: 1000 });
    ev.plugIn({ energyWantedWh: 5520, socPct: 20 });
    let integralWh = 0;
    for (let s = 0; s < 2 * 3600; s++) {
      integralWh += ev.powerW / 3600;
      clock.advance(1000);
    }
    // 11 040 W for half an hour = 5520 Wh, then nothing.
    expect(ev.sessionEnergyWh).toBeCloseTo(integralWh, 6);
    expect(ev.sessionEnergyWh).toBeGreaterThanOrEqual(5520);
    expect(ev.sessionEnergyWh).toBeLessThan(5520 + 11_040 / 3600 + 1e-6);
    expect(ev.lifetimeEnergyWh).toBeCloseTo(1000 + integralWh, 6);
    expect([ev.powerW, ev.pilot, ev.wantsEnergy]).toEqual([0, 'B', false]);
    // SoC rose by the energy stored (92 % of what was drawn) over 60 kWh.
    expect(ev.vehicle!.socPct).toBeCloseTo(20 + (100 * ev.sessionEnergyWh * 0.92) / 60_000, 6);
  });

  it('tapers linearly above 80 % state of charge', () => {
    const { clock, ev } = setup();
    ev.plugIn({ energyWantedWh: 60_000, socPct: 70 });
    const fullW = 3 * 230 * 16;
    const seen: Array<[number, number]> = [];
    for (let m = 0; m < 8 * 60; m++) {
      clock.advance(60_000);
      seen.push([ev.vehicle!.socPct, ev.powerW]);
    }
    for (const [soc, powerW] of seen) {
      const expected = soc >= 100 ? 0 : soc <= 80 ? fullW : fullW * Math.max(0.1, 1 - (0.9 * (soc - 80)) / 20);
      expect(powerW).toBeCloseTo(expected, -1);
    }
    expect(seen.some(([soc, powerW]) => soc > 90 && soc < 100 && powerW < fullW / 2)).toBe(true);
    expect(seen.at(-1)).toEqual([100, 0]); // full: the vehicle stops drawing
    // Monotonic: power never rises as the battery fills.
    for (let i = 1; i < seen.length; i++) expect(seen[i]![1]).toBeLessThanOrEqual(seen[i - 1]![1]);
  });

  it('leaves at its departure time and records whether it got what it wanted', () => {
    const start = Date.UTC(2026, 0, 14, 18);
    const { clock, ev } = setup(start);
    ev.plugIn({ energyWantedWh: 30_000, departureMs: start + 2 * HOUR_MS, socPct: 40 });
    clock.advance(2 * HOUR_MS);
    expect(ev.plugged).toBe(false);
    expect(ev.sessions).toHaveLength(1);
    const s = ev.sessions[0]!;
    expect(s.energyChargedWh).toBeCloseTo(2 * 11_040, -1);
    expect(s.satisfied).toBe(false);
    // The session energy stays readable after the vehicle has gone ("current or last session").
    expect(ev.sessionEnergyWh).toBe(s.energyChargedWh);
  });

  it('seeded arrivals: a vehicle comes around 17:30 wanting 8–30 kWh and leaves around 07:00; same seed, same days', () => {
    const run = (seed: number) => {
      const { clock, ev, ticker } = setup(Date.UTC(2026, 0, 14, 8), { arrivals: true, seed });
      for (let m = 0; m < 3 * 24 * 60; m++) clock.advance(60_000);
      ticker.stop();
      return ev.sessions;
    };
    const sessions = run(5);
    expect(sessions).toHaveLength(3);
    for (const s of sessions) {
      const arrivalHour = (s.arrivedMs % (24 * HOUR_MS)) / HOUR_MS;
      const leftHour = (s.leftMs % (24 * HOUR_MS)) / HOUR_MS;
      expect(arrivalHour).toBeGreaterThanOrEqual(16.5);
      expect(arrivalHour).toBeLessThanOrEqual(18.5);
      expect(leftHour).toBeGreaterThanOrEqual(6.5);
      expect(leftHour).toBeLessThanOrEqual(7.5);
      expect(s.energyWantedWh).toBeGreaterThanOrEqual(8000);
      expect(s.energyWantedWh).toBeLessThanOrEqual(30_000);
      // Left alone at full current overnight, every vehicle gets what it wanted.
      expect(s.satisfied).toBe(true);
      expect(s.energyChargedWh).toBeGreaterThanOrEqual(s.energyWantedWh);
    }
    expect(run(5)).toEqual(sessions);
    expect(run(6).map((s) => s.arrivedMs)).not.toEqual(sessions.map((s) => s.arrivedMs));
  });

  it('does not replay an arrival that was due before it started, nor bring a second car', () => {
    const { clock, ev } = setup(Date.UTC(2026, 0, 14, 21), { arrivals: true });
    clock.advance(HOUR_MS);
    expect(ev.plugged).toBe(false);
    const { clock: c2, ev: ev2 } = setup(Date.UTC(2026, 0, 14, 12), { arrivals: true });
    ev2.plugIn({ energyWantedWh: 1000, departureMs: Date.UTC(2026, 0, 15, 7) });
    c2.advance(8 * HOUR_MS);
    expect(ev2.sessions).toHaveLength(0);
    expect(ev2.vehicle?.energyWantedWh).toBe(1000);
  });
});
