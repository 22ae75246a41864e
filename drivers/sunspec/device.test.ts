/**
 * The meter, pv and battery classes and the scan, against FakeUnit: an in-memory fake of OUR
 * ModbusUnit interface (fake-unit.ts), not of a device. Register images are written by hand; point
 * offsets were read from the model JSON files and are noted next to each value. The same classes
 * against simulated devices over real Modbus TCP/RTU are tested end to end in test/.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Battery, Meter, Pv } from '../classes.js';
import { BadDataError, ModbusExceptionError, NotSupportedError, TimeoutError } from '../errors.js';
import { silentLog } from '../log.js';
import { decodeModelPrefix, encodePoint } from './codec.js';
import { createSunSpecDevice } from './device.js';
import { asciiRegisters, FakeUnit } from './fake-unit.js';
import { getModelDef } from './models/index.js';
import { scanUnits, suggestClasses, suggestConfig } from './scan.js';

const U = 0xffff;
const S = 0x8000;
const neg = (v: number) => v & 0xffff;
const SUNS = [0x5375, 0x6e53];
const END = [0xffff, 0];

/** A model of `total` registers (ID, L = total - 2, zeros) with `values` at their offsets. */
function model(id: number, total: number, values: Record<number, number | number[]>): number[] {
  const r = new Array<number>(total).fill(0);
  r[0] = id;
  r[1] = total - 2;
  for (const [offset, v] of Object.entries(values)) {
    const words = Array.isArray(v) ? v : [v];
    words.forEach((w, i) => (r[Number(offset) + i] = w & 0xffff));
  }
  return r;
}

/** Common model, 68 registers: Mn at 2, Md at 18, Vr at 42, SN at 50 (16/16/8/16 registers). */
function common(mn: string, md: string, sn: string, vr: string): number[] {
  return model(1, 68, { 2: asciiRegisters(mn, 16), 18: asciiRegisters(md, 16), 42: asciiRegisters(vr, 8), 50: asciiRegisters(sn, 16) });
}

/**
 * PV inverter at 40000: common 40002 (68), 103 at 40070 (52), 120 at 40122 (28), 121 at 40150 (32),
 * 123 at 40182 (26), end marker at 40208.
 */
function pvUnit(): FakeUnit {
  const unit = new FakeUnit(1, 'fake pv');
  unit.set(40000, [
    ...SUNS,
    ...common('Fronius', 'Symo 8.2', 'PV-0001', '3.14'),
    // 103: W 14, W_SF 15, WH 24-25, WH_SF 26
    ...model(103, 52, { 14: 523, 15: 1, 24: [0x0012, 0xd687], 26: 0 }),
    // 120: WRtg 3, WRtg_SF 4
    ...model(120, 28, { 3: 8200, 4: 0 }),
    // 121: WMax 2, WMax_SF 22
    ...model(121, 32, { 2: 800, 22: 1 }),
    // 123: WMaxLimPct 5, WMaxLimPct_WinTms 6, WMaxLimPct_RvrtTms 7, WMaxLimPct_RmpTms 8,
    //      WMaxLim_Ena 9, WMaxLimPct_SF 23
    ...model(123, 26, { 5: 1000, 6: 0, 7: 0, 8: 0, 9: 0, 23: neg(-1) }),
    ...END,
  ]);
  return unit;
}

/** Meter at base 0 (nothing at 40000): common (old, L=65) at 2, 203 at 69 (107 registers), end at 176. */
function meterUnit(): FakeUnit {
  const unit = new FakeUnit(2, 'fake meter');
  const c = common('Acme', 'M3', 'MTR-9', '1').slice(0, 67);
  c[1] = 65;
  unit.set(0, [
    ...SUNS,
    ...c,
    // 203: PhV 7, V_SF 15, Hz 16, Hz_SF 17, W 18, W_SF 22, TotWhExp 38-39, TotWhImp 46-47, TotWh_SF 54
    ...model(203, 107, { 7: 2305, 15: neg(-1), 16: 4999, 17: neg(-2), 18: neg(-2500), 22: 0, 38: [0x0001, 0xe240], 46: [0, 5000], 54: 1 }),
    ...END,
  ]);
  return unit;
}

/** Battery with basic storage controls at 40000: common 40002, 103 at 40070 (52), 120 at 40122 (28),
 * 124 at 40150 (26), end at 40176. */
function basicBatteryUnit(): FakeUnit {
  const unit = new FakeUnit(3, 'fake battery 124');
  unit.set(40000, [
    ...SUNS,
    ...common('Acme', 'Store 10', 'B-1', '2'),
    // 103: W 14 (inverter output: negative while the battery charges), W_SF 15
    ...model(103, 52, { 14: neg(-2000), 15: 0 }),
    // 120: WHRtg 19, WHRtg_SF 20, AhrRtg 21, AhrRtg_SF 22, MaxDisChaRte 25, MaxDisChaRte_SF 26
    ...model(120, 28, { 19: 1000, 20: 1, 21: U, 22: S, 25: 4500, 26: 0 }),
    // 124: WChaMax 2, StorCtl_Mod 5, ChaState 8, OutWRte 12, InWRte 13, InOutWRte_WinTms 14,
    //      InOutWRte_RvrtTms 15, InOutWRte_RmpTms 16, WChaMax_SF 18, ChaState_SF 22, InOutWRte_SF 25
    ...model(124, 26, { 2: 500, 5: 0, 8: 655, 12: 10000, 13: 10000, 14: 0, 15: 0, 16: 0, 18: 1, 22: neg(-1), 25: neg(-2) }),
    ...END,
  ]);
  return unit;
}

/** DER battery at 40000: common 40002, 701 at 40070 (155), 702 at 40225 (52), 704 at 40277 (67),
 * 802 at 40344 (64), end at 40408. */
function derBatteryUnit(): FakeUnit {
  const unit = new FakeUnit(4, 'fake der battery');
  unit.set(40000, [
    ...SUNS,
    ...common('Acme', 'DER 5', 'D-5', '5'),
    // 701: W 10 (positive = generation, so negative while charging), W_SF 116
    ...model(701, 155, { 10: neg(-1500), 116: 0 }),
    // 702: WChaRteMaxRtg 10, WDisChaRteMaxRtg 11, WChaRteMax 34, WDisChaRteMax 35, W_SF 45
    ...model(702, 52, { 10: 500, 11: 600, 34: U, 35: U, 45: 1 }),
    // 704: WSetEna 22, WSetMod 23, WSet 24-25, WSetRvrt 26-27, WSetPct 28, WSetPctRvrt 29,
    //      WSetEnaRvrt 30, WSetRvrtTms 31-32, WSet_SF 55, WSetPct_SF 56
    ...model(704, 67, { 22: 0, 23: 0, 24: [0, 0], 26: [0, 0], 28: 0, 29: 0, 30: 0, 31: [0, 0], 55: 0, 56: neg(-1) }),
    // 802: WHRtg 3, SoC 11, WHRtg_SF 53, SoC_SF 56
    ...model(802, 64, { 3: 1350, 11: 805, 53: 1, 56: neg(-1) }),
    ...END,
  ]);
  return unit;
}

const create = {
  pv: (unit: FakeUnit) => createSunSpecDevice({ id: 'pv', deviceClass: 'pv', unit, log: silentLog }),
  meter: (unit: FakeUnit) => createSunSpecDevice({ id: 'meter', deviceClass: 'meter', unit, log: silentLog }),
  battery: (unit: FakeUnit) => createSunSpecDevice({ id: 'battery', deviceClass: 'battery', unit, log: silentLog }),
};

describe('SunSpec PV inverter', () => {
  it('reads power, energy, rating and no limit in one readRanges call of two transactions', async () => {
    const unit = pvUnit();
    const pv: Pv = await create.pv(unit);
    expect(pv.describe()).toBe('SunSpec Fronius Symo 8.2 (models 1,103,120,121,123), serial PV-0001, version 3.14');
    unit.clearLog();
    const reading = await pv.read();
    expect(reading).toEqual({ powerW: 5230, energyWh: 1234567, ratedPowerW: 8000 });
    // One range per model, from its ID register to the last needed point (or scale factor).
    expect(unit.readRangesCalls).toEqual([
      [
        { address: 40070, count: 27 }, // 103 up to WH_SF
        { address: 40122, count: 5 }, // 120 up to WRtg_SF
        { address: 40150, count: 23 }, // 121 up to WMax_SF
        { address: 40182, count: 24 }, // 123 up to WMaxLimPct_SF
      ],
    ]);
    // 40070..40206 is 136 registers: two reads are the minimum, merged across the gaps between the
    // models, and cut at a model's start rather than through 123.
    expect(unit.reads.map((r) => [r.address, r.count, r.priority])).toEqual([
      [40070, 103, 'poll'],
      [40182, 24, 'poll'],
    ]);
  });

  it('curtails: percentage with its scale factor, revert timer and enable in one transaction', async () => {
    const unit = pvUnit();
    const pv = await create.pv(unit);
    await pv.read();
    unit.clearLog();
    await pv.setLimitPct(42.5, 90_500);
    expect(unit.transactions).toEqual([
      // WMaxLimPct 42.5 % (SF -1), WinTms kept (0), RvrtTms 91 s (rounded up), RmpTms kept (0), WMaxLim_Ena
      { type: 'write', address: 40187, values: [425, 0, 91, 0, 1] },
    ]);
    expect(unit.reads).toHaveLength(0); // the scale factor and the kept points came from the last poll
    expect((await pv.read()).limitPct).toBe(42.5);
    await pv.clearLimit();
    expect(unit.writes.at(-1)).toEqual({ address: 40191, values: [0] });
    expect((await pv.read()).limitPct).toBeUndefined();
  });

  it('reads the scale factor first when no poll has been made', async () => {
    const unit = pvUnit();
    const pv = await create.pv(unit);
    unit.clearLog();
    await pv.setLimitPct(100, 1000);
    expect(unit.reads.map((r) => r.priority)).toEqual(['write']);
    expect(unit.writes).toEqual([{ address: 40187, values: [1000, 0, 1, 0, 1] }]);
  });

  it('keeps WMaxLimPct_WinTms and WMaxLimPct_RmpTms exactly as the device reported them', async () => {
    const unit = pvUnit();
    unit.set(40188, [37]).set(40190, [65534]);
    const pv = await create.pv(unit);
    await pv.read();
    unit.clearLog();
    await pv.setLimitPct(10, 5000);
    expect(unit.writes).toEqual([{ address: 40187, values: [100, 37, 5, 65534, 1] }]);
    expect(unit.get(40188)).toEqual([37]);
    expect(unit.get(40190)).toEqual([65534]);
  });

  for (const [point, address] of [
    ['WMaxLimPct_WinTms', 40188],
    ['WMaxLimPct_RmpTms', 40190],
  ] as const) {
    it(`falls back to percentage, timer, enable when ${point} is not implemented`, async () => {
      const unit = pvUnit();
      unit.set(address, [U]);
      const pv = await create.pv(unit);
      await pv.read();
      unit.clearLog();
      await pv.setLimitPct(42.5, 90_500);
      expect(unit.transactions).toEqual([
        { type: 'write', address: 40187, values: [425] }, // WMaxLimPct
        { type: 'write', address: 40189, values: [91] }, // WMaxLimPct_RvrtTms
        { type: 'write', address: 40191, values: [1] }, // WMaxLim_Ena last
      ]);
      expect(unit.get(address)).toEqual([U]);
    });
  }

  it('without a revert timer: percentage, then enable (the unimplemented timer is not written)', async () => {
    const unit = pvUnit();
    unit.set(40189, [U]); // WMaxLimPct_RvrtTms
    const pv = await create.pv(unit);
    await pv.read();
    unit.clearLog();
    await pv.setLimitPct(50, 60_000);
    expect(unit.writes).toEqual([
      { address: 40187, values: [500] },
      { address: 40191, values: [1] },
    ]);
    expect(unit.get(40189)).toEqual([U]);
  });

  it('refuses a limit outside 0..100 % without writing', async () => {
    const unit = pvUnit();
    const pv = await create.pv(unit);
    await pv.read();
    unit.clearLog();
    await expect(pv.setLimitPct(101, 60_000)).rejects.toBeInstanceOf(RangeError);
    await expect(pv.setLimitPct(-1, 60_000)).rejects.toBeInstanceOf(RangeError);
    await expect(pv.setLimitPct(Number.NaN, 60_000)).rejects.toBeInstanceOf(RangeError);
    await expect(pv.setLimitPct(50, 0)).rejects.toBeInstanceOf(RangeError);
    expect(unit.writes).toEqual([]);
  });

  it('names device, model, point and address when a required value is unimplemented', async () => {
    const unit = pvUnit();
    const pv = await create.pv(unit);
    unit.set(40084, [S]); // 103 W
    const err = await pv.read().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BadDataError);
    expect((err as Error).message).toBe('pv: SunSpec model 103 point W at address 40084 is not implemented or its scale factor W_SF (reads as "no value")');
    // an unimplemented scale factor is the same
    unit.set(40084, [523]).set(40085, [S]);
    await expect(pv.read()).rejects.toThrow(/point W at address 40084/);
  });

  it('notices when the map changed under it', async () => {
    const unit = pvUnit();
    const pv = await create.pv(unit);
    unit.set(40070, [101]);
    await expect(pv.read()).rejects.toThrow(/model 103 at address 40070 now reads ID=101/);
  });

  it('is not supported without an inverter model; a used model with a wrong L is bad data', async () => {
    await expect(create.pv(meterUnit())).rejects.toThrow(NotSupportedError);
    await expect(create.pv(meterUnit())).rejects.toThrow(/no SunSpec model for PV AC measurement \(looked for 103, .*the device has 1, 203\)/);
    const unit = new FakeUnit();
    unit.set(40000, [...SUNS, ...model(103, 50, {}), ...END]); // 103 with L=48
    await expect(create.pv(unit)).rejects.toThrow(/model 103 at address 40002 has length L=48/);
  });
});

/** DER PV inverter at 40000: common 40002, 701 at 40070 (155), 702 at 40225 (52), 704 at 40277 (67),
 * end at 40344. */
function derPvUnit(): FakeUnit {
  const unit = new FakeUnit(6, 'fake der pv');
  unit.set(40000, [
    ...SUNS,
    ...common('Acme', 'DER PV', 'P-7', '7'),
    // 701: W 10, TotWhInj 19-22, W_SF 116, TotWh_SF 120
    ...model(701, 155, { 10: 4000, 19: [0, 0, 0, 900], 116: 0, 120: 0 }),
    // 702: WMaxRtg 2, WMax 26, W_SF 45
    ...model(702, 52, { 2: 800, 26: 800, 45: 1 }),
    // 704: WMaxLimPctEna 14, WMaxLimPct 15, WMaxLimPctRvrt 16, WMaxLimPctEnaRvrt 17,
    //      WMaxLimPctRvrtTms 18-19, WMaxLimPct_SF 54
    ...model(704, 67, { 14: 0, 15: 1000, 16: 333, 17: 0, 18: [0, 0], 54: neg(-1) }),
    ...END,
  ]);
  return unit;
}

describe('SunSpec PV inverter (DER models 701/702/704)', () => {
  it('curtails with enable, percentage, reversion and timer in one transaction (offsets 14..19)', async () => {
    const unit = derPvUnit();
    const pv = await create.pv(unit);
    expect(await pv.read()).toEqual({ powerW: 4000, energyWh: 900, ratedPowerW: 8000 });
    unit.clearLog();
    await pv.setLimitPct(42.5, 90_500);
    expect(unit.transactions).toEqual([
      // WMaxLimPctEna, WMaxLimPct 42.5 % (SF -1), WMaxLimPctRvrt kept (33.3 %, raw 333),
      // WMaxLimPctEnaRvrt = DISABLED, WMaxLimPctRvrtTms 91 s
      { type: 'write', address: 40291, values: [1, 425, 333, 0, 0, 91] },
    ]);
    expect((await pv.read()).limitPct).toBe(42.5);
    await pv.clearLimit();
    expect(unit.writes.at(-1)).toEqual({ address: 40291, values: [0] });
    expect((await pv.read()).limitPct).toBeUndefined();
  });

  it('falls back to percentage, reversion and timer, then enable when WMaxLimPctRvrt is not implemented', async () => {
    const unit = derPvUnit();
    unit.set(40293, [U]);
    const pv = await create.pv(unit);
    await pv.read();
    unit.clearLog();
    await pv.setLimitPct(42.5, 90_500);
    expect(unit.transactions).toEqual([
      { type: 'write', address: 40292, values: [425] }, // WMaxLimPct
      { type: 'write', address: 40294, values: [0, 0, 91] }, // WMaxLimPctEnaRvrt, WMaxLimPctRvrtTms
      { type: 'write', address: 40291, values: [1] }, // WMaxLimPctEna last
    ]);
    expect(unit.get(40293)).toEqual([U]);
  });

  it('without WMaxLimPctEnaRvrt and timer: enable and percentage in one write, nothing else', async () => {
    const unit = derPvUnit();
    unit.set(40294, [U, U, U]);
    const pv = await create.pv(unit);
    await pv.read();
    unit.clearLog();
    await pv.setLimitPct(20, 60_000);
    expect(unit.writes).toEqual([{ address: 40291, values: [1, 200] }]);
    expect(unit.get(40294, 3)).toEqual([U, U, U]);
  });
});

describe('SunSpec meter', () => {
  it('reads model 203 found at base 0, in one transaction', async () => {
    const unit = meterUnit();
    const meter: Meter = await create.meter(unit);
    expect(meter.describe()).toBe('SunSpec Acme M3 (models 1,203), serial MTR-9, version 1');
    unit.clearLog();
    expect(await meter.read()).toEqual({ powerW: -2500, importWh: 50000, exportWh: 1234560, voltageV: 230.5, frequencyHz: 49.99 });
    // model 203 at 69: ID up to TotWh_SF (offset 54) = 55 registers
    expect(unit.reads.map((r) => [r.address, r.count])).toEqual([[69, 55]]);
  });

  it('reads a DER-style meter (701) with import positive', async () => {
    const unit = new FakeUnit(5);
    unit.set(50000, [
      ...SUNS,
      ...common('Acme', 'DERM', 'X', '1'),
      // 701 at 50070: W 10, LNV 16, Hz 17-18, TotWhInj 19-22, TotWhAbs 23-26, V_SF 114, Hz_SF 115, W_SF 116, TotWh_SF 120
      ...model(701, 155, { 10: neg(-800), 16: 2310, 17: [0, 50020], 19: [0, 0, 0, 700], 23: [0, 0, 0, 9000], 114: neg(-1), 115: neg(-3), 116: 0, 120: 0 }),
      ...END,
    ]);
    const meter = await create.meter(unit);
    unit.clearLog();
    expect(await meter.read()).toEqual({ powerW: 800, importWh: 9000, exportWh: 700, voltageV: 231, frequencyHz: 50.02 });
    expect(unit.reads.map((r) => [r.address, r.count])).toEqual([[50070, 121]]);
  });

  it('leaves optional values absent', async () => {
    const unit = meterUnit();
    const meter = await create.meter(unit);
    unit.set(69 + 46, [0, 0]); // TotWhImp: an accumulator of 0 is "not accumulated"
    unit.set(69 + 17, [S]); // Hz_SF unimplemented
    const r = await meter.read();
    expect(r.importWh).toBeUndefined();
    expect(r.frequencyHz).toBeUndefined();
    expect(r.powerW).toBe(-2500);
  });
});

describe('SunSpec battery (model 124)', () => {
  it('reads SoC, capacity, limits and AC power (positive while charging)', async () => {
    const unit = basicBatteryUnit();
    const battery: Battery = await create.battery(unit);
    unit.clearLog();
    expect(await battery.read()).toEqual({ powerW: 2000, socPct: 65.5, capacityWh: 10000, maxChargeW: 5000, maxDischargeW: 4500 });
    expect(unit.readRangesCalls).toHaveLength(1);
    expect(unit.reads).toHaveLength(1); // 40070..40176: 106 registers
  });

  it('holds a charge setpoint as a one-value window with its timer in one write, then the mode', async () => {
    const unit = basicBatteryUnit();
    const battery = await create.battery(unit);
    await battery.read();
    unit.clearLog();
    await battery.setPowerW(2500, 30_000);
    expect(unit.transactions).toEqual([
      // OutWRte -50 %, InWRte 50 % (SF -2), InOutWRte_WinTms kept (0), InOutWRte_RvrtTms 30 s
      { type: 'write', address: 40162, values: [neg(-5000), 5000, 0, 30] },
      { type: 'write', address: 40155, values: [3] }, // StorCtl_Mod: charge and discharge limits active
    ]);
    expect((await battery.read()).setpointW).toBe(2500);
    unit.clearLog();
    // StorCtl_Mod already reads 3: the rates and the timer are all there is to write.
    await battery.setPowerW(-1000, 400);
    expect(unit.transactions).toEqual([{ type: 'write', address: 40162, values: [2000, neg(-2000), 0, 1] }]);
    expect((await battery.read()).setpointW).toBe(-1000);
    await battery.clearSetpoint();
    expect(unit.writes.at(-1)).toEqual({ address: 40155, values: [0] });
    expect((await battery.read()).setpointW).toBeUndefined();
  });

  it('writes StorCtl_Mod again after clearSetpoint even before the next poll (the write is remembered)', async () => {
    const unit = basicBatteryUnit();
    const battery = await create.battery(unit);
    await battery.read();
    await battery.setPowerW(2500, 30_000);
    await battery.read(); // StorCtl_Mod 3
    await battery.clearSetpoint();
    unit.clearLog();
    await battery.setPowerW(1000, 30_000);
    expect(unit.transactions).toEqual([
      { type: 'write', address: 40162, values: [neg(-2000), 2000, 0, 30] },
      { type: 'write', address: 40155, values: [3] },
    ]);
    expect(unit.get(40155)).toEqual([3]);
  });

  it('skips StorCtl_Mod on what was last read: a device that dropped it is put right after the next poll', async () => {
    const unit = basicBatteryUnit();
    const battery = await create.battery(unit);
    await battery.read();
    await battery.setPowerW(2500, 30_000);
    await battery.read();
    unit.set(40155, [0]); // the device's revert timer ran out (or its own UI): no limits any more
    unit.clearLog();
    await battery.setPowerW(2000, 30_000);
    expect(unit.writes).toEqual([{ address: 40162, values: [neg(-4000), 4000, 0, 30] }]);
    expect((await battery.read()).setpointW).toBeUndefined(); // what the dispatcher's closed loop sees
    unit.clearLog();
    await battery.setPowerW(2000, 30_000);
    expect(unit.writes).toEqual([
      { address: 40162, values: [neg(-4000), 4000, 0, 30] },
      { address: 40155, values: [3] },
    ]);
    expect((await battery.read()).setpointW).toBe(2000);
  });

  it('a poll answered after a write to the model does not bring back what the write replaced', async () => {
    const unit = basicBatteryUnit();
    const battery = await create.battery(unit);
    await battery.read();
    await battery.setPowerW(2500, 30_000);
    await battery.read(); // StorCtl_Mod 3
    let answer!: () => void;
    unit.holdReadAnswers = new Promise<void>((resolve) => (answer = resolve));
    const poll = battery.read(); // reads StorCtl_Mod 3, answer held back
    await battery.clearSetpoint(); // StorCtl_Mod 0 goes out and ends meanwhile
    unit.holdReadAnswers = undefined;
    answer();
    await poll;
    unit.clearLog();
    await battery.setPowerW(1000, 30_000);
    expect(unit.writes.at(-1)).toEqual({ address: 40155, values: [3] });
  });

  it('falls back to rates, then timer, then mode when InOutWRte_WinTms is not implemented', async () => {
    const unit = basicBatteryUnit();
    unit.set(40164, [U]); // InOutWRte_WinTms
    const battery = await create.battery(unit);
    await battery.read();
    unit.clearLog();
    await battery.setPowerW(2500, 30_000);
    expect(unit.transactions).toEqual([
      { type: 'write', address: 40162, values: [neg(-5000), 5000] },
      { type: 'write', address: 40165, values: [30] },
      { type: 'write', address: 40155, values: [3] },
    ]);
    expect(unit.get(40164)).toEqual([U]); // never written
  });

  it('without a revert timer: the rates in one write (nothing in between to keep), then the mode', async () => {
    const unit = basicBatteryUnit();
    unit.set(40165, [U]); // InOutWRte_RvrtTms
    const battery = await create.battery(unit);
    await battery.read();
    unit.clearLog();
    await battery.setPowerW(2500, 30_000);
    expect(unit.writes).toEqual([
      { address: 40162, values: [neg(-5000), 5000] },
      { address: 40155, values: [3] },
    ]);
  });

  it('keeps InOutWRte_WinTms exactly as read', async () => {
    const unit = basicBatteryUnit();
    unit.set(40164, [1234]);
    const battery = await create.battery(unit);
    await battery.setPowerW(-500, 10_000); // no poll yet: the model is read first
    expect(unit.reads.at(-1)).toMatchObject({ priority: 'write' });
    expect(unit.writes[0]).toEqual({ address: 40162, values: [1000, neg(-1000), 1234, 10] });
    expect(unit.get(40164)).toEqual([1234]);
  });

  it('caps the setpoint at WChaMax', async () => {
    const unit = basicBatteryUnit();
    const battery = await create.battery(unit);
    await battery.setPowerW(9000, 10_000);
    expect(unit.writes[0]).toEqual({ address: 40162, values: [neg(-10000), 10000, 0, 10] });
  });

  it('fails with the point when SoC is unimplemented', async () => {
    const unit = basicBatteryUnit();
    const battery = await create.battery(unit);
    unit.set(40158, [U]); // 124 ChaState
    await expect(battery.read()).rejects.toThrow('battery: SunSpec model 124 point ChaState at address 40158 is not implemented');
  });

  it('uses Ah × nominal voltage only when told the voltage', async () => {
    const unit = basicBatteryUnit();
    unit.set(40122 + 19, [U]).set(40122 + 21, [200]).set(40122 + 22, [0]); // no WHRtg, AhrRtg 200 Ah
    const plain = await create.battery(unit);
    expect((await plain.read()).capacityWh).toBeUndefined();
    const told = await createSunSpecDevice({ id: 'b', deviceClass: 'battery', unit, log: silentLog, nominalVoltageV: 51.2 });
    expect((await told.read()).capacityWh).toBeCloseTo(10240, 6);
  });
});

describe('SunSpec battery (DER models 701/702/704/802)', () => {
  it('reads in three transactions (the minimum for 276 registers)', async () => {
    const unit = derBatteryUnit();
    const battery = await create.battery(unit);
    unit.clearLog();
    expect(await battery.read()).toEqual({ powerW: 1500, socPct: 80.5, capacityWh: 13500, maxChargeW: 5000, maxDischargeW: 6000 });
    expect(unit.readRangesCalls).toEqual([
      [
        { address: 40070, count: 117 }, // 701 up to W_SF
        { address: 40344, count: 57 }, // 802 up to SoC_SF
        { address: 40225, count: 46 }, // 702 up to W_SF
        { address: 40277, count: 56 }, // 704 up to WSet_SF
      ],
    ]);
    // 701 | 702 and 704 (merged across the rest of 702) | 802: three reads, no model torn.
    expect(unit.reads.map((r) => [r.address, r.count])).toEqual([
      [40070, 117],
      [40225, 108],
      [40344, 57],
    ]);
  });

  it('sets WSet (negative = charging), reversion and enable in one transaction; clamps to the charge rating', async () => {
    const unit = derBatteryUnit();
    const battery = await create.battery(unit);
    await battery.read();
    unit.clearLog();
    await battery.setPowerW(7000, 60_000);
    expect(unit.transactions).toEqual([
      {
        type: 'write',
        address: 40299,
        // WSetEna, WSetMod = WATTS, WSet = -5000 (clamped), WSetRvrt, WSetPct, WSetPctRvrt kept (0),
        // WSetEnaRvrt = DISABLED, WSetRvrtTms = 60 s
        values: [1, 1, 0xffff, neg(-5000), 0, 0, 0, 0, 0, 0, 60],
      },
    ]);
    expect((await battery.read()).setpointW).toBe(5000);
    await battery.setPowerW(-2000, 60_000);
    expect(unit.writes.at(-1)).toEqual({ address: 40299, values: [1, 1, 0, 2000, 0, 0, 0, 0, 0, 0, 60] });
    await battery.clearSetpoint();
    expect(unit.writes.at(-1)).toEqual({ address: 40299, values: [0] });
  });

  it('falls back to value, then timer, then enable when a point in between is not implemented', async () => {
    const unit = derBatteryUnit();
    unit.set(40305, [S]); // WSetPct (a device that holds watts only)
    const battery = await create.battery(unit);
    await battery.read();
    unit.clearLog();
    await battery.setPowerW(-2000, 60_000);
    expect(unit.transactions).toEqual([
      { type: 'write', address: 40300, values: [1, 0, 2000] }, // WSetMod, WSet
      { type: 'write', address: 40307, values: [0, 0, 60] }, // WSetEnaRvrt, WSetRvrtTms
      { type: 'write', address: 40299, values: [1] }, // WSetEna last
    ]);
    expect(unit.get(40305)).toEqual([S]);
  });

  it('keeps the points in between as their raw registers, whatever their scale factors (property)', async () => {
    const def = getModelDef(704);
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: -0x7fff_ffff, max: 0x7fff_ffff }),
        fc.integer({ min: -0x7fff, max: 0x7fff }),
        fc.integer({ min: -0x7fff, max: 0x7fff }),
        fc.integer({ min: -3, max: 3 }),
        fc.integer({ min: -3, max: 3 }),
        async (wsetRvrt, wsetPct, wsetPctRvrt, wsetSf, pctSf) => {
          const unit = derBatteryUnit();
          const kept = [(wsetRvrt >>> 16) & 0xffff, wsetRvrt & 0xffff, neg(wsetPct), neg(wsetPctRvrt)];
          unit.set(40303, kept).set(40332, [neg(wsetSf)]).set(40333, [neg(pctSf)]);
          const battery = await create.battery(unit);
          await battery.read();
          unit.clearLog();
          await battery.setPowerW(-1000, 60_000);
          expect(unit.writes).toHaveLength(1);
          expect(unit.writes[0]!.address).toBe(40299);
          expect(unit.writes[0]!.values.slice(4, 8)).toEqual(kept);
          expect(unit.get(40303, 4)).toEqual(kept);
          // The values those registers stand for encode back to the same registers.
          const values = decodeModelPrefix(def, unit.get(40277, 67), { address: 40277 });
          const again = ['WSetRvrt', 'WSetPct', 'WSetPctRvrt'].flatMap((n) => encodePoint(def, n, values[n]!, values, 40277).registers);
          expect(again).toEqual(kept);
        },
      ),
      { numRuns: 100 },
    );
  });

  it('a refused write names device, model, points written and kept, and registers; the next one reads the model again', async () => {
    const unit = derBatteryUnit();
    const battery = await create.battery(unit);
    await battery.read();
    unit.refuseWritesAt.add(40305);
    const err = await battery.setPowerW(1000, 60_000).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModbusExceptionError);
    expect((err as Error).message).toBe(
      'battery: writing SunSpec model 704 WSetMod, WSet, WSetEnaRvrt, WSetRvrtTms, WSetEna with WSetRvrt, WSetPct, WSetPctRvrt kept as read ' +
        '(registers 40299+11): fake der battery: write at 40299: illegal data address',
    );
    unit.refuseWritesAt.clear();
    unit.clearLog();
    await battery.setPowerW(1000, 60_000);
    // The device may or may not have taken the failed write: its registers are read before the next.
    expect(unit.transactions.map((t) => [t.type, t.address, t.type === 'read' ? t.priority : undefined])).toEqual([
      ['read', 40277, 'write'], // 704 alone, up to WSet_SF
      ['write', 40299, undefined],
    ]);
  });

  it('does not write a NaN setpoint', async () => {
    const unit = derBatteryUnit();
    const battery = await create.battery(unit);
    unit.clearLog();
    await expect(battery.setPowerW(Number.NaN, 1000)).rejects.toBeInstanceOf(RangeError);
    expect(unit.writes).toEqual([]);
  });
});

describe('createSunSpecDevice', () => {
  it('refuses classes SunSpec does not cover, and units without the class models', async () => {
    await expect(createSunSpecDevice({ id: 'x', deviceClass: 'hvac', unit: pvUnit(), log: silentLog })).rejects.toThrow(NotSupportedError);
    await expect(create.battery(pvUnit())).rejects.toThrow(/no SunSpec storage model/);
    await expect(create.meter(pvUnit())).rejects.toThrow(/no SunSpec model for meter measurement/);
  });

  it('passes a timeout through as retryable', async () => {
    const unit = pvUnit();
    unit.timeoutAt.add(40000);
    const err = await create.pv(unit).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as TimeoutError).retryable).toBe(true);
    expect((err as TimeoutError).timeoutMs).toBe(1000);
    expect((err as Error).message).toBe('pv: fake pv: no answer reading 2 at 40000');
  });

  it('a transport error in a poll keeps its type and says which device, models and registers', async () => {
    const unit = pvUnit();
    const pv = await create.pv(unit);
    unit.timeoutAt.add(40100);
    const err = await pv.read().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TimeoutError);
    expect((err as Error).message).toMatch(/^pv: reading SunSpec models 103 at address 40070, 120 at address 40122, .*\(registers 40070\+\d+.*\): fake pv: no answer/);
    expect((err as Error).cause).toBeInstanceOf(TimeoutError);
  });

  it('uses a given discovery or base address', async () => {
    const unit = meterUnit();
    await create.meter(unit);
    unit.clearLog();
    await createSunSpecDevice({ id: 'm', deviceClass: 'meter', unit, log: silentLog, baseAddress: 0 });
    expect(unit.reads[0]!.address).toBe(0);
    unit.clearLog();
    const discovery = { baseAddress: 0, models: [{ id: 1, address: 2, length: 65 }, { id: 203, address: 69, length: 105 }] };
    await createSunSpecDevice({ id: 'm', deviceClass: 'meter', unit, log: silentLog, discovery });
    expect(unit.reads.map((r) => r.address)).toEqual([2]); // only the common model for the identity
  });
});

describe('scan', () => {
  it('reports each unit: found with models, identity and classes, or not with the reason', async () => {
    const silent = new FakeUnit(9, 'fake empty');
    silent.timeoutAt.add(40000);
    const results = await scanUnits([pvUnit(), meterUnit(), new FakeUnit(8, 'fake nothing'), silent, basicBatteryUnit()], silentLog);
    expect(results.map((r) => [r.unitId, r.found, r.suggestedClasses])).toEqual([
      [1, true, ['pv']],
      [2, true, ['meter']],
      [8, false, []],
      [9, false, []],
      [3, true, ['pv', 'battery']],
    ]);
    expect(results[0]).toMatchObject({
      label: 'fake pv',
      baseAddress: 40000,
      modelIds: [1, 103, 120, 121, 123],
      unknownModelIds: [],
      identity: { manufacturer: 'Fronius', model: 'Symo 8.2', serial: 'PV-0001', version: '3.14' },
    });
    expect(results[2]).toMatchObject({ errorKind: 'not-supported' });
    expect(results[2]!.reason).toMatch(/no SunSpec marker/);
    expect(results[3]).toMatchObject({ errorKind: 'timeout' });
  });

  it('suggests classes from model ids', () => {
    expect(suggestClasses([1, 203])).toEqual(['meter']);
    expect(suggestClasses([1, 213])).toEqual(['meter']);
    expect(suggestClasses([1, 113, 120, 123])).toEqual(['pv']);
    expect(suggestClasses([1, 103])).toEqual([]);
    expect(suggestClasses([1, 701, 702, 704])).toEqual(['pv']);
    expect(suggestClasses([1, 701, 702, 704, 802])).toEqual(['battery']);
    expect(suggestClasses([1, 64110])).toEqual([]);
  });

  it('suggests the config entries an installer pastes', async () => {
    const [pv] = await scanUnits([pvUnit()], silentLog);
    const connection = { tcp: { host: '192.168.1.50', port: 502 } };
    expect(suggestConfig(pv!, connection)).toEqual([
      { id: 'fronius-pv-1', class: 'pv', driver: 'sunspec', connection, unitId: 1, sunspec: { baseAddress: 40000 } },
    ]);
    expect(suggestConfig({ unitId: 4, label: 'x', found: false, suggestedClasses: [] }, connection)).toEqual([]);
  });
});
