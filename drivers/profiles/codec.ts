/**
 * Register encodings of device profiles: integers of 16/32/64 bits, IEEE-754 floats, strings, with
 * the word order a device uses (high word first is the Modbus convention; some devices put the low
 * word first). Bytes within a register are always big-endian (Modbus).
 */
import { encodingRegisters, type Encoding } from './schema.js';

export type WordOrder = 'high-first' | 'low-first';

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

/** Decodes `registers` (exactly the encoding's length). Strings stop at the first NUL and are trimmed. */
export function decodeRegisters(registers: ArrayLike<number>, encoding: Encoding, wordOrder: WordOrder = 'high-first'): number | string {
  const expected = encoding === 'string' ? registers.length : encodingRegisters(encoding);
  if (registers.length !== expected) throw new RangeError(`${encoding} needs ${expected} registers, got ${registers.length}`);
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
    case 'int32':
      return buf.readInt32BE(0);
    case 'uint32':
      return buf.readUInt32BE(0);
    case 'float32':
      return buf.readFloatBE(0);
    case 'float64':
      return buf.readDoubleBE(0);
    case 'int64':
      return Number(buf.readBigInt64BE(0));
    case 'uint64':
      return Number(buf.readBigUInt64BE(0));
  }
}

/** Encodes a value for a write; integers must be integers within the encoding's range. */
export function encodeRegisters(value: number, encoding: 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32', wordOrder: WordOrder = 'high-first'): number[] {
  const buf = Buffer.alloc(encodingRegisters(encoding) * 2);
  if (encoding !== 'float32' && !Number.isInteger(value)) throw new RangeError(`${encoding} needs an integer, got ${value}`);
  switch (encoding) {
    case 'int16':
      if (value < -32768 || value > 32767) throw new RangeError(`${value} does not fit int16`);
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
      if (!Number.isFinite(value)) throw new RangeError(`${value} is not a finite number`);
      buf.writeFloatBE(value);
      break;
  }
  return fromBytes(buf, wordOrder);
}
