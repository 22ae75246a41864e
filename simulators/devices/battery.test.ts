import { describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { Ticker } from '../ticker.js';
import { writeMultiple } from './test-support.js';
import { HomeBattery } from './battery.js';

function setup(variant: 'inverter' | 'der', initialSocPct = 50, surplusW = 0) {
  const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 1, 12), manual: true });
  const battery = new HomeBattery({ clock, variant, capacityWh: 10_000, maxChargeW: 5000, maxDischargeW: 5000, minSocPct: 5, initialSocPct });
  let surplus = surplusW;
  battery.setSurplusSource(() => surplus);
  const ticker = new Ticker(clock, 1000);
  ticker.add(battery);
  ticker.start();
  return { clock, battery, setSurplus: (w: number) => (surplus = w) };
}

function busWrite(b: HomeBattery, modelId: number, values: Record<string, number>): number | undefined {
  for (const [name, value] of Object.entries(values)) {
    const p = b.sunspec.point(modelId, name);
    const raw = Math.round(value / 10 ** b.sunspec.scaleFactor(modelId, name));
    const regs = p.size === 2 ? [(raw >>> 16) & 0xffff, raw & 0xffff] : [raw & 0xffff];
    const code = b.sunspec.image.writeFromBus(p.address, regs);
    if (code !== undefined) return code;
  }
  return undefined;
}

function fc16(b: HomeBattery, address: number, values: readonly number[]): number | undefined {
  return writeMultiple(b.sunspec.image, address, values);
}

const int32 = (v: number) => [(v >>> 16) & 0xffff, v & 0xffff];

describe.each(['inverter', 'der'] as const)('HomeBattery (%s)', (variant) => {
  const soc = variant === 'inverter' ? { model: 124, point: 'ChaState' } : { model: 713, point: 'SoC' };
  const ac = variant === 'inverter' ? 103 : 701;

  it('self-consumption: charges from surplus, discharges to cover load, within max power', () => {
    const { clock, battery, setSurplus } = setup(variant, 50, 2000);
    clock.advance(1000);
    expect(battery.powerW).toBe(2000);
    expect(battery.sunspec.get(ac, 'W')).toBe(-2000); // inverter sign: charging draws AC
    clock.advance(1_799_000); // 30 min in all at 2 kW = 1 kWh = 10 %
    expect(battery.socPct).toBeCloseTo(60, 6);
    expect(battery.sunspec.get(soc.model, soc.point)).toBe(60);
    setSurplus(-9000);
    clock.advance(1000);
    expect(battery.powerW).toBe(-5000);
    expect(battery.sunspec.get(ac, 'W')).toBe(5000);
  });

  it('stays within min and max SoC', () => {
    const { clock, battery, setSurplus } = setup(variant, 99, 5000);
    clock.advance(3_600_000);
    expect(battery.socPct).toBe(100);
    expect(battery.powerW).toBe(0);
    setSurplus(-5000);
    clock.advance(3 * 3_600_000);
    expect(battery.socPct).toBeCloseTo(5, 9);
    expect(battery.powerW).toBe(0);
    expect(battery.dischargedWh).toBeCloseTo(9500, 6);
  });

  it('follows a setpoint written by the agent and reverts after the revert timer', () => {
    const { clock, battery } = setup(variant, 50, 0);
    if (variant === 'inverter') {
      // hold 3 kW charge: window [+60 %, +60 %] of 5 kW
      expect(busWrite(battery, 124, { InOutWRte_RvrtTms: 120, InWRte: 60, OutWRte: -60, StorCtl_Mod: 3 })).toBeUndefined();
      expect(busWrite(battery, 124, { InWRte: 101 })).toBe(3);
    } else {
      // hold 3 kW charge = −3000 W injection
      expect(busWrite(battery, 704, { WSetRvrtTms: 120, WSetMod: 1, WSet: -3000, WSetEna: 1 })).toBeUndefined();
      expect(busWrite(battery, 704, { WSet: 9000 })).toBe(3);
    }
    expect(battery.powerW).toBe(3000);
    expect(battery.controlWindowW).toEqual({ minW: 3000, maxW: 3000 });
    clock.advance(119_000);
    expect(battery.powerW).toBe(3000);
    expect(battery.socPct).toBeCloseTo(50 + (100 * 3000 * 119) / 3600 / 10_000, 6);
    clock.advance(1000);
    expect(battery.controlWindowW).toBeUndefined();
    expect(battery.powerW).toBe(0); // back to self-consumption with no surplus
  });
});

describe('HomeBattery (inverter) discharge setpoint', () => {
  it('InWRte −40 / OutWRte 40 holds a 2 kW discharge even with PV surplus', () => {
    const { clock, battery } = setup('inverter', 50, 4000);
    busWrite(battery, 124, { InWRte: -40, OutWRte: 40, StorCtl_Mod: 3 });
    clock.advance(10_000);
    expect(battery.powerW).toBe(-2000);
    busWrite(battery, 124, { StorCtl_Mod: 0 });
    expect(battery.powerW).toBe(4000);
  });
});

describe('HomeBattery: a setpoint in one FC16', () => {
  it('124: OutWRte, InWRte, InOutWRte_WinTms, InOutWRte_RvrtTms (offsets 12..15) together; StorCtl_Mod once', () => {
    const { clock, battery } = setup('inverter', 50, 0);
    const start = battery.sunspec.point(124, 'OutWRte').address;
    expect(battery.sunspec.point(124, 'InOutWRte_RvrtTms').address).toBe(start + 3);
    expect(battery.sunspec.get(124, 'InOutWRte_WinTms')).toBe(0);
    expect(battery.sunspec.get(124, 'InOutWRte_RmpTms')).toBe(0);
    // hold 3 kW charge: OutWRte −60 %, InWRte 60 % (sf −1), window 0, timer 120 s
    expect(fc16(battery, start, [-600, 600, 0, 120])).toBeUndefined();
    expect(battery.controlWindowW).toBeUndefined(); // StorCtl_Mod still 0
    expect(fc16(battery, battery.sunspec.point(124, 'StorCtl_Mod').address, [3])).toBeUndefined();
    expect(battery.powerW).toBe(3000);
    expect(battery.revertRemainingMs).toBe(120_000);
    // The next setpoint without StorCtl_Mod (already 3): applied at once, the timer restarts.
    clock.advance(60_000);
    expect(fc16(battery, start, [-400, 400, 0, 120])).toBeUndefined();
    expect(battery.powerW).toBe(2000);
    expect(battery.revertRemainingMs).toBe(120_000);
    clock.advance(119_000);
    expect(battery.powerW).toBe(2000);
    clock.advance(1000);
    expect(battery.controlWindowW).toBeUndefined();
    expect(battery.sunspec.get(124, 'StorCtl_Mod')).toBe(0);
    // One value refused: nothing of the block is written.
    expect(fc16(battery, start, [-1010, 1010, 0, 120])).toBe(3);
    expect(battery.sunspec.get(124, 'InWRte')).toBe(40);
  });

  it('704: WSetEna .. WSetRvrtTms (offsets 22..32) together, the enable first in register order', () => {
    const { clock, battery } = setup('der', 50, 0);
    const start = battery.sunspec.point(704, 'WSetEna').address;
    expect(battery.sunspec.point(704, 'WSetRvrtTms').address).toBe(start + 9);
    expect(battery.sunspec.get(704, 'WSetPctRvrt')).toBe(0);
    // WSetEna 1, WSetMod 1 (W), WSet −3000 (3 kW charge), WSetRvrt 0, WSetPct 0, WSetPctRvrt 0, WSetEnaRvrt 0, 120 s
    expect(fc16(battery, start, [1, 1, ...int32(-3000), ...int32(0), 0, 0, 0, ...int32(120)])).toBeUndefined();
    expect(battery.powerW).toBe(3000);
    expect(battery.controlWindowW).toEqual({ minW: 3000, maxW: 3000 });
    expect(battery.revertRemainingMs).toBe(120_000);
    clock.advance(120_000);
    expect(battery.controlWindowW).toBeUndefined();
    // WSetPctRvrt −101 % is refused: nothing of the block is written.
    expect(fc16(battery, start, [1, 1, ...int32(-2000), ...int32(0), 0, -1010, 0, ...int32(120)])).toBe(3);
    expect(battery.sunspec.get(704, 'WSetEna')).toBe(0);
    expect(battery.sunspec.get(704, 'WSet')).toBe(-3000);
  });
});
