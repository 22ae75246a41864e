/**
 * The keccak256 of signed messages (EIP-712 digests, addresses): hash-wasm's Keccak, WebAssembly.
 * The daemon runs without V8's optimizing compiler (docs/flexgate.service), where a JavaScript
 * Keccak-f permutation costs ~100 µs; an order's digest needs five (its 544-byte struct, then the
 * 66-byte digest input), which hash-wasm does in ~10 µs, on the path from an order to the devices.
 * The metering trees keep js-sha3 (keccak.ts): their benchmark (bench/proofs.ts) measures them
 * against a bare loop of their own keccak, which js-sha3 meets and WebAssembly's per-call cost does
 * not. Only hash-wasm's one-algorithm Keccak bundle is loaded (~1.5 MB less than the whole library).
 * Checked against js-sha3 at load: refuses to run if they ever disagree.
 */
import { createRequire } from 'node:module';
import type { IHasher } from 'hash-wasm/dist/lib/WASMInterface.js';
import { keccak256 as treeKeccak256, type Keccak256 } from './keccak.js';

// The one-algorithm bundle has no types of its own: its createKeccak is hash-wasm's.
const { createKeccak } = createRequire(import.meta.url)('hash-wasm/dist/keccak.umd.min.js') as { createKeccak(bits: 256): Promise<IHasher> };
const hasher = await createKeccak(256);

/** keccak256 of bytes, 32 bytes out (a copy). One hasher, used synchronously: init → update → digest never interleave. */
export const messageKeccak256: Keccak256 = (data) => hasher.init().update(data).digest('binary');

{
  const probe = new Uint8Array(577).map((_, i) => (i * 31 + 7) & 0xff);
  const a = messageKeccak256(probe);
  const b = treeKeccak256(probe);
  if (a.length !== 32 || a.some((byte, i) => byte !== b[i])) throw new Error('hash-wasm and js-sha3 disagree on keccak256');
}
