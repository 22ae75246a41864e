/**
 * The generator of the property tests (not library code): bad orders whose expected reason is known
 * from the faults injected into them, never from running the verifier.
 *
 * An order is a pre-signed *plan* (content faults: trust, gateway, expiry, replay, clock skew,
 * signal, range, unknown order; each known by the reason it must produce) plus, at test time, an
 * envelope *mutation* (malformed bytes, JSON, keys, field values; high-s, v ∉ {27, 28}, r/s out of
 * range, tampering) and *neutral* changes that must not change the verdict (address and hex case,
 * number spelling, whitespace, key order, padding up to the 16 KiB limit). The expected reason is
 * the smallest of the reasons injected: the reason table's order.
 *
 * Signing costs ~1 ms, so plans are signed once into a pool and mutated for every case; each case
 * runs against the same baseline state (inside a transaction rolled back afterwards).
 */
import fc from 'fast-check';
import { secp256k1 } from '@noble/curves/secp256k1';
import { getAddress } from 'viem';
import { expect } from 'vitest';
import { EIP712_TYPES, MAX_MESSAGE_BYTES, sign, signEnvelope, type DispatchOrder, type Envelope, type Hex } from '../../ledger-client/eip712.js';
import { REJECTION_STATUS } from './protocol.js';
import { AGGREGATOR, AGGREGATOR_2, CHAIN_ID, GATEWAY, OTHER_GATEWAY, SITE, STRANGER, T0, makeSide, type TestSide } from './test-support.js';

export const NOW = T0 + 3_600_000;
const H = 3_600_000;
const N = secp256k1.Point.Fn.ORDER;

/** Baseline state the cases run against (built by the test through the order book). */
export const L_AGG = 5_000_000; // the last sequence of AGGREGATOR
export const L_AGG2 = 7_000_000; // the last sequence of AGGREGATOR_2
export const A_ID: Hex = `0x${'a1'.repeat(32)}`; // AGGREGATOR's live order, known modification 2
export const B_ID: Hex = `0x${'b2'.repeat(32)}`; // AGGREGATOR's cancelled order, known modification 1
export const C_ID: Hex = `0x${'c3'.repeat(32)}`; // AGGREGATOR_2's pending order

export type Identity = 'new' | 'modifyA' | 'cancelA' | 'replayA' | 'replayCancelA' | 'unknownMod' | 'unknownCancel' | 'endedModB' | 'endedCancelB' | 'replayB';
export type Expiry = 'none' | 'validUntil' | 'window';
export type RangeFault =
  | 'none'
  | 'importNeg'
  | 'importHigh'
  | 'exportNeg'
  | 'exportHigh'
  | 'setpointHigh'
  | 'setpointLow'
  | 'deltaLow'
  | 'deltaHigh'
  | 'duration0'
  | 'durationLong'
  | 'startFar'
  | 'randomizeAll';
export type SignerKind = 'agg' | 'agg2' | 'stranger' | 'wrongKey' | 'otherChain';

export interface Plan {
  identity: Identity;
  signer: SignerKind;
  wrongGateway: boolean;
  expiry: Expiry;
  replaySeq: boolean;
  skew: boolean;
  badSignal: boolean;
  range: RangeFault;
  seed: number;
}

export type Expected = { ok: true; kind: 'new' | 'modification' | 'cancel' } | { ok: false; reason: number };

const CANCELS: readonly Identity[] = ['cancelA', 'replayCancelA', 'unknownCancel', 'endedCancelB'];

/** The reason a plan must get, from the faults it holds (the smallest wins), or acceptance. */
export function expectedOfPlan(plan: Plan): Expected {
  const isCancel = CANCELS.includes(plan.identity);
  const reasons: number[] = [];
  if (plan.signer === 'wrongKey' || plan.signer === 'otherChain') reasons.push(2);
  if (plan.signer === 'stranger') reasons.push(3);
  if (plan.wrongGateway) reasons.push(4);
  if (plan.expiry === 'validUntil' || (plan.expiry === 'window' && !isCancel)) reasons.push(5);
  if (plan.replaySeq) reasons.push(6);
  if (plan.identity === 'replayA' || plan.identity === 'replayCancelA' || plan.identity === 'replayB') reasons.push(6);
  if (plan.skew) reasons.push(7);
  if (plan.badSignal && !isCancel) reasons.push(8);
  if (plan.range !== 'none' && !isCancel) reasons.push(9);
  const foreign = plan.signer === 'agg2'; // A and B belong to AGGREGATOR
  if (['unknownMod', 'unknownCancel', 'endedModB', 'endedCancelB'].includes(plan.identity)) reasons.push(10);
  if (foreign && (plan.identity === 'modifyA' || plan.identity === 'cancelA')) reasons.push(10);
  if (reasons.length > 0) return { ok: false, reason: Math.min(...reasons) };
  return { ok: true, kind: isCancel ? 'cancel' : plan.identity === 'modifyA' ? 'modification' : 'new' };
}

/** mulberry32: the plan's numbers follow from its seed. */
function rng(seed: number): { int(min: number, max: number): number; pick<T>(xs: readonly T[]): T; chance(p: number): boolean } {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    pick: (xs) => xs[Math.floor(next() * xs.length)]!,
    chance: (p) => next() < p,
  };
}

/** 1 (the boundary) a third of the time, else uniform in [1, max]. */
function beyond(r: ReturnType<typeof rng>, max: number): number {
  return r.pick([1, r.int(1, max), r.int(1, max)]);
}

function hex32(r: ReturnType<typeof rng>): Hex {
  let s = '0x';
  for (let i = 0; i < 8; i++) s += r.int(0, 0xffffffff).toString(16).padStart(8, '0');
  return s as Hex;
}

/** A random plan: each content fault with a modest probability, so plans hold 0, 1, 2 or more. */
export function randomPlan(seed: number): Plan {
  const r = rng(seed ^ 0x5eed);
  return {
    identity: r.chance(0.45) ? 'new' : r.pick(['modifyA', 'cancelA', 'replayA', 'replayCancelA', 'unknownMod', 'unknownCancel', 'endedModB', 'endedCancelB', 'replayB'] as const),
    signer: r.chance(0.6) ? 'agg' : r.pick(['agg2', 'agg2', 'stranger', 'wrongKey', 'otherChain'] as const),
    wrongGateway: r.chance(0.12),
    expiry: r.chance(0.8) ? 'none' : r.pick(['validUntil', 'window'] as const),
    replaySeq: r.chance(0.12),
    skew: r.chance(0.12),
    badSignal: r.chance(0.1),
    range: r.chance(0.7)
      ? 'none'
      : r.pick(['importNeg', 'importHigh', 'exportNeg', 'exportHigh', 'setpointHigh', 'setpointLow', 'deltaLow', 'deltaHigh', 'duration0', 'durationLong', 'startFar', 'randomizeAll'] as const),
    seed,
  };
}

/** The message of a plan (deterministic from its seed). */
export function messageOfPlan(plan: Plan): DispatchOrder {
  const r = rng(plan.seed);
  const isCancel = CANCELS.includes(plan.identity);
  const aggregator = plan.signer === 'agg2' ? AGGREGATOR_2.address : plan.signer === 'stranger' ? STRANGER.address : AGGREGATOR.address;
  const last = plan.signer === 'agg2' ? L_AGG2 : L_AGG;
  const sequence = plan.replaySeq ? r.pick([last, r.int(0, last)]) : last + beyond(r, 1_000_000_000);
  const validUntil = plan.expiry === 'validUntil' ? NOW - beyond(r, 24 * H) : NOW + r.pick([0, r.int(0, H)]);
  const issuedAt = plan.skew ? NOW + 30_000 + beyond(r, H) : NOW - r.pick([0, 30_000, r.int(0, H)]) + r.pick([0, 30_000]);

  let orderId: Hex;
  let modification: number;
  switch (plan.identity) {
    case 'new':
      orderId = hex32(r);
      modification = 0;
      break;
    case 'modifyA':
    case 'cancelA':
      orderId = A_ID;
      modification = r.pick([3, r.int(3, 1000)]);
      break;
    case 'replayA':
    case 'replayCancelA':
      orderId = A_ID;
      modification = r.pick([2, r.int(0, 2)]);
      break;
    case 'unknownMod':
      orderId = hex32(r);
      modification = r.int(1, 0xffff_ffff);
      break;
    case 'unknownCancel':
      orderId = hex32(r);
      modification = r.int(0, 1000);
      break;
    case 'endedModB':
    case 'endedCancelB':
      orderId = B_ID;
      modification = r.pick([2, r.int(2, 1000)]);
      break;
    case 'replayB':
      orderId = B_ID;
      modification = r.pick([1, r.int(0, 1)]);
      break;
  }

  // duration and randomize
  let durationMs = plan.range === 'duration0' ? 0 : plan.range === 'durationLong' ? 24 * H + beyond(r, H) : r.pick([1, 24 * H, r.int(1, 24 * H)]);
  let randomizeMs = plan.range === 'randomizeAll' ? durationMs - 1 + beyond(r, H) : durationMs === 0 ? 0 : r.chance(0.5) ? 0 : r.int(0, durationMs - 1);
  // start
  let start: number;
  if (plan.expiry === 'window') start = NOW - durationMs - r.pick([0, 0, r.int(0, H)]);
  else if (plan.range === 'startFar') start = NOW + 48 * H + beyond(r, H);
  else {
    const choices: number[] = [0, NOW + r.int(1, 48 * H), NOW + 48 * H];
    if (durationMs > 0) choices.push(NOW - r.int(0, durationMs - 1), NOW - durationMs + 1);
    start = r.pick(choices);
  }
  // signal and value
  let signal: number;
  let valueW: number;
  const { siteMaxImportW: imp, siteMaxExportW: exp, deltaRangeW } = SITE;
  if (isCancel) {
    signal = 0;
    valueW = r.int(-1e9, 1e9);
    if (r.chance(0.5)) {
      durationMs = r.int(0, 1e9); // ignored for a CANCEL
      randomizeMs = r.int(0, 1e9);
    }
  } else if (plan.badSignal) {
    signal = r.int(5, 255);
    valueW = r.int(-1e6, 1e6);
  } else {
    switch (plan.range) {
      case 'importNeg':
        [signal, valueW] = [1, -beyond(r, 1e6)];
        break;
      case 'importHigh':
        [signal, valueW] = [1, imp + beyond(r, 1e6)];
        break;
      case 'exportNeg':
        [signal, valueW] = [2, -beyond(r, 1e6)];
        break;
      case 'exportHigh':
        [signal, valueW] = [2, exp + beyond(r, 1e6)];
        break;
      case 'setpointHigh':
        [signal, valueW] = [3, imp + beyond(r, 1e6)];
        break;
      case 'setpointLow':
        [signal, valueW] = [3, -exp - beyond(r, 1e6)];
        break;
      case 'deltaLow':
        [signal, valueW] = [4, deltaRangeW.minW - beyond(r, 1e6)];
        break;
      case 'deltaHigh':
        [signal, valueW] = [4, deltaRangeW.maxW + beyond(r, 1e6)];
        break;
      default: {
        signal = r.int(1, 4);
        const [lo, hi] = signal === 1 ? [0, imp] : signal === 2 ? [0, exp] : signal === 3 ? [-exp, imp] : [deltaRangeW.minW, deltaRangeW.maxW];
        valueW = r.pick([lo, hi, r.int(lo, hi)]);
      }
    }
  }
  return {
    orderId,
    aggregator,
    gateway: plan.wrongGateway ? OTHER_GATEWAY.address : GATEWAY.address,
    auctionId: r.chance(0.7) ? `0x${'00'.repeat(32)}` : hex32(r),
    sequence,
    issuedAt,
    validUntil,
    start,
    durationMs,
    randomizeMs,
    rampMs: r.int(0, H),
    signal,
    valueW,
    priceMicros: r.int(0, 1e9),
    modification,
  };
}

export interface PooledOrder {
  plan: Plan;
  envelope: Envelope<'DispatchOrder'>;
  expected: Expected;
}

/** Signs `count` random plans (seeds from `firstSeed`). */
export function signPool(count: number, firstSeed: number): PooledOrder[] {
  const pool: PooledOrder[] = [];
  for (let i = 0; i < count; i++) {
    const plan = randomPlan(firstSeed + i);
    const message = messageOfPlan(plan);
    const key = plan.signer === 'agg2' || plan.signer === 'wrongKey' ? AGGREGATOR_2.privateKey : plan.signer === 'stranger' ? STRANGER.privateKey : AGGREGATOR.privateKey;
    const envelope = signEnvelope(key, 'DispatchOrder', message, plan.signer === 'otherChain' ? 1 : CHAIN_ID);
    pool.push({ plan, envelope, expected: expectedOfPlan(plan) });
  }
  return pool;
}

// ---- mutations ----------------------------------------------------------------------------------

const FIELDS = EIP712_TYPES.DispatchOrder.map((f) => f.name);
const NUMBER_FIELDS = EIP712_TYPES.DispatchOrder.filter((f) => f.type !== 'address' && f.type !== 'bytes32').map((f) => f.name);
const HEX_FIELDS = EIP712_TYPES.DispatchOrder.filter((f) => f.type === 'address' || f.type === 'bytes32').map((f) => f.name);
const TYPE_OF: Record<string, string> = Object.fromEntries(EIP712_TYPES.DispatchOrder.map((f) => [f.name, f.type]));

/** A fault that makes the message MALFORMED (1) or its signature BAD (2), or none. */
export type Mutation =
  | { kind: 'none' }
  | { kind: 'randomBytes'; bytes: Uint8Array }
  | { kind: 'truncate'; at: number }
  | { kind: 'invalidUtf8'; at: number }
  | { kind: 'oversize'; extra: number }
  | { kind: 'wrongType'; value: unknown }
  | { kind: 'missingKey'; key: 'type' | 'message' | 'signature' }
  | { kind: 'extraKey'; key: string; value: unknown }
  | { kind: 'envelopeNotObject'; value: unknown }
  | { kind: 'messageNotObject'; value: unknown }
  | { kind: 'extraField'; field: string; value: unknown }
  | { kind: 'missingField'; field: string }
  | { kind: 'wrongValueType'; field: string; value: unknown }
  | { kind: 'float'; field: string; fraction: number }
  | { kind: 'stringNumber'; field: string }
  | { kind: 'outOfTypeRange'; field: string; beyond: number }
  | { kind: 'badHex'; field: string; how: 'short' | 'long' | 'nonHex' | 'no0x' }
  | { kind: 'badSignatureFormat'; how: 'short' | 'long' | 'nonHex' | 'no0x' | 'number' | 'null' }
  | { kind: 'highS' }
  | { kind: 'badV'; v: number }
  | { kind: 'rsOutOfRange'; which: 'r0' | 's0' | 'rN' | 'sN' }
  | { kind: 'tamper'; field: 'valueW' | 'sequence' | 'priceMicros' | 'rampMs' | 'orderId' | 'validUntil' | 'issuedAt'; delta: number };

export function reasonOfMutation(m: Mutation): number | undefined {
  switch (m.kind) {
    case 'none':
      return undefined;
    case 'highS':
    case 'badV':
    case 'rsOutOfRange':
    case 'tamper':
      return 2;
    default:
      return 1;
  }
}

/** Changes that must not change the verdict. */
export type Neutral =
  | { kind: 'caseMix'; field: string; how: 'upper' | 'eip55' | 'random'; seed: number }
  | { kind: 'signatureUpper' }
  | { kind: 'numberSpelling'; field: string; how: 'exponent' | 'point0' }
  | { kind: 'pretty'; indent: number }
  | { kind: 'shuffleKeys'; seed: number }
  | { kind: 'pad'; bytes: number };

const jsonScalar = fc.oneof(fc.string({ maxLength: 12 }), fc.boolean(), fc.constant(null), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.integer());
const jsonValue = fc.oneof(jsonScalar, fc.array(jsonScalar, { maxLength: 3 }), fc.dictionary(fc.string({ maxLength: 5 }), jsonScalar, { maxKeys: 3 }));

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  { weight: 30, arbitrary: fc.constant({ kind: 'none' } as const) },
  { weight: 2, arbitrary: fc.uint8Array({ minLength: 0, maxLength: 300 }).map((bytes) => ({ kind: 'randomBytes', bytes }) as const) },
  { weight: 2, arbitrary: fc.nat().map((at) => ({ kind: 'truncate', at }) as const) },
  { weight: 2, arbitrary: fc.nat().map((at) => ({ kind: 'invalidUtf8', at }) as const) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 5000 }).map((extra) => ({ kind: 'oversize', extra }) as const) },
  { weight: 2, arbitrary: fc.constantFrom<unknown>('OrderStatus', 'dispatchorder', 'DispatchOrder ', '', 7, null, ['DispatchOrder']).map((value) => ({ kind: 'wrongType', value }) as const) },
  { weight: 2, arbitrary: fc.constantFrom('type', 'message', 'signature').map((key) => ({ kind: 'missingKey', key }) as const) },
  { weight: 2, arbitrary: fc.tuple(fc.constantFrom('signer', 'extra', 'Type', '__proto__', 'version'), jsonValue).map(([key, value]) => ({ kind: 'extraKey', key, value }) as const) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>([], 'DispatchOrder', 42, null, true).map((value) => ({ kind: 'envelopeNotObject', value }) as const) },
  { weight: 1, arbitrary: fc.constantFrom<unknown>([], 'x', 0, null, false).map((value) => ({ kind: 'messageNotObject', value }) as const) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom('extra', 'OrderId', 'order_id', '__proto__', 'value', 'chainId'), jsonValue).map(([field, value]) => ({ kind: 'extraField', field, value }) as const) },
  { weight: 3, arbitrary: fc.constantFrom(...FIELDS).map((field) => ({ kind: 'missingField', field }) as const) },
  {
    weight: 3,
    arbitrary: fc
      .tuple(fc.constantFrom(...FIELDS), fc.oneof(fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 2 }), fc.constant({}), fc.string({ maxLength: 8 })))
      .map(([field, value]) => ({ kind: 'wrongValueType', field, value }) as const),
  },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...NUMBER_FIELDS), fc.constantFrom(0.5, 0.25, 0.001, 0.75)).map(([field, fraction]) => ({ kind: 'float', field, fraction }) as const) },
  { weight: 3, arbitrary: fc.constantFrom(...NUMBER_FIELDS).map((field) => ({ kind: 'stringNumber', field }) as const) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...NUMBER_FIELDS), fc.integer({ min: 0, max: 1000 })).map(([field, beyond]) => ({ kind: 'outOfTypeRange', field, beyond }) as const) },
  { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...HEX_FIELDS), fc.constantFrom('short', 'long', 'nonHex', 'no0x') as fc.Arbitrary<'short' | 'long' | 'nonHex' | 'no0x'>).map(([field, how]) => ({ kind: 'badHex', field, how }) as const) },
  { weight: 2, arbitrary: fc.constantFrom('short', 'long', 'nonHex', 'no0x', 'number', 'null') .map((how) => ({ kind: 'badSignatureFormat', how: how as 'short' }) as const) },
  { weight: 4, arbitrary: fc.constant({ kind: 'highS' } as const) },
  { weight: 3, arbitrary: fc.oneof(fc.integer({ min: 0, max: 26 }), fc.integer({ min: 29, max: 255 })).map((v) => ({ kind: 'badV', v }) as const) },
  { weight: 2, arbitrary: fc.constantFrom('r0', 's0', 'rN', 'sN').map((which) => ({ kind: 'rsOutOfRange', which: which as 'r0' }) as const) },
  {
    weight: 5,
    arbitrary: fc
      .tuple(fc.constantFrom('valueW', 'sequence', 'priceMicros', 'rampMs', 'orderId', 'validUntil', 'issuedAt'), fc.integer({ min: 1, max: 1000 }))
      .map(([field, delta]) => ({ kind: 'tamper', field: field as 'valueW', delta }) as const),
  },
);

export const neutralArb: fc.Arbitrary<Neutral[]> = fc.array(
  fc.oneof(
    fc.tuple(fc.constantFrom(...HEX_FIELDS), fc.constantFrom('upper', 'eip55', 'random'), fc.nat()).map(([field, how, seed]) => ({ kind: 'caseMix', field, how: how as 'upper', seed }) as const),
    fc.constant({ kind: 'signatureUpper' } as const),
    fc.tuple(fc.constantFrom(...NUMBER_FIELDS), fc.constantFrom('exponent', 'point0')).map(([field, how]) => ({ kind: 'numberSpelling', field, how: how as 'exponent' }) as const),
    fc.integer({ min: 0, max: 4 }).map((indent) => ({ kind: 'pretty', indent }) as const),
    fc.nat().map((seed) => ({ kind: 'shuffleKeys', seed }) as const),
    fc.integer({ min: 0, max: 20_000 }).map((bytes) => ({ kind: 'pad', bytes }) as const),
  ),
  { maxLength: 4 },
);

function mixCase(value: string, how: 'upper' | 'eip55' | 'random', seed: number): string {
  if (how === 'upper') return `0x${value.slice(2).toUpperCase()}`;
  if (how === 'eip55' && value.length === 42) return getAddress(value);
  const r = rng(seed);
  return `0x${[...value.slice(2)].map((c) => (r.chance(0.5) ? c.toUpperCase() : c)).join('')}`;
}

function editSignature(signature: string, edit: (bytes: Uint8Array) => void): string {
  const bytes = Uint8Array.from(Buffer.from(signature.slice(2), 'hex'));
  edit(bytes);
  return `0x${Buffer.from(bytes).toString('hex')}`;
}

function setWord(bytes: Uint8Array, offset: number, value: bigint): void {
  bytes.set(Buffer.from(value.toString(16).padStart(64, '0'), 'hex'), offset);
}

type Json = Record<string, unknown>;

/** The wire bytes of a pooled order with a mutation and neutral changes applied. */
export function render(order: PooledOrder, mutation: Mutation, neutral: readonly Neutral[]): Uint8Array {
  const e = JSON.parse(JSON.stringify(order.envelope)) as Json & { message: Json; signature: string };
  const m = e.message;
  // neutral changes on the object
  let pretty = 0;
  let pad = 0;
  const spellings: { field: string; how: 'exponent' | 'point0' }[] = [];
  let shuffle: number | undefined;
  for (const n of neutral) {
    if (n.kind === 'caseMix') m[n.field] = mixCase(m[n.field] as string, n.how, n.seed);
    else if (n.kind === 'signatureUpper') e.signature = `0x${e.signature.slice(2).toUpperCase()}`;
    else if (n.kind === 'pretty') pretty = n.indent;
    else if (n.kind === 'pad') pad = n.bytes;
    else if (n.kind === 'numberSpelling') spellings.push(n);
    else shuffle = n.seed;
  }
  // the fault on the object
  let root: unknown = e;
  switch (mutation.kind) {
    case 'wrongType':
      e.type = mutation.value;
      break;
    case 'missingKey':
      delete e[mutation.key];
      break;
    case 'extraKey':
      Object.defineProperty(e, mutation.key, { value: mutation.value, enumerable: true, writable: true, configurable: true });
      break;
    case 'envelopeNotObject':
      root = mutation.value;
      break;
    case 'messageNotObject':
      e.message = mutation.value as Json;
      break;
    case 'extraField':
      Object.defineProperty(m, mutation.field, { value: mutation.value, enumerable: true, writable: true, configurable: true });
      break;
    case 'missingField':
      delete m[mutation.field];
      break;
    case 'wrongValueType': {
      // a string holding the field's own valid hex is not wrong: make it wrong
      const v = mutation.value;
      m[mutation.field] = typeof v === 'string' && (TYPE_OF[mutation.field] === 'address' || TYPE_OF[mutation.field] === 'bytes32') ? `${v}!` : v;
      break;
    }
    case 'float':
      m[mutation.field] = (m[mutation.field] as number) + mutation.fraction;
      break;
    case 'stringNumber':
      m[mutation.field] = String(m[mutation.field]);
      break;
    case 'outOfTypeRange': {
      const type = TYPE_OF[mutation.field];
      const b = mutation.beyond;
      m[mutation.field] = type === 'uint8' ? 256 + b : type === 'uint32' ? 2 ** 32 + b : type === 'int64' ? (b % 2 === 0 ? 1 : -1) * (2 ** 53 + 2 * b) : b % 2 === 0 ? -1 - b : 2 ** 53 + 2 * b;
      break;
    }
    case 'badHex': {
      const v = m[mutation.field] as string;
      m[mutation.field] = mutation.how === 'short' ? v.slice(0, -2) : mutation.how === 'long' ? `${v}00` : mutation.how === 'nonHex' ? `${v.slice(0, -1)}g` : v.slice(2).padEnd(v.length, '0');
      break;
    }
    case 'badSignatureFormat': {
      const how = mutation.how as 'short' | 'long' | 'nonHex' | 'no0x' | 'number' | 'null';
      const s = e.signature;
      e.signature = how === 'short' ? s.slice(0, -2) : how === 'long' ? `${s}1b` : how === 'nonHex' ? `${s.slice(0, -1)}x` : how === 'no0x' ? `${s.slice(2)}00` : how === 'number' ? (27 as unknown as string) : (null as unknown as string);
      break;
    }
    case 'highS':
      e.signature = editSignature(e.signature, (bytes) => {
        const s = BigInt(`0x${Buffer.from(bytes.subarray(32, 64)).toString('hex')}`);
        setWord(bytes, 32, N - s);
        bytes[64] = bytes[64] === 27 ? 28 : 27;
      });
      break;
    case 'badV':
      e.signature = editSignature(e.signature, (bytes) => (bytes[64] = mutation.v));
      break;
    case 'rsOutOfRange':
      e.signature = editSignature(e.signature, (bytes) => setWord(bytes, mutation.which[0] === 'r' ? 0 : 32, mutation.which[1] === '0' ? 0n : N));
      break;
    case 'tamper': {
      if (mutation.field === 'orderId') {
        const id = (m['orderId'] as string).toLowerCase();
        const digit = id[10] === 'f' ? '0' : (parseInt(id[10]!, 16) + 1).toString(16);
        m['orderId'] = `${id.slice(0, 10)}${digit}${id.slice(11)}`;
      } else {
        const v = m[mutation.field] as number;
        // stay a valid value of the field's type: up unless that leaves the range
        m[mutation.field] = v + mutation.delta <= Number.MAX_SAFE_INTEGER ? v + mutation.delta : v - mutation.delta;
      }
      break;
    }
    default:
      break;
  }
  if (shuffle !== undefined && typeof root === 'object' && root !== null && !Array.isArray(root)) {
    const r = rng(shuffle);
    const reorder = (o: Json): Json => {
      const keys = Object.keys(o);
      for (let i = keys.length - 1; i > 0; i--) {
        const j = r.int(0, i);
        [keys[i], keys[j]] = [keys[j]!, keys[i]!];
      }
      const out: Json = {};
      for (const k of keys) Object.defineProperty(out, k, { value: o[k], enumerable: true, writable: true, configurable: true });
      return out;
    };
    const top = reorder(root as Json);
    if (typeof top['message'] === 'object' && top['message'] !== null && !Array.isArray(top['message'])) top['message'] = reorder(top['message'] as Json);
    root = top;
  }
  let text = JSON.stringify(root, null, pretty) ?? 'null';
  for (const s of spellings) {
    text = text.replace(new RegExp(`("${s.field}"\\s*:\\s*)(-?\\d+)(?=[,\\s}])`), (_all, prefix: string, digits: string) => {
      const n = Number(digits);
      return prefix + (s.how === 'point0' ? `${digits}.0` : n.toExponential());
    });
  }
  // the fault on the text
  if (mutation.kind === 'truncate') text = text.slice(0, mutation.at % Math.max(1, text.length));
  const size = Buffer.byteLength(text);
  if (mutation.kind === 'oversize') text = text.replace(/^(\s*[[{]?)/, `$1${' '.repeat(MAX_MESSAGE_BYTES - size + mutation.extra)}`);
  else if (pad > 0) text = text.replace(/^(\s*[[{]?)/, `$1${' '.repeat(Math.max(0, Math.min(pad, MAX_MESSAGE_BYTES - size)))}`);
  let bytes: Uint8Array = Buffer.from(text, 'utf8');
  if (mutation.kind === 'randomBytes') bytes = mutation.bytes;
  if (mutation.kind === 'invalidUtf8') {
    const at = mutation.at % (bytes.length + 1);
    bytes = Buffer.concat([bytes.subarray(0, at), Buffer.from([0xff]), bytes.subarray(at)]);
  }
  return bytes;
}

/** The reason a case must get: the smallest of the mutation's and the plan's, or acceptance. */
export function expectedOfCase(order: PooledOrder, mutation: Mutation): Expected {
  const m = reasonOfMutation(mutation);
  if (m === undefined) return order.expected;
  if (!order.expected.ok) return { ok: false, reason: Math.min(m, order.expected.reason) };
  return { ok: false, reason: m };
}

// ---- running cases against the baseline -----------------------------------------------------------

export interface Baseline {
  side: TestSide;
  activeKeys: string[];
  liveKeys: string[];
  /** Status signatures made so far, by message (the same status is signed once: ~1 ms each). */
  signatures: Map<string, Hex>;
}

/** The order side at NOW with A (live, modification 2), B (cancelled, modification 1) and C (AGGREGATOR_2's, pending). */
export function buildBaseline(): Baseline {
  const signatures = new Map<string, Hex>();
  const side = makeSide({
    nowMs: NOW,
    startStatuses: false,
    sign: (status) => {
      const k = JSON.stringify(status);
      let signature = signatures.get(k);
      if (signature === undefined) {
        signature = sign(GATEWAY.privateKey, 'OrderStatus', status, CHAIN_ID);
        signatures.set(k, signature);
      }
      return { type: 'OrderStatus', message: status, signature };
    },
  });
  const base = { aggregator: AGGREGATOR.address, gateway: GATEWAY.address, auctionId: `0x${'00'.repeat(32)}` as Hex, issuedAt: NOW, validUntil: NOW + 1000, randomizeMs: 0, rampMs: 0, priceMicros: 0 };
  const steps: [DispatchOrder, Hex][] = [
    [{ ...base, orderId: A_ID, modification: 0, sequence: L_AGG - 4, start: 0, durationMs: 2 * H, signal: 1, valueW: 3000 }, AGGREGATOR.privateKey],
    [{ ...base, orderId: A_ID, modification: 2, sequence: L_AGG - 3, start: 0, durationMs: 2 * H, signal: 1, valueW: 2500 }, AGGREGATOR.privateKey],
    [{ ...base, orderId: B_ID, modification: 0, sequence: L_AGG - 2, start: NOW + 3 * H, durationMs: H, signal: 2, valueW: 1000 }, AGGREGATOR.privateKey],
    [{ ...base, orderId: B_ID, modification: 1, sequence: L_AGG, start: 0, durationMs: 0, signal: 0, valueW: 0 }, AGGREGATOR.privateKey],
    [{ ...base, aggregator: AGGREGATOR_2.address, orderId: C_ID, modification: 0, sequence: L_AGG2, start: NOW + 5 * H, durationMs: H, signal: 4, valueW: -500 }, AGGREGATOR_2.privateKey],
  ];
  for (const [message, key] of steps) {
    const result = side.book.submit(JSON.stringify(signEnvelope(key, 'DispatchOrder', message, CHAIN_ID)));
    if (!result.verdict.ok) throw new Error(`baseline order rejected: ${result.verdict.reasonName} ${result.verdict.detail}`);
  }
  return {
    side,
    activeKeys: side.book.activeOrders(NOW).map((o) => o.key),
    liveKeys: side.book.liveOrders().map((o) => o.key),
    signatures,
  };
}

export interface CaseOutcome {
  expected: Expected;
  mutation: Mutation['kind'];
}

function parsedMessage(bytes: Uint8Array): Record<string, unknown> | undefined {
  try {
    const v = JSON.parse(Buffer.from(bytes).toString('utf8')) as unknown;
    const m = (v as { message?: unknown }).message;
    return typeof m === 'object' && m !== null ? (m as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Submits one case inside a transaction that is rolled back afterwards, and checks: no exception and
 * no storage error; the reason (or acceptance) expected; the status the table gives, with reason,
 * deliveredWh 0 and the echoed orderId; the sequence raised exactly when checks 1–6 passed; a
 * rejected order never reaches the dispatcher side (no call, not active, not live).
 */
export function runCase(baseline: Baseline, order: PooledOrder, mutation: Mutation, neutral: readonly Neutral[]): CaseOutcome {
  const { side } = baseline;
  const bytes = render(order, mutation, neutral);
  const expected = expectedOfCase(order, mutation);
  const db = side.store.database;
  db.exec('BEGIN');
  try {
    const book = side.makeBook();
    const callsBefore = side.execution.calls;
    const result = book.submit(bytes);
    expect(result.error).toBeUndefined();
    const v = result.verdict;
    const message = order.envelope.message;
    if (expected.ok) {
      expect(v.ok ? v.kind : `${v.reasonName}: ${v.detail}`).toBe(expected.kind);
      expect(result.statuses[0]).toMatchObject({ status: expected.kind === 'cancel' ? 6 : 1, reason: 0, modification: message.modification });
      expect(side.dispatch.lastSequence(message.aggregator, GATEWAY.address)).toBe(message.sequence);
      return { expected, mutation: mutation.kind };
    }
    expect(v.ok ? `accepted (${v.kind})` : v.reason, v.ok ? '' : v.detail).toBe(expected.reason);
    if (v.ok) return { expected, mutation: mutation.kind };
    expect(result.statuses).toHaveLength(1);
    const status = result.statuses[0]!;
    expect(status).toMatchObject({ status: REJECTION_STATUS[v.reason], reason: expected.reason, deliveredWh: 0, atMs: NOW });
    const m = parsedMessage(bytes);
    if (expected.reason >= 2) expect(status.orderId).toBe((m!['orderId'] as string).toLowerCase());
    else expect([`0x${'00'.repeat(32)}`, typeof m?.['orderId'] === 'string' ? m['orderId'].toLowerCase() : '']).toContain(status.orderId);
    // checks 1–6 failed: no sequence moves; 7–10: the order's own sequence is stored
    const aggSeq = side.dispatch.lastSequence(AGGREGATOR.address, GATEWAY.address);
    const agg2Seq = side.dispatch.lastSequence(AGGREGATOR_2.address, GATEWAY.address);
    if (expected.reason <= 6) expect([aggSeq, agg2Seq]).toEqual([L_AGG, L_AGG2]);
    else if (message.aggregator === AGGREGATOR_2.address) expect([aggSeq, agg2Seq]).toEqual([L_AGG, message.sequence]);
    else expect([aggSeq, agg2Seq]).toEqual([message.sequence, L_AGG2]);
    // nothing reaches the dispatcher side
    expect(side.execution.calls).toBe(callsBefore);
    expect(book.activeOrders(NOW).map((o) => o.key)).toEqual(baseline.activeKeys);
    expect(book.liveOrders().map((o) => o.key)).toEqual(baseline.liveKeys);
    return { expected, mutation: mutation.kind };
  } finally {
    db.exec('ROLLBACK');
  }
}
