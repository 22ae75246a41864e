/**
 * The keccak256 the trees use: js-sha3, pure JavaScript. Measured here (bench/proofs.ts) at 3.5-4.5×
 * @noble/hashes' keccak for tree building, which is what lets a gateway hash ≥ 50 000 readings/s on
 * one core (DESIGN.md). @noble/hashes stays for signatures (with @noble/curves); both give the
 * same hash, checked at load.
 */
import sha3 from 'js-sha3';
import { keccak_256 } from '@noble/hashes/sha3';

/** keccak256 of bytes, returning 32 bytes. */
export type Keccak256 = (data: Uint8Array) => Uint8Array;

const arrayBuffer = sha3.keccak256.arrayBuffer;

export const keccak256: Keccak256 = (data) => new Uint8Array(arrayBuffer(data));

// Two libraries, one hash: refuse to run if they ever disagree.
{
  const probe = new Uint8Array(193).map((_, i) => (i * 31 + 7) & 0xff);
  const a = keccak256(probe);
  const b = keccak_256(probe);
  if (a.length !== 32 || a.some((byte, i) => byte !== b[i])) throw new Error('js-sha3 and @noble/hashes disagree on keccak256');
}
