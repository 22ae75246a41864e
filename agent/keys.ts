/**
 * The gateway's identity: one secp256k1 key in the data directory (`gateway.key`, mode 0600), made
 * once by `flexgate keys init`. The key is never logged and never part of an error message; only
 * its address (the gateway's id, PROTOCOL.md §1) is shown.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, constants, fsyncSync, openSync, readFileSync, statSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { isPrivate } from 'tiny-secp256k1';
import { addressOf } from '../ledger-client/eip712.js';

export const KEY_FILE = 'gateway.key';

export class KeyError extends Error {
  override readonly name = 'KeyError';
}

export interface GatewayKey {
  /** 0x + 64 hex. Handle with care: never log it. */
  readonly privateKey: `0x${string}`;
  /** Lowercase 0x + 40 hex, as senders write it (PROTOCOL.md §1). */
  readonly address: `0x${string}`;
}

/** The EVM address of a secp256k1 key: the last 20 bytes of keccak256 of the uncompressed public key
 * (without its 0x04 prefix); ledger-client's, the one statuses are signed with. */
export function addressOfKey(privateKey: `0x${string}`): `0x${string}` {
  return addressOf(privateKey);
}

export function keyPath(dataDir: string): string {
  return join(dataDir, KEY_FILE);
}

function toKey(privateKey: `0x${string}`): GatewayKey {
  return { privateKey, address: addressOfKey(privateKey) };
}

/** Makes a new key; refuses to replace an existing one (a gateway's identity is not thrown away by accident). */
export function initGatewayKey(dataDir: string): GatewayKey {
  const path = keyPath(dataDir);
  let secret = randomBytes(32);
  while (!isPrivate(secret)) secret = randomBytes(32); // 0 or ≥ n: about 2^-128 of the draws
  const privateKey = `0x${secret.toString('hex')}` as const;
  let fd: number;
  try {
    // O_EXCL: never overwrite; mode 0600 from the first byte on.
    fd = openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new KeyError(`${path} already exists: this gateway has a key (flexgate keys show prints its address). To replace it, move the file away first.`);
    throw new KeyError(`cannot create ${path}: ${code ?? (e as Error).message}`);
  }
  try {
    writeSync(fd, `${privateKey}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  return toKey(privateKey);
}

/** Reads the key; every failure says what is wrong without showing the file's content. */
export function loadGatewayKey(dataDir: string): GatewayKey {
  const path = keyPath(dataDir);
  let mode: number;
  let text: string;
  try {
    mode = statSync(path).mode & 0o777;
    text = readFileSync(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new KeyError(`no gateway key at ${path}: run flexgate keys init`);
    throw new KeyError(`cannot read ${path}: ${code ?? 'unknown error'}`);
  }
  if ((mode & 0o077) !== 0) {
    throw new KeyError(`${path} is readable by others (mode ${mode.toString(8).padStart(4, '0')}): run chmod 600 ${path}`);
  }
  const value = text.trim();
  if (!/^0x[0-9a-fA-F]{64}$/.test(value)) throw new KeyError(`${path} does not hold a key (expected one line: 0x and 64 hex digits)`);
  const privateKey = value.toLowerCase() as `0x${string}`;
  if (!isPrivate(Buffer.from(privateKey.slice(2), 'hex'))) throw new KeyError(`${path} does not hold a valid secp256k1 key (out of range)`);
  return toKey(privateKey);
}
