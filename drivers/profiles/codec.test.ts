/**
 * Register decoding and encoding: every encoding, both word orders, bytes, strings. Expected values
 * are written out as the registers a device sends (hex), not computed with the code under test.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeRegisters, encodeRegisters, shortestFloat32 } from './codec.js';
import { ENCODINGS, WRITE_ENCODINGS, encodingRegisters, type Encoding, type WriteEncoding } from './schema.js';

describe('decodeRegisters', () => {
  it('16-bit and byte encodings', () => {
    expect(decodeRegisters([0xfffe], 'int16')).toBe(-2);
    expect(decodeRegisters([0x8000], 'int16')).toBe(-32768);
    expect(decodeRegisters([0x7fff], 'int16')).toBe(32767);
    expect(decodeRegisters([0xfffe], 'uint16')).toBe(65534);
    // ABL: the state code is the high byte; the low byte is reserved.
    expect(decodeRegisters([0xc200], 'uint8-high')).toBe(0xc2);
    expect(decodeRegisters([0xb1ff], 'uint8-high')).toBe(0xb1);
    expect(decodeRegisters([0xb1ff], 'uint8-low')).toBe(0xff);
  });

  it('32-bit integers, high word first and low word first (Phoenix, Lambda ≥ 1.1.3)', () => {
    expect(decodeRegisters([0x0001, 0x1234], 'uint32')).toBe(0x00011234);
    expect(decodeRegisters([0x1234, 0x0001], 'uint32', 'low-first')).toBe(0x00011234);
    expect(decodeRegisters([0xffff, 0xfffe], 'int32')).toBe(-2);
    expect(decodeRegisters([0xfffe, 0xffff], 'int32', 'low-first')).toBe(-2);
    expect(decodeRegisters([0xffff, 0xffff], 'uint32')).toBe(4294967295);
    // 5 123 456 Wh = 0x004E_2D80: the two orders give very different numbers.
    expect(decodeRegisters([0x2d80, 0x004e], 'int32', 'low-first')).toBe(5_123_456);
    expect(decodeRegisters([0x2d80, 0x004e], 'int32', 'high-first')).toBe(0x2d80004e);
  });

  it('64-bit integers in both word orders', () => {
    expect(decodeRegisters([0x0000, 0x0001, 0x0000, 0x0002], 'uint64')).toBe(2 ** 32 + 2);
    expect(decodeRegisters([0x0002, 0x0000, 0x0001, 0x0000], 'uint64', 'low-first')).toBe(2 ** 32 + 2);
    expect(decodeRegisters([0xffff, 0xffff, 0xffff, 0xfffb], 'int64')).toBe(-5);
    expect(decodeRegisters([0xfffb, 0xffff, 0xffff, 0xffff], 'int64', 'low-first')).toBe(-5);
  });

  it('IEEE-754 floats in both word orders, float32 as its shortest decimal', () => {
    // 229.8 as float32 = 0x4365CCCD; 50.0 = 0x42480000 (an SDM120 answer).
    expect(decodeRegisters([0x4365, 0xcccd], 'float32')).toBe(229.8);
    expect(decodeRegisters([0xcccd, 0x4365], 'float32', 'low-first')).toBe(229.8);
    expect(decodeRegisters([0x4248, 0x0000], 'float32')).toBe(50);
    expect(decodeRegisters([0xc2f6, 0xe979], 'float32')).toBe(-123.456);
    expect(decodeRegisters([0x7fc0, 0x0000], 'float32')).toBeNaN();
    expect(decodeRegisters([0x7f80, 0x0000], 'float32')).toBe(Infinity);
    // 1.5 as float64 = 0x3FF8000000000000
    expect(decodeRegisters([0x3ff8, 0, 0, 0], 'float64')).toBe(1.5);
    expect(decodeRegisters([0, 0, 0, 0x3ff8], 'float64', 'low-first')).toBe(1.5);
  });

  it('strings: two characters per register, high byte first, up to the first NUL, trimmed; word order does not apply', () => {
    const regs = [0x5344, 0x4d31, 0x3230, 0x2000, 0x4142]; // "SDM120 \0AB"
    expect(decodeRegisters(regs, 'string')).toBe('SDM120');
    expect(decodeRegisters(regs, 'string', 'low-first')).toBe('SDM120');
    expect(decodeRegisters([0x4142, 0x4344], 'string')).toBe('ABCD');
    expect(decodeRegisters([0x0000], 'string')).toBe('');
  });

  it('the wrong number of registers is a RangeError, never a made-up value', () => {
    expect(() => decodeRegisters([1], 'uint32')).toThrow(RangeError);
    expect(() => decodeRegisters([1, 2, 3], 'float32')).toThrow(RangeError);
    expect(() => decodeRegisters([], 'string')).toThrow(RangeError);
    expect(() => decodeRegisters([1, 2], 'uint16')).toThrow(RangeError);
  });

  it('any registers of the right length decode to a number (or string) without throwing (fast-check)', () => {
    const numeric = ENCODINGS.filter((e): e is Exclude<Encoding, 'string'> => e !== 'string');
    fc.assert(
      fc.property(fc.constantFrom(...numeric), fc.constantFrom('high-first' as const, 'low-first' as const), fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 4, maxLength: 4 }), (encoding, order, words) => {
        const v = decodeRegisters(words.slice(0, encodingRegisters(encoding)), encoding, order);
        expect(typeof v).toBe('number');
      }),
    );
  });
});

describe('encodeRegisters', () => {
  it('writes what a device expects, in both word orders', () => {
    expect(encodeRegisters(-30, 'int16')).toEqual([0xffe2]);
    expect(encodeRegisters(266, 'uint16')).toEqual([0x010a]);
    expect(encodeRegisters(0x00011234, 'uint32')).toEqual([0x0001, 0x1234]);
    expect(encodeRegisters(0x00011234, 'uint32', 'low-first')).toEqual([0x1234, 0x0001]);
    expect(encodeRegisters(-2, 'int32', 'low-first')).toEqual([0xfffe, 0xffff]);
    expect(encodeRegisters(229.8, 'float32')).toEqual([0x4365, 0xcccd]);
    expect(encodeRegisters(229.8, 'float32', 'low-first')).toEqual([0xcccd, 0x4365]);
  });

  it('refuses values that do not fit instead of wrapping them', () => {
    expect(() => encodeRegisters(65536, 'uint16')).toThrow(RangeError);
    expect(() => encodeRegisters(-1, 'uint16')).toThrow(RangeError);
    expect(() => encodeRegisters(32768, 'int16')).toThrow(RangeError);
    expect(() => encodeRegisters(2 ** 32, 'uint32')).toThrow(RangeError);
    expect(() => encodeRegisters(1.5, 'int32')).toThrow(RangeError);
    expect(() => encodeRegisters(Number.NaN, 'float32')).toThrow(RangeError);
    expect(() => encodeRegisters(1e39, 'float32')).toThrow(RangeError);
  });

  it('decode(encode(x)) is x for every write encoding and word order (fast-check)', () => {
    const ranges: Record<Exclude<WriteEncoding, 'float32'>, [number, number]> = {
      int16: [-0x8000, 0x7fff],
      uint16: [0, 0xffff],
      int32: [-0x80000000, 0x7fffffff],
      uint32: [0, 0xffffffff],
    };
    for (const encoding of WRITE_ENCODINGS) {
      const value = encoding === 'float32' ? fc.float({ noNaN: true, noDefaultInfinity: true }).map(Math.fround) : fc.integer({ min: ranges[encoding][0], max: ranges[encoding][1] });
      fc.assert(
        fc.property(value, fc.constantFrom('high-first' as const, 'low-first' as const), (v, order) => {
          const regs = encodeRegisters(v, encoding, order);
          expect(regs).toHaveLength(encodingRegisters(encoding));
          expect(regs.every((r) => Number.isInteger(r) && r >= 0 && r <= 0xffff)).toBe(true);
          const back = decodeRegisters(regs, encoding, order);
          // float32: the same float (±0 compare equal); integers: exactly.
          if (encoding === 'float32') expect(Math.fround(back as number) === Math.fround(v)).toBe(true);
          else expect(back).toBe(v);
        }),
        { numRuns: 300 },
      );
    }
  });
});

describe('shortestFloat32', () => {
  it('is the same float32, and as short as a person would write it', () => {
    expect(shortestFloat32(Math.fround(0.1))).toBe(0.1);
    expect(shortestFloat32(Math.fround(49.98))).toBe(49.98);
    fc.assert(
      fc.property(fc.float({ noNaN: true, noDefaultInfinity: true }), (f) => {
        expect(Math.fround(shortestFloat32(f)) === f).toBe(true);
      }),
    );
  });
});
