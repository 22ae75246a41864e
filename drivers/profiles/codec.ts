/**
 * Register encodings of device profiles: integers of 8 (one byte of a register), 16, 32 and 64 bits,
 * IEEE-754 floats, strings, with the word order a device uses (high word first is the Modbus
 * convention; some devices put the low word first). Bytes within a register are always big-endian
 * (Modbus). Pure functions: no I/O.
 */
import { encodingRegisters, type Encoding, type WordOrder, type WriteEncoding } from './schema.js';

export type { WordOrder } from './schema.js';

function toBytes(registers: ArrayLike<number>, wordOrder: WordOrder): Buffer {
  const words = Array.from(registers);
  if (wordOrder === 'low-first') words.reverse();
  const buf = Buffer.alloc(words.length * 2);
  words.forEach((w, i) => buf.writeUInt16BE(w & 0xffff, i * 2));
  return buf;
}

function fromBytes(buf: Buffer, wordOrder: WordOrder): number[] {
  const words: number[] = [];
  for (let i = 0; i < buf.length; i += 2) words.push(buf.readUInt16BE(i));
  if (wordOrder === 'low-first') words.reverse();
  return words;
}

/**
 * Decodes `registers` (exactly the encoding's length; strings: any length). Strings are Latin-1, two
 * characters per register (high byte first), end at the first NUL and are trimmed; word order does
 * not apply to them. 64-bit integers beyond ±2^53 lose precision (a JS number).
 */
export function decodeRegisters(registers: ArrayLike<number>, encoding: Encoding, wordOrder: WordOrder = 'high-first'): number | string {
  const expected = encoding === 'string' ? registers.length : encodingRegisters(encoding);
  if (registers.length !== expected || expected === 0) throw new RangeError(`${encoding} needs ${expected || 'at least 1'} registers, got ${registers.length}`);
  if (encoding === 'string') {
    const text = toBytes(registers, 'high-first').toString('latin1');
    const end = text.indexOf('\0');
    return (end >= 0 ? text.slice(0, end) : text).trim();
  }
  const buf = toBytes(registers, wordOrder);
  switch (encoding) {
    case 'int16':
      return buf.readInt16BE(0);
    case 'uint16':
      return buf.readUInt16BE(0);
    case 'uint8-high':
      return buf.readUInt8(0);
    case 'uint8-low':
      return buf.readUInt8(1);
    case 'int32':
      return buf.readInt32BE(0);
    case 'uint32':
      return buf.readUInt32BE(0);
    case 'float32':
      return shortestFloat32(buf.readFloatBE(0));
    case 'float64':
      return buf.readDoubleBE(0);
    case 'int64':
      return Number(buf.readBigInt64BE(0));
    case 'uint64':
      return Number(buf.readBigUInt64BE(0));
  }
}

/** The shortest decimal that is the same float32 (229.8, not 229.8000030517578): a float32 carries
 * about 7 significant digits, the rest of its double expansion is noise. */
export function shortestFloat32(v: number): number {
  if (!Number.isFinite(v) || v === 0) return v;
  for (let digits = 1; digits <= 9; digits++) {
    const candidate = Number(v.toPrecision(digits));
    if (Math.fround(candidate) === v) return candidate;
  }
  return v;
}

/** Encodes a raw value for a write; integer encodings need an integer within their range, float32 a
 * finite number. Throws RangeError otherwise. */
export function encodeRegisters(value: number, encoding: WriteEncoding, wordOrder: WordOrder = 'high-first'): number[] {
  const buf = Buffer.alloc(encodingRegisters(encoding) * 2);
  if (encoding !== 'float32' && !Number.isInteger(value)) throw new RangeError(`${encoding} needs an integer, got ${value}`);
  switch (encoding) {
    case 'int16':
      if (value < -0x8000 || value > 0x7fff) throw new RangeError(`${value} does not fit int16`);
      buf.writeInt16BE(value);
      break;
    case 'uint16':
      if (value < 0 || value > 0xffff) throw new RangeError(`${value} does not fit uint16`);
      buf.writeUInt16BE(value);
      break;
    case 'int32':
      if (value < -0x80000000 || value > 0x7fffffff) throw new RangeError(`${value} does not fit int32`);
      buf.writeInt32BE(value);
      break;
    case 'uint32':
      if (value < 0 || value > 0xffffffff) throw new RangeError(`${value} does not fit uint32`);
      buf.writeUInt32BE(value);
      break;
    case 'float32':
      if (!Number.isFinite(value) || Math.abs(value) > 3.4028234663852886e38) throw new RangeError(`${value} is not a finite float32`);
      buf.writeFloatBE(value);
      break;
  }
  return fromBytes(buf, wordOrder);
}
