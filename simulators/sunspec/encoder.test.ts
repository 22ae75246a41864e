import { describe, expect, it } from 'vitest';
import { decodeRaw, encodeRaw, SunSpecDevice } from './encoder.js';

// Expectations below are worked out by hand from the JSON tables (sizes summed from ID = offset 0).
describe('SunSpec encoder: model 1 + model 103 at 40000', () => {
  const dev = new SunSpecDevice([1, 103]);
  dev.set(1, 'Mn', 'Flexgate');
  dev.set(1, 'SN', 'SIM-0001');
  dev.setScaleFactors(103, { W_SF: -1, Hz_SF: -2, WH_SF: 0, A_SF: -2 });
  dev.set(103, 'W', 1234.5);
  dev.set(103, 'Hz', 50.02);
  dev.set(103, 'WH', 100000);
  dev.set(103, 'A', 12.34);
  const regs = (address: number, count: number) => dev.image.read(address, count);

  it('starts with SunS, lays model 1 out with L = 66', () => {
    expect(regs(40000, 2)).toEqual([0x5375, 0x6e53]);
    expect(regs(40002, 2)).toEqual([1, 66]);
    // Mn: 16 registers at 40004, "Flexgate" then zeros
    expect(regs(40004, 5)).toEqual([0x466c, 0x6578, 0x6761, 0x7465, 0]);
    expect(regs(40019, 1)).toEqual([0]);
    // SN at offset 50 → 40052: "SIM-0001"
    expect(regs(40052, 4)).toEqual([0x5349, 0x4d2d, 0x3030, 0x3031]);
    // unimplemented strings (Md at 40020, Opt at 40036) read zero; DA (uint16) 0xFFFF at 40068; Pad 0x8000 at 40069
    expect(regs(40020, 1)).toEqual([0]);
    expect(regs(40036, 1)).toEqual([0]);
    expect(regs(40068, 2)).toEqual([0xffff, 0x8000]);
  });

  it('lays model 103 out after it with L = 50, scaled values in place, and the end marker', () => {
    expect(regs(40070, 2)).toEqual([103, 50]);
    expect(regs(40072, 1)).toEqual([1234]); // A = 12.34 A at sf -2
    expect(regs(40076, 1)).toEqual([0xfffe]); // A_SF = -2
    expect(regs(40073, 3)).toEqual([0xffff, 0xffff, 0xffff]); // AphA..C uint16 unimplemented
    expect(regs(40084, 2)).toEqual([12345, 0xffff]); // W = 1234.5 W at W_SF -1
    expect(regs(40086, 2)).toEqual([5002, 0xfffe]); // Hz 50.02 at -2
    expect(regs(40090, 2)).toEqual([0x8000, 0x8000]); // VA int16 + VA_SF unimplemented
    expect(regs(40094, 3)).toEqual([0x0001, 0x86a0, 0]); // WH acc32 = 100000, WH_SF = 0
    expect(regs(40101, 1)).toEqual([0x8000]); // DCW int16 unimplemented
    expect(regs(40108, 2)).toEqual([0xffff, 0xffff]); // St, StVnd enum16
    expect(regs(40110, 2)).toEqual([0xffff, 0xffff]); // Evt1 bitfield32
    expect(regs(40122, 2)).toEqual([0xffff, 0x0000]);
    expect(dev.layout.totalRegisters).toBe(124);
    expect(dev.image.isDefined(40124)).toBe(false);
  });

  it('decodes values back by name', () => {
    expect(dev.get(103, 'W')).toBe(1234.5);
    expect(dev.get(103, 'Hz')).toBe(50.02);
    expect(dev.get(103, 'WH')).toBe(100000);
    expect(dev.get(103, 'VA')).toBeUndefined();
    expect(dev.get(1, 'Mn')).toBe('Flexgate');
    dev.set(103, 'W', -2);
    expect(regs(40084, 1)).toEqual([0xffec]); // -20 at sf -1
    expect(dev.get(103, 'W')).toBe(-2);
  });

  it('refuses values that do not fit instead of wrapping, but accumulators wrap', () => {
    expect(() => dev.set(103, 'W', 4000)).toThrow(RangeError); // 40000 > int16
    dev.set(103, 'WH', 2 ** 32 + 5);
    expect(regs(40094, 2)).toEqual([0, 5]);
  });
});

describe('SunSpec encoder: other bases, nested and repeating groups, types', () => {
  it('base 0 and 50000', () => {
    expect(new SunSpecDevice([1], { baseAddress: 0 }).image.read(0, 4)).toEqual([0x5375, 0x6e53, 1, 66]);
    expect(new SunSpecDevice([1], { baseAddress: 50000 }).image.read(50070, 2)).toEqual([0xffff, 0]);
  });

  it('model 704: groups of one follow the top-level points, scale factor from the parent', () => {
    const dev = new SunSpecDevice([704], { baseAddress: 0 });
    expect(dev.image.read(2, 2)).toEqual([704, 65]); // 59 top-level + 4 groups × 2 = 67 → L 65
    const pf = dev.point(704, 'PFWInj.PF');
    expect(pf.offset).toBe(59);
    expect(pf.sf).toBe('PF_SF');
    expect(dev.point(704, 'PFWAbsRvrt.Ext').offset).toBe(66);
    expect(dev.point(704, 'WSet').offset).toBe(24);
    dev.setScaleFactors(704, { WSet_SF: 0 });
    dev.set(704, 'WSet', -3000);
    expect(dev.image.read(2 + 24, 2)).toEqual([0xffff, 0xf448]);
    expect(dev.get(704, 'WSet')).toBe(-3000);
    expect(dev.image.read(2 + 4, 2)).toEqual([0xffff, 0xffff]); // PFWInjRvrtTms uint32 unimplemented
  });

  it('model 160: repeating groups take their count from the device', () => {
    const dev = new SunSpecDevice([{ id: 160, repeats: { module: 2 } }], { baseAddress: 0 });
    expect(dev.image.read(2, 2)).toEqual([160, 48]); // 10 + 2 × 20 − 2
    expect(dev.point(160, 'module[1].DCW').offset).toBe(41);
    expect(dev.point(160, 'module[1].DCW').sf).toBe('DCW_SF');
  });

  it('encodes and decodes 64-bit and float points', () => {
    expect(encodeRaw('uint64', 4, 0x1_0000_0002)).toEqual([0, 1, 0, 2]);
    expect(decodeRaw('uint64', [0, 1, 0, 2])).toBe(0x1_0000_0002n);
    expect(decodeRaw('uint64', [0xffff, 0xffff, 0xffff, 0xffff])).toBeUndefined();
    expect(encodeRaw('float32', 2, 1.5)).toEqual([0x3fc0, 0]);
    expect(decodeRaw('float32', [0x7fc0, 0])).toBeUndefined();
    expect(decodeRaw('int32', [0x8000, 0])).toBeUndefined();
    expect(decodeRaw('acc32', [0, 0])).toBe(0);
  });
});

describe('SunSpec device writes', () => {
  it('only RW points are writable; writes decode to engineering values; validators refuse', () => {
    const dev = new SunSpecDevice([1, 123], { baseAddress: 40000 });
    dev.setScaleFactors(123, { WMaxLimPct_SF: -1 });
    const seen: Array<[string, unknown]> = [];
    dev.onWrite((changes) => changes.forEach((c) => seen.push([c.point, c.value])));
    dev.addValidator((c) => (c.point === 'WMaxLimPct' && typeof c.value === 'number' && c.value > 100 ? 3 : undefined));
    const wMaxLimPct = dev.point(123, 'WMaxLimPct').address;
    expect(wMaxLimPct).toBe(40070 + 5);
    expect(dev.image.writeFromBus(wMaxLimPct, [455])).toBeUndefined();
    expect(seen).toEqual([['WMaxLimPct', 45.5]]);
    expect(dev.image.writeFromBus(wMaxLimPct, [1001])).toBe(3);
    expect(dev.get(123, 'WMaxLimPct')).toBe(45.5);
    expect(dev.image.writeFromBus(dev.point(123, 'WMaxLimPct_SF').address, [0])).toBe(2);
    expect(dev.image.writeFromBus(40004, [0x4142])).toBe(2); // Mn is read-only
  });
});

describe('SunSpec encoder: broken devices on purpose', () => {
  it('lays a model out with a forced L: points past it are gone, the chain stays walkable', () => {
    // 203 is 105 registers after ID and L; forced to 104 (Evt, a bitfield32 at offset 105, is cut).
    const short = new SunSpecDevice([1, { id: 203, length: 104 }, 120]);
    expect(short.image.read(40070, 2)).toEqual([203, 104]);
    expect(short.model(203).points.has('Evt')).toBe(false);
    expect(short.model(203).points.has('TotVArh_SF')).toBe(true);
    // the next model starts right after the forced length: 40070 + 2 + 104
    expect(short.model(120).address).toBe(40176);
    expect(short.image.read(40176, 2)).toEqual([120, 26]);
    expect(short.image.read(40176 + 28, 2)).toEqual([0xffff, 0]);
    // longer than the definition: the extra registers read 0
    const long = new SunSpecDevice([{ id: 103, length: 53 }], { baseAddress: 0 });
    expect(long.image.read(2, 2)).toEqual([103, 53]);
    expect(long.image.read(2 + 52, 3)).toEqual([0, 0, 0]);
    expect(long.image.read(2 + 55, 2)).toEqual([0xffff, 0]);
  });

  it('leaves the end marker out when asked: the image ends with the last model', () => {
    const dev = new SunSpecDevice([1, 103], { endMarker: false });
    expect(dev.image.isDefined(40121)).toBe(true);
    expect(dev.image.isDefined(40122)).toBe(false);
  });
});
