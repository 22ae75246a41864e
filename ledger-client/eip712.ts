/**
 * EIP-712 signed messages of PROTOCOL.md §2: the five types exactly as hashed, the `flexgate` domain,
 * hashing (written out, checked against viem in the tests), signing and recovery (tiny-secp256k1:
 * libsecp256k1 compiled to WebAssembly; RFC 6979 deterministic, low s), and strict envelope parsing
 * and verification per §1–2. WebAssembly because the daemon runs without V8's optimizing compiler
 * (docs/flexgate.service): there a JavaScript recovery costs ~3 ms and a signature ~2.5 ms, the
 * libsecp256k1 ones ~0.3 ms and ~0.14 ms, on the path from an order to the devices.
 *
 * Numbers are JS numbers, as on the wire (integers within ±(2^53−1) and their type's range); they
 * become bigints only inside the hashing. Addresses and bytes32 are `0x` hex; received ones may be in
 * any case and come out of parsing lowercased.
 *
 * Input from outside never throws: `parseEnvelope`, `verifyEnvelope`, `verifyRawEnvelope` and
 * `recoverSigner` return `{ ok: false, reason: 'MALFORMED' | 'BAD_SIGNATURE', detail }`, the detail
 * naming the field at fault. The signing side throws `LedgerInputError` for a caller's own bad
 * message (a field out of range), since that is a bug, not input.
 */
import * as secp256k1 from 'tiny-secp256k1';
import { LedgerInputError } from './errors.js';
import { messageKeccak256 as keccak256 } from './message-keccak.js';
import { fieldProblem, hexToBytes, toHex, type Address, type FieldType, type Hex } from './wire.js';

export type { Address, Hex } from './wire.js';

/** The five message types of PROTOCOL.md §2, field by field in hashing order. */
export const EIP712_TYPES = {
  DispatchOrder: [
    { name: 'orderId', type: 'bytes32' },
    { name: 'aggregator', type: 'address' },
    { name: 'gateway', type: 'address' },
    { name: 'auctionId', type: 'bytes32' },
    { name: 'sequence', type: 'uint64' },
    { name: 'issuedAt', type: 'uint64' },
    { name: 'validUntil', type: 'uint64' },
    { name: 'start', type: 'uint64' },
    { name: 'durationMs', type: 'uint64' },
    { name: 'randomizeMs', type: 'uint64' },
    { name: 'rampMs', type: 'uint64' },
    { name: 'signal', type: 'uint8' },
    { name: 'valueW', type: 'int64' },
    { name: 'priceMicros', type: 'uint64' },
    { name: 'modification', type: 'uint32' },
  ],
  OrderStatus: [
    { name: 'orderId', type: 'bytes32' },
    { name: 'gateway', type: 'address' },
    { name: 'modification', type: 'uint32' },
    { name: 'status', type: 'uint16' },
    { name: 'reason', type: 'uint16' },
    { name: 'at', type: 'uint64' },
    { name: 'deliveredWh', type: 'int64' },
  ],
  AuctionAnnouncement: [
    { name: 'auctionId', type: 'bytes32' },
    { name: 'aggregator', type: 'address' },
    { name: 'direction', type: 'uint8' },
    { name: 'deliveryStart', type: 'uint64' },
    { name: 'deliveryEnd', type: 'uint64' },
    { name: 'quantityW', type: 'uint64' },
    { name: 'priceCapMicros', type: 'uint64' },
    { name: 'commitDeadline', type: 'uint64' },
    { name: 'revealDeadline', type: 'uint64' },
    { name: 'minCredit', type: 'uint32' },
  ],
  BidReveal: [
    { name: 'auctionId', type: 'bytes32' },
    { name: 'gateway', type: 'address' },
    { name: 'quantityW', type: 'uint64' },
    { name: 'priceMicros', type: 'uint64' },
    { name: 'salt', type: 'bytes32' },
  ],
  MeterProof: [
    { name: 'gateway', type: 'address' },
    { name: 'intervalStart', type: 'uint64' },
    { name: 'intervalEnd', type: 'uint64' },
    { name: 'count', type: 'uint32' },
    { name: 'root', type: 'bytes32' },
    { name: 'importWh', type: 'uint64' },
    { name: 'exportWh', type: 'uint64' },
  ],
} as const satisfies Record<string, readonly { name: string; type: FieldType }[]>;

export type MessageType = keyof typeof EIP712_TYPES;
export const MESSAGE_TYPES: readonly MessageType[] = ['DispatchOrder', 'OrderStatus', 'AuctionAnnouncement', 'BidReveal', 'MeterProof'];

/** Which field names the author: verification compares the recovered signer with it. */
export const AUTHOR_FIELD = {
  DispatchOrder: 'aggregator',
  OrderStatus: 'gateway',
  AuctionAnnouncement: 'aggregator',
  BidReveal: 'gateway',
  MeterProof: 'gateway',
} as const satisfies Record<MessageType, 'aggregator' | 'gateway'>;

/** PROTOCOL.md §3. Times are unix epoch ms. */
export interface DispatchOrder {
  orderId: Hex;
  aggregator: Address;
  gateway: Address;
  /** 0x00…00 when the order does not come from an auction. */
  auctionId: Hex;
  sequence: number;
  issuedAt: number;
  validUntil: number;
  /** Window start, unix ms; 0 = now. */
  start: number;
  durationMs: number;
  randomizeMs: number;
  rampMs: number;
  /** 0 CANCEL, 1 SITE_IMPORT_LIMIT, 2 SITE_EXPORT_LIMIT, 3 SITE_SETPOINT, 4 SITE_DELTA. */
  signal: number;
  valueW: number;
  priceMicros: number;
  modification: number;
}

/** PROTOCOL.md §3. */
export interface OrderStatus {
  orderId: Hex;
  gateway: Address;
  modification: number;
  /** IEEE 2030.5 response code (1 RECEIVED, 2 STARTED, …). */
  status: number;
  /** 0, or the rejection/abort reason of PROTOCOL.md §3. */
  reason: number;
  /** Unix ms. */
  at: number;
  deliveredWh: number;
}

/** PROTOCOL.md §4. Times are unix epoch ms. */
export interface AuctionAnnouncement {
  auctionId: Hex;
  aggregator: Address;
  /** 0 REDUCE, 1 INCREASE. */
  direction: number;
  deliveryStart: number;
  deliveryEnd: number;
  quantityW: number;
  priceCapMicros: number;
  commitDeadline: number;
  revealDeadline: number;
  minCredit: number;
}

/** PROTOCOL.md §4. */
export interface BidReveal {
  auctionId: Hex;
  gateway: Address;
  quantityW: number;
  priceMicros: number;
  salt: Hex;
}

/** PROTOCOL.md §5. `intervalStart`/`intervalEnd` are unix ms, `[start, end)`. */
export interface MeterProof {
  gateway: Address;
  intervalStart: number;
  intervalEnd: number;
  /** Number of leaves (readings) in the interval's tree. */
  count: number;
  /** RFC 6962 root of the interval's readings; 0x00…00 when `count` is 0. */
  root: Hex;
  importWh: number;
  exportWh: number;
}

export interface MessageMap {
  DispatchOrder: DispatchOrder;
  OrderStatus: OrderStatus;
  AuctionAnnouncement: AuctionAnnouncement;
  BidReveal: BidReveal;
  MeterProof: MeterProof;
}

// Compile-time check that every interface has exactly the fields of its EIP-712 type.
type FieldsOf<T extends MessageType> = (typeof EIP712_TYPES)[T][number]['name'];
type SameKeys<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const interfacesMatchTypes: { [T in MessageType]: SameKeys<keyof MessageMap[T], FieldsOf<T>> } = {
  DispatchOrder: true,
  OrderStatus: true,
  AuctionAnnouncement: true,
  BidReveal: true,
  MeterProof: true,
};
void interfacesMatchTypes;

/** A signed message as it travels (PROTOCOL.md §2). */
export interface Envelope<T extends MessageType = MessageType> {
  type: T;
  message: MessageMap[T];
  /** 65 bytes r ‖ s ‖ v, v ∈ {27, 28}. */
  signature: Hex;
}

/** The envelope of one of the types `T`, discriminated on `type`. */
export type EnvelopeOf<T extends MessageType = MessageType> = { [K in T]: Envelope<K> }[T];

export type RejectReason = 'MALFORMED' | 'BAD_SIGNATURE';
export interface Rejection {
  ok: false;
  reason: RejectReason;
  /** What is wrong, naming the field (e.g. `message.signal: 256 is out of range for uint8 …`). */
  detail: string;
}

/** The EIP-712 domain of every flexgate message (no verifyingContract, no salt). */
export function flexgateDomain(chainId: number): { name: 'flexgate'; version: '1'; chainId: number } {
  checkChainId(chainId);
  return { name: 'flexgate', version: '1', chainId };
}

function checkChainId(chainId: number): void {
  if (!Number.isSafeInteger(chainId) || chainId <= 0) throw new LedgerInputError('chainId', `expected a positive integer, got ${String(chainId)}`);
}

/** `Name(type name,…)` as hashed (the types reference no other struct, so this is all of encodeType). */
export function typeString(type: MessageType): string {
  return `${type}(${EIP712_TYPES[type].map((f) => `${f.type} ${f.name}`).join(',')})`;
}

/** keccak256 of the type string. */
export function typeHash(type: MessageType): Hex {
  return toHex(typeHashBytes(type));
}

/** The EIP-712 domain separator for `chainId`. */
export function domainSeparator(chainId: number): Hex {
  checkChainId(chainId);
  // hashStruct(EIP712Domain): typeHash ‖ keccak256(name) ‖ keccak256(version) ‖ uint256 chainId
  const text = new TextEncoder();
  const out = new Uint8Array(128);
  out.set(keccak256(text.encode('EIP712Domain(string name,string version,uint256 chainId)')), 0);
  out.set(keccak256(text.encode('flexgate')), 32);
  out.set(keccak256(text.encode('1')), 64);
  new DataView(out.buffer).setBigUint64(120, BigInt(chainId));
  return toHex(keccak256(out));
}

/** First problem of `message` against its type, as `message.field: problem`, or undefined. */
function messageProblem(type: MessageType, message: unknown): string | undefined {
  if (typeof message !== 'object' || message === null || Array.isArray(message)) {
    return `message: expected an object with the fields of ${type}, got ${message === null ? 'null' : Array.isArray(message) ? 'an array' : typeof message}`;
  }
  const values = message as Record<string, unknown>;
  const fields = EIP712_TYPES[type];
  for (const f of fields) {
    if (!Object.prototype.hasOwnProperty.call(values, f.name)) return `message.${f.name}: missing (a field of ${type})`;
    const problem = fieldProblem(f.type, values[f.name]);
    if (problem !== undefined) return `message.${f.name}: ${problem}`;
  }
  const known = new Set<string>(fields.map((f) => f.name));
  for (const key of Object.keys(values)) {
    if (!known.has(key)) return `message.${key}: not a field of ${type}`;
  }
  return undefined;
}

function checkMessage(type: MessageType, message: unknown): void {
  if (!Object.prototype.hasOwnProperty.call(EIP712_TYPES, type)) throw new LedgerInputError('type', `unknown message type ${String(type)}`);
  const problem = messageProblem(type, message);
  if (problem !== undefined) {
    const colon = problem.indexOf(': ');
    throw new LedgerInputError(problem.slice(0, colon), problem.slice(colon + 2));
  }
}

/**
 * The EIP-712 encoding of a message (PROTOCOL.md §2): typeHash ‖ one 32-byte word per field, in
 * the type's field order. Every field type here is static (bytes32, address, uintN, int64), so
 * encodeData is one word each: addresses left-padded, integers big-endian, int64 two's complement
 * sign-extended. Written out here (not through viem's generic encoder) because it is on the path
 * of every order and status; the golden vectors and a property test against viem check it.
 */
function encodeStruct(type: MessageType, message: object): Uint8Array {
  const fields = EIP712_TYPES[type];
  const values = message as Record<string, unknown>;
  const out = new Uint8Array(32 * (1 + fields.length));
  out.set(typeHashBytes(type), 0);
  const view = new DataView(out.buffer);
  fields.forEach((f, i) => {
    const at = 32 * (i + 1);
    const v = values[f.name];
    if (f.type === 'bytes32') hexToBytes(`message.${f.name}`, v as string, 32, out, at);
    else if (f.type === 'address') hexToBytes(`message.${f.name}`, v as string, 20, out, at + 12);
    else {
      const n = BigInt(v as number);
      if (n < 0n) out.fill(0xff, at, at + 24);
      view.setBigUint64(at + 24, BigInt.asUintN(64, n));
    }
  });
  return out;
}

const TYPE_HASHES = new Map<MessageType, Uint8Array>();
function typeHashBytes(type: MessageType): Uint8Array {
  let h = TYPE_HASHES.get(type);
  if (!h) {
    h = keccak256(new TextEncoder().encode(typeString(type)));
    TYPE_HASHES.set(type, h);
  }
  return h;
}

const DOMAIN_SEPARATORS = new Map<number, Uint8Array>();
function domainSeparatorBytes(chainId: number): Uint8Array {
  let d = DOMAIN_SEPARATORS.get(chainId);
  if (!d) {
    d = hexToBytes('domain', domainSeparator(chainId), 32);
    DOMAIN_SEPARATORS.set(chainId, d);
  }
  return d;
}

/** EIP-712 hashStruct of `message`. Throws `LedgerInputError` when a field does not fit its type. */
export function hashStruct<T extends MessageType>(type: T, message: MessageMap[T]): Hex {
  checkMessage(type, message);
  return toHex(keccak256(encodeStruct(type, message)));
}

/** The digest that is signed: keccak256(0x1901 ‖ domainSeparator ‖ hashStruct). */
export function digest<T extends MessageType>(type: T, message: MessageMap[T], chainId: number): Hex {
  checkMessage(type, message);
  const buf = new Uint8Array(66);
  buf[0] = 0x19;
  buf[1] = 0x01;
  buf.set(domainSeparatorBytes(chainId), 2);
  buf.set(keccak256(encodeStruct(type, message)), 34);
  return toHex(keccak256(buf));
}

function privateKeyBytes(privateKey: Hex): Uint8Array {
  const bytes = hexToBytes('privateKey', privateKey, 32);
  if (!secp256k1.isPrivate(bytes)) throw new LedgerInputError('privateKey', 'not a valid secp256k1 secret key (0 or ≥ the group order)');
  return bytes;
}

function addressOfPublicKey(uncompressed: Uint8Array): Address {
  return toHex(keccak256(uncompressed.subarray(1)).subarray(12));
}

/** The lowercase address of a private key. */
export function addressOf(privateKey: Hex): Address {
  return addressOfPublicKey(secp256k1.pointFromScalar(privateKeyBytes(privateKey), false)!);
}

/** Signs a 32-byte digest: r ‖ s ‖ v, low s, v ∈ {27, 28}, RFC 6979 deterministic (no extra entropy). */
export function signDigest(privateKey: Hex, digestHash: Hex): Hex {
  // libsecp256k1: RFC 6979 nonce, s normalized to the lower half
  const sig = secp256k1.signRecoverable(hexToBytes('digest', digestHash, 32), privateKeyBytes(privateKey));
  const out = new Uint8Array(65);
  out.set(sig.signature, 0);
  out[64] = 27 + sig.recoveryId;
  return toHex(out);
}

/**
 * Signs `message` of `type` for `chainId`: the 65-byte signature r ‖ s ‖ v as hex.
 * Throws `LedgerInputError` when a field does not fit its type or the key is not a key.
 */
export function sign<T extends MessageType>(privateKey: Hex, type: T, message: MessageMap[T], chainId: number): Hex {
  return signDigest(privateKey, digest(type, message, chainId));
}

/** A ready-to-send envelope (hex fields lowercased, as senders write them). */
export function signEnvelope<T extends MessageType>(privateKey: Hex, type: T, message: MessageMap[T], chainId: number): Envelope<T> {
  const signature = sign(privateKey, type, message, chainId);
  const normalized: Record<string, unknown> = {};
  const values = message as unknown as Record<string, unknown>;
  for (const f of EIP712_TYPES[type]) {
    const v = values[f.name];
    normalized[f.name] = typeof v === 'string' ? v.toLowerCase() : v;
  }
  return { type, message: normalized as unknown as MessageMap[T], signature };
}

const SIGNATURE_RE = /^0x[0-9a-fA-F]{130}$/;
/** The order n of secp256k1's group. */
const CURVE_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_ORDER = CURVE_ORDER >> 1n;

export type RecoverResult = { ok: true; signer: Address } | Rejection;

/**
 * The signer of a 32-byte digest. A signature not matching `^0x[0-9a-fA-F]{130}$` is MALFORMED;
 * v ∉ {27, 28}, r or s out of [1, n−1], high s (s > n/2) or no recoverable key is BAD_SIGNATURE.
 */
export function recoverDigestSigner(digestHash: Hex | Uint8Array, signature: unknown): RecoverResult {
  if (typeof signature !== 'string' || !SIGNATURE_RE.test(signature)) {
    const got = typeof signature === 'string' ? `${signature.length} characters` : signature === null ? 'null' : typeof signature;
    return { ok: false, reason: 'MALFORMED', detail: `signature: expected 0x + 130 hex (65 bytes r ‖ s ‖ v), got ${got}` };
  }
  const bytes = hexToBytes('signature', signature, 65);
  const v = bytes[64]!;
  if (v !== 27 && v !== 28) return { ok: false, reason: 'BAD_SIGNATURE', detail: `signature: v = ${v}, expected 27 or 28` };
  const r = BigInt(toHex(bytes.subarray(0, 32)));
  const s = BigInt(toHex(bytes.subarray(32, 64)));
  if (r === 0n || r >= CURVE_ORDER) return { ok: false, reason: 'BAD_SIGNATURE', detail: 'signature: r is not in [1, n−1]' };
  if (s === 0n || s >= CURVE_ORDER) return { ok: false, reason: 'BAD_SIGNATURE', detail: 'signature: s is not in [1, n−1]' };
  if (s > HALF_ORDER) return { ok: false, reason: 'BAD_SIGNATURE', detail: 'signature: high s (s > n/2)' };
  const hash = typeof digestHash === 'string' ? hexToBytes('digest', digestHash, 32) : digestHash;
  let point: Uint8Array | null;
  try {
    // recovery id v − 27: R = (r, y of that parity); r < n here, so never the r + n case (ids 2, 3)
    point = secp256k1.recover(hash, bytes.subarray(0, 64), v === 27 ? 0 : 1, false);
  } catch (e) {
    return { ok: false, reason: 'BAD_SIGNATURE', detail: `signature: no public key recovers from it (${e instanceof Error ? e.message : String(e)})` };
  }
  if (point === null) return { ok: false, reason: 'BAD_SIGNATURE', detail: 'signature: no public key recovers from it' };
  return { ok: true, signer: addressOfPublicKey(point) };
}

/** The signer of `message` of `type` on `chainId` (see `recoverDigestSigner`); a bad message is MALFORMED. */
export function recoverSigner<T extends MessageType>(type: T, message: MessageMap[T], chainId: number, signature: unknown): RecoverResult {
  const problem = Object.prototype.hasOwnProperty.call(EIP712_TYPES, type) ? messageProblem(type, message) : `type: unknown message type ${String(type)}`;
  if (problem !== undefined) return { ok: false, reason: 'MALFORMED', detail: problem };
  return recoverDigestSigner(digest(type, message, chainId), signature);
}

export interface EnvelopeOptions<T extends MessageType> {
  /** Accept only these types (e.g. the order topic takes only DispatchOrder); any other is MALFORMED. */
  expectedType?: T | readonly T[];
}

export type ParseResult<T extends MessageType = MessageType> = { ok: true; envelope: EnvelopeOf<T> } | Rejection;

function isMessageType(value: unknown): value is MessageType {
  return typeof value === 'string' && Object.prototype.hasOwnProperty.call(EIP712_TYPES, value);
}

const ENVELOPE_KEYS = ['type', 'message', 'signature'] as const;

/**
 * Checks the shape of an envelope (already JSON-parsed) per PROTOCOL.md §1–2 without checking the
 * signature: exactly the keys type, message, signature; a known (and expected) type; exactly the
 * fields of the type, each valid; a signature of 0x + 130 hex. Everything else is MALFORMED.
 * The returned envelope is a fresh object with hex fields lowercased.
 */
export function parseEnvelope<T extends MessageType = MessageType>(value: unknown, options: EnvelopeOptions<T> = {}): ParseResult<T> {
  const malformed = (detail: string): Rejection => ({ ok: false, reason: 'MALFORMED', detail });
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return malformed(`envelope: expected an object {type, message, signature}, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  const record = value as Record<string, unknown>;
  for (const key of ENVELOPE_KEYS) {
    if (!Object.prototype.hasOwnProperty.call(record, key)) return malformed(`envelope: missing key "${key}"`);
  }
  for (const key of Object.keys(record)) {
    if (!(ENVELOPE_KEYS as readonly string[]).includes(key)) return malformed(`envelope: unexpected key ${JSON.stringify(key)} (only type, message, signature)`);
  }
  const type = record['type'];
  if (!isMessageType(type)) return malformed(`type: unknown message type ${typeof type === 'string' ? JSON.stringify(type) : String(type)}`);
  if (options.expectedType !== undefined) {
    const expected: readonly MessageType[] = typeof options.expectedType === 'string' ? [options.expectedType] : options.expectedType;
    if (!expected.includes(type)) return malformed(`type: expected ${expected.join(' or ')}, got ${type}`);
  }
  const problem = messageProblem(type, record['message']);
  if (problem !== undefined) return malformed(problem);
  const signature = record['signature'];
  if (typeof signature !== 'string' || !SIGNATURE_RE.test(signature)) {
    const got = typeof signature === 'string' ? `${signature.length} characters` : signature === null ? 'null' : typeof signature;
    return malformed(`signature: expected 0x + 130 hex (65 bytes r ‖ s ‖ v), got ${got}`);
  }
  const source = record['message'] as Record<string, unknown>;
  const message: Record<string, unknown> = {};
  for (const f of EIP712_TYPES[type]) {
    const v = source[f.name];
    message[f.name] = typeof v === 'string' ? v.toLowerCase() : v;
  }
  const envelope = { type, message, signature: signature.toLowerCase() } as unknown as EnvelopeOf<T>;
  return { ok: true, envelope };
}

export type VerifyResult<T extends MessageType = MessageType> = { ok: true; envelope: EnvelopeOf<T>; signer: Address } | Rejection;

/**
 * Parses (`parseEnvelope`) and verifies an envelope for `chainId`: the signer recovered from the
 * EIP-712 digest must be the type's author (`AUTHOR_FIELD`), compared case-insensitively.
 */
export function verifyEnvelope<T extends MessageType = MessageType>(value: unknown, options: EnvelopeOptions<T> & { chainId: number }): VerifyResult<T> {
  const parsed = parseEnvelope(value, options);
  if (!parsed.ok) return parsed;
  const envelope = parsed.envelope as Envelope;
  const recovered = recoverDigestSigner(digest(envelope.type, envelope.message, options.chainId), envelope.signature);
  if (!recovered.ok) return recovered;
  const authorField = AUTHOR_FIELD[envelope.type];
  const author = (envelope.message as unknown as Record<string, string>)[authorField]!;
  if (recovered.signer !== author) {
    return { ok: false, reason: 'BAD_SIGNATURE', detail: `signature: signed by ${recovered.signer}, not by message.${authorField} ${author}` };
  }
  return { ok: true, envelope: parsed.envelope, signer: recovered.signer };
}

/** The largest message on the wire, in bytes of UTF-8 (PROTOCOL.md §1). */
export const MAX_MESSAGE_BYTES = 16 * 1024;

export type JsonResult = { ok: true; value: unknown } | Rejection;

/** Decodes a wire message: at most 16 KiB of valid UTF-8 holding one JSON value; else MALFORMED. */
export function parseWireJson(raw: string | Uint8Array): JsonResult {
  const sizeBytes = typeof raw === 'string' ? Buffer.byteLength(raw, 'utf8') : raw.byteLength;
  if (sizeBytes > MAX_MESSAGE_BYTES) return { ok: false, reason: 'MALFORMED', detail: `message: ${sizeBytes} bytes, over the ${MAX_MESSAGE_BYTES}-byte limit` };
  let text: string;
  if (typeof raw === 'string') {
    text = raw;
  } else {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      return { ok: false, reason: 'MALFORMED', detail: 'message: not valid UTF-8' };
    }
  }
  try {
    // JSON.parse's result is unknown until checked; nothing below trusts its shape.
    const value: unknown = JSON.parse(text);
    return { ok: true, value };
  } catch (e) {
    return { ok: false, reason: 'MALFORMED', detail: `message: not JSON (${e instanceof Error ? e.message : String(e)})` };
  }
}

/** `parseWireJson` then `verifyEnvelope`: what a receiver runs on a payload from the broker. */
export function verifyRawEnvelope<T extends MessageType = MessageType>(raw: string | Uint8Array, options: EnvelopeOptions<T> & { chainId: number }): VerifyResult<T> {
  const json = parseWireJson(raw);
  if (!json.ok) return json;
  return verifyEnvelope(json.value, options);
}
