/**
 * Field values on the wire (PROTOCOL.md §1): numbers are JSON integers within their Solidity type's
 * range and within ±(2^53−1); `bytes32` and addresses are `0x` hex strings of the exact length
 * (any case; addresses are compared case-insensitively, EIP-55 checksums are ignored).
 *
 * The checks return a description of what is wrong (for a MALFORMED detail or a thrown
 * `LedgerInputError`) instead of throwing, so that bad input from outside never throws.
 */
import { LedgerInputError } from './errors.js';

/** `0x`-prefixed hex. */
export type Hex = `0x${string}`;
/** An EVM address, `0x` + 40 hex. flexgate writes them lowercase. */
export type Address = `0x${string}`;

/** The Solidity types a wire field may have. */
export type FieldType = 'address' | 'bytes32' | 'uint8' | 'uint16' | 'uint32' | 'uint64' | 'int64';

const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
const BYTES32_RE = /^0x[0-9a-fA-F]{64}$/;

/** Inclusive integer range of a number field on the wire: the type's range clipped to ±(2^53−1). */
export function numberRange(type: Exclude<FieldType, 'address' | 'bytes32'>): { min: number; max: number } {
  switch (type) {
    case 'uint8':
      return { min: 0, max: 0xff };
    case 'uint16':
      return { min: 0, max: 0xffff };
    case 'uint32':
      return { min: 0, max: 0xffff_ffff };
    case 'uint64':
      return { min: 0, max: Number.MAX_SAFE_INTEGER };
    case 'int64':
      return { min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER };
  }
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (typeof value === 'string') return `the string ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)}`;
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return 'an object';
  return `${typeof value} ${String(value)}`;
}

/**
 * Why `value` is not a valid wire value of `type`, or undefined when it is. Numbers must be JS
 * numbers (what JSON.parse gives for a JSON number) holding an integer in range.
 */
export function fieldProblem(type: FieldType, value: unknown): string | undefined {
  switch (type) {
    case 'address':
      if (typeof value !== 'string') return `expected an address (0x + 40 hex), got ${describe(value)}`;
      return ADDRESS_RE.test(value) ? undefined : `expected an address (0x + 40 hex), got ${describe(value)}`;
    case 'bytes32':
      if (typeof value !== 'string') return `expected bytes32 (0x + 64 hex), got ${describe(value)}`;
      return BYTES32_RE.test(value) ? undefined : `expected bytes32 (0x + 64 hex), got ${describe(value)}`;
    default: {
      if (typeof value !== 'number') return `expected a JSON integer (${type}), got ${describe(value)}`;
      if (!Number.isInteger(value)) return `expected an integer (${type}), got ${value}`;
      const { min, max } = numberRange(type);
      if (value < min || value > max) return `${value} is out of range for ${type} on the wire [${min}, ${max}]`;
      return undefined;
    }
  }
}

/** Throws `LedgerInputError` naming `field` unless `value` is a valid wire value of `type`. */
export function assertField(field: string, type: FieldType, value: unknown): void {
  const problem = fieldProblem(type, value);
  if (problem !== undefined) throw new LedgerInputError(field, problem);
}

/** Whether `value` is `0x` + 40 hex, any case. */
export function isAddress(value: unknown): value is Address {
  return typeof value === 'string' && ADDRESS_RE.test(value);
}

/** Whether `value` is `0x` + 64 hex, any case. */
export function isBytes32(value: unknown): value is Hex {
  return typeof value === 'string' && BYTES32_RE.test(value);
}

/** Case-insensitive address equality (PROTOCOL.md §1). */
export function sameAddress(a: string, b: string): boolean {
  return a.toLowerCase() === b.toLowerCase();
}

const HEX_DIGITS = '0123456789abcdef';
const BYTE_HEX: readonly string[] = Array.from({ length: 256 }, (_, i) => HEX_DIGITS[i >> 4]! + HEX_DIGITS[i & 15]!);

/** Lowercase `0x` hex of `bytes`. */
export function toHex(bytes: Uint8Array): Hex {
  let s = '0x';
  for (let i = 0; i < bytes.length; i++) s += BYTE_HEX[bytes[i]!]!;
  return s as Hex;
}

function nibble(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  if (code >= 65 && code <= 70) return code - 55;
  return -1;
}

/**
 * Bytes of a `0x` hex string of exactly `lengthBytes` bytes, written into `out` at `offset` (or a new
 * array). Throws `LedgerInputError` naming `field` when the string is not that.
 */
export function hexToBytes(field: string, hex: string, lengthBytes: number, out?: Uint8Array, offset = 0): Uint8Array {
  if (typeof hex !== 'string' || hex.length !== 2 + 2 * lengthBytes || hex[0] !== '0' || hex[1] !== 'x') {
    throw new LedgerInputError(field, `expected 0x + ${2 * lengthBytes} hex, got ${describe(hex)}`);
  }
  const target = out ?? new Uint8Array(lengthBytes);
  const at = out ? offset : 0;
  for (let i = 0; i < lengthBytes; i++) {
    const hi = nibble(hex.charCodeAt(2 + 2 * i));
    const lo = nibble(hex.charCodeAt(3 + 2 * i));
    if (hi < 0 || lo < 0) throw new LedgerInputError(field, `expected 0x + ${2 * lengthBytes} hex, got ${describe(hex)}`);
    target[at + i] = (hi << 4) | lo;
  }
  return target;
}
