import { secp256k1 } from '@noble/curves/secp256k1';
import { describe, expect, it } from 'vitest';
import { digest, sign, type DispatchOrder, type Hex } from '../../ledger-client/eip712.js';
import { getAddress } from 'viem';
import { ManualClock } from '../store/test-clock.js';
import { REASONS, REJECTION_STATUS, type RejectionReason } from './protocol.js';
import {
  AGGREGATOR,
  AGGREGATOR_2,
  CHAIN_ID,
  GATEWAY,
  OTHER_GATEWAY,
  SITE,
  STRANGER,
  T0,
  envelopeOf,
  makeSide,
  orderMessage,
  signed,
  vectorOrder,
  vectorStatus,
  vectors,
  MINUTE_MS,
} from './test-support.js';
import { OrderVerifier, ZERO_ORDER_ID, type OrderVerdict, type RejectedOrder } from './verify.js';

const N = secp256k1.Point.Fn.ORDER;

interface FakeState {
  last: Map<string, number>;
  known: Map<string, { aggregator: Hex; modification: number; live: boolean }>;
}

function verifier(nowMs = T0, state: FakeState = { last: new Map(), known: new Map() }, trusted: string[] = [AGGREGATOR.address, AGGREGATOR_2.address]) {
  const clock = new ManualClock(nowMs);
  const v = new OrderVerifier({
    chainId: CHAIN_ID,
    gateway: GATEWAY.address,
    trustedAggregators: trusted,
    siteMaxImportW: SITE.siteMaxImportW,
    siteMaxExportW: SITE.siteMaxExportW,
    deltaRangeW: () => SITE.deltaRangeW,
    clock,
    state: {
      lastSequence: (aggregator) => state.last.get(aggregator),
      knownOrderId: (orderId) => state.known.get(orderId),
    },
  });
  return { v, clock, state };
}

function rejected(verdict: OrderVerdict, reason: RejectionReason, detail?: RegExp): RejectedOrder {
  expect(verdict.ok, verdict.ok ? 'accepted' : `${verdict.reasonName}: ${verdict.detail}`).toBe(false);
  const r = verdict as RejectedOrder;
  expect({ reason: r.reason, detail: r.detail }).toMatchObject({ reason });
  expect(r.status).toBe(REJECTION_STATUS[reason]);
  if (detail) expect(r.detail).toMatch(detail);
  return r;
}

function withSignature(raw: string, edit: (bytes: Uint8Array) => void): string {
  const e = JSON.parse(raw) as { signature: string };
  const bytes = Uint8Array.from(Buffer.from(e.signature.slice(2), 'hex'));
  edit(bytes);
  e.signature = `0x${Buffer.from(bytes).toString('hex')}`;
  return JSON.stringify(e);
}

function highS(raw: string): string {
  return withSignature(raw, (bytes) => {
    const s = BigInt(`0x${Buffer.from(bytes.subarray(32, 64)).toString('hex')}`);
    bytes.set(Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex'), 32);
    bytes[64] = bytes[64] === 27 ? 28 : 27;
  });
}

describe('golden vectors (ledger-client/vectors/eip712.json)', () => {
  const order = vectors.messages.find((m) => m.type === 'DispatchOrder')!;
  const status = vectors.messages.find((m) => m.type === 'OrderStatus')!;

  it('reproduces the DispatchOrder and OrderStatus digests and signatures byte for byte', () => {
    expect(digest('DispatchOrder', vectorOrder.message, CHAIN_ID)).toBe(order.digest);
    expect(sign(AGGREGATOR.privateKey, 'DispatchOrder', vectorOrder.message, CHAIN_ID)).toBe(vectorOrder.signature);
    expect(digest('OrderStatus', vectorStatus.message, CHAIN_ID)).toBe(status.digest);
    expect(sign(GATEWAY.privateKey, 'OrderStatus', vectorStatus.message, CHAIN_ID)).toBe(vectorStatus.signature);
  });

  it('the status outbox signs the vector OrderStatus into the vector envelope, byte for byte', async () => {
    const side = makeSide();
    const { gateway: _g, ...rest } = vectorStatus.message;
    const stored = side.statuses.record(rest)!;
    // Stored unsigned with the decision; signed when published, the envelope stored with the PUBACK.
    expect(stored.payload).toBeUndefined();
    expect(side.statuses.payload(stored)).toBe(JSON.stringify(vectorStatus));
    await side.statuses.flush();
    expect(side.transport.published).toEqual([JSON.stringify(vectorStatus)]);
    expect(side.dispatch.status(stored.id)!.payload).toBe(JSON.stringify(vectorStatus));
    await side.close();
  });

  it('accepts the vector order when the config trusts its aggregator (checksummed) and names its gateway, clock within its validity', () => {
    // validUntil (issuedAt + 30 s) is the deadline for receiving it; its window starts at issuedAt + 60 s.
    const { v } = verifier(vectorOrder.message.issuedAt + 10_000, undefined, [getAddress(AGGREGATOR.address)]);
    const verdict = v.verify(Buffer.from(JSON.stringify(vectorOrder)));
    expect(verdict).toMatchObject({ ok: true, kind: 'new', signer: AGGREGATOR.address, order: vectorOrder.message });
    // Later than validUntil it is EXPIRED, even inside its window (validUntil is the receipt deadline).
    rejected(v.verify(JSON.stringify(vectorOrder), vectorOrder.message.start + MINUTE_MS), REASONS.EXPIRED, /validUntil/);
  });

  it('the order book takes the vector order: RECEIVED, then active in its window', async () => {
    const side = makeSide({ nowMs: vectorOrder.message.issuedAt + 10_000 });
    const result = side.book.submit(JSON.stringify(vectorOrder));
    expect(result.verdict.ok).toBe(true);
    expect(result.statuses.map((s) => [s.status, s.reason, s.deliveredWh])).toEqual([[1, 0, 0]]);
    expect(side.book.activeOrders(vectorOrder.message.start - 1)).toEqual([]);
    expect(side.book.activeOrders(vectorOrder.message.start + 1).map((o) => [o.orderId, o.signal, o.valueW, o.rampMs])).toEqual([[vectorOrder.message.orderId, 4, -2500, 5000]]);
    await side.close();
  });
});

describe('every reason of the table (PROTOCOL.md §3)', () => {
  it('1 MALFORMED (253): not JSON, not UTF-8, over 16 KiB, another type, keys and fields not as §1–2', () => {
    const { v } = verifier();
    const good = signed(orderMessage(T0));
    const msg = JSON.parse(good) as { message: Record<string, unknown>; type: string; signature: string };
    const edit = (f: (e: typeof msg) => void) => {
      const e = JSON.parse(good) as typeof msg;
      f(e);
      return JSON.stringify(e);
    };
    const cases: [string | Uint8Array, RegExp][] = [
      ['{"type":', /not JSON/],
      [Uint8Array.of(0x7b, 0xff, 0x7d), /not valid UTF-8/],
      [good.replace('{', `{${' '.repeat(16 * 1024)}`), /over the 16384-byte limit/],
      [edit((e) => (e.type = 'OrderStatus')), /^type: expected DispatchOrder/],
      [edit((e) => (e.message['extra'] = 1)), /^message\.extra: not a field/],
      [edit((e) => delete e.message['valueW']), /^message\.valueW: missing/],
      [edit((e) => (e.message['valueW'] = 3000.5)), /^message\.valueW: expected an integer/],
      [edit((e) => (e.message['valueW'] = '3000')), /^message\.valueW: expected a JSON integer/],
      [edit((e) => (e.message['signal'] = 256)), /^message\.signal: 256 is out of range/],
      [edit((e) => (e.signature = e.signature.slice(0, 100))), /^signature: expected 0x \+ 130 hex/],
      ['null', /^envelope: expected an object/],
    ];
    for (const [raw, detail] of cases) {
      const r = rejected(v.verify(raw), REASONS.MALFORMED, detail);
      expect(r.raisesSequence).toBe(false);
    }
  });

  it('1 MALFORMED echoes orderId and modification when they can be read, zeros otherwise', () => {
    const { v } = verifier();
    const m = orderMessage(T0, { modification: 7 });
    const e = JSON.parse(signed(m)) as { message: Record<string, unknown> };
    e.message['valueW'] = 1.5;
    expect(rejected(v.verify(JSON.stringify(e)), REASONS.MALFORMED)).toMatchObject({ orderId: m.orderId, modification: 7 });
    e.message['orderId'] = 'nope';
    e.message['modification'] = -1;
    expect(rejected(v.verify(JSON.stringify(e)), REASONS.MALFORMED)).toMatchObject({ orderId: ZERO_ORDER_ID, modification: 0 });
    expect(rejected(v.verify('garbage'), REASONS.MALFORMED)).toMatchObject({ orderId: ZERO_ORDER_ID, modification: 0 });
    // upper-case hex is read and echoed lowercase
    const upper = JSON.parse(signed(m)) as { message: Record<string, unknown> };
    upper.message['orderId'] = m.orderId.toUpperCase().replace('0X', '0x');
    upper.message['extra'] = true;
    expect(rejected(v.verify(JSON.stringify(upper)), REASONS.MALFORMED).orderId).toBe(m.orderId);
  });

  it('2 BAD_SIGNATURE (253): high s, v ∉ {27, 28}, tampered, another key, another chain', () => {
    const { v } = verifier();
    const m = orderMessage(T0);
    const good = signed(m);
    expect(v.verify(good).ok).toBe(true);
    rejected(v.verify(highS(good)), REASONS.BAD_SIGNATURE, /high s/);
    for (const bad of [0, 1, 26, 29, 255]) rejected(v.verify(withSignature(good, (b) => (b[64] = bad))), REASONS.BAD_SIGNATURE, new RegExp(`v = ${bad}`));
    rejected(v.verify(good.replace('"valueW":3000', '"valueW":3001')), REASONS.BAD_SIGNATURE, /not by message\.aggregator/);
    rejected(v.verify(signed(m, AGGREGATOR_2.privateKey)), REASONS.BAD_SIGNATURE, new RegExp(`signed by ${AGGREGATOR_2.address}`));
    rejected(v.verify(JSON.stringify(envelopeOf(m, AGGREGATOR.privateKey, 1))), REASONS.BAD_SIGNATURE);
    const r = rejected(v.verify(signed(m, AGGREGATOR_2.privateKey)), REASONS.BAD_SIGNATURE);
    expect(r).toMatchObject({ orderId: m.orderId, modification: 0, signer: AGGREGATOR_2.address, raisesSequence: false });
  });

  it('3 UNTRUSTED_AGGREGATOR (253); addresses compare case-insensitively', () => {
    const { v } = verifier();
    rejected(v.verify(signed(orderMessage(T0, { aggregator: STRANGER.address }), STRANGER.privateKey)), REASONS.UNTRUSTED_AGGREGATOR, new RegExp(STRANGER.address));
    // trusted written in upper case, message in EIP-55 mixed case
    const { v: upper } = verifier(T0, undefined, [AGGREGATOR.address.toUpperCase().replace('0X', '0x')]);
    const e = JSON.parse(signed(orderMessage(T0))) as { message: Record<string, unknown> };
    e.message['aggregator'] = getAddress(AGGREGATOR.address);
    e.message['gateway'] = GATEWAY.address.toUpperCase().replace('0X', '0x');
    expect(upper.verify(JSON.stringify(e)).ok).toBe(true);
  });

  it('4 WRONG_GATEWAY (252)', () => {
    const { v } = verifier();
    rejected(v.verify(signed(orderMessage(T0, { gateway: OTHER_GATEWAY.address }))), REASONS.WRONG_GATEWAY, new RegExp(OTHER_GATEWAY.address));
  });

  it('5 EXPIRED (254): now > validUntil, or the window has ended; validUntil itself still counts', () => {
    const { v } = verifier();
    rejected(v.verify(signed(orderMessage(T0, { validUntil: T0 - 1 }))), REASONS.EXPIRED, /validUntil/);
    expect(v.verify(signed(orderMessage(T0, { validUntil: T0 }))).ok).toBe(true);
    rejected(v.verify(signed(orderMessage(T0, { start: T0 - 15 * MINUTE_MS, durationMs: 15 * MINUTE_MS }))), REASONS.EXPIRED, /window .* has ended/);
    // started but not ended: runs for the rest of its window
    expect(v.verify(signed(orderMessage(T0, { start: T0 - 15 * MINUTE_MS, durationMs: 15 * MINUTE_MS + 1 }))).ok).toBe(true);
  });

  it('6 REPLAY (253): sequence not above the last; modification not above the known one', () => {
    const state: FakeState = { last: new Map([[AGGREGATOR.address, T0]]), known: new Map() };
    const { v } = verifier(T0, state);
    rejected(v.verify(signed(orderMessage(T0, { sequence: T0 }))), REASONS.REPLAY, /sequence/);
    rejected(v.verify(signed(orderMessage(T0, { sequence: 5 }))), REASONS.REPLAY, /sequence/);
    expect(v.verify(signed(orderMessage(T0, { sequence: T0 + 1 }))).ok).toBe(true);
    // the other aggregator has its own sequence
    expect(v.verify(signed(orderMessage(T0, { sequence: 1, aggregator: AGGREGATOR_2.address }), AGGREGATOR_2.privateKey)).ok).toBe(true);
    const known = orderMessage(T0, { sequence: T0 + 5 });
    state.known.set(known.orderId, { aggregator: AGGREGATOR.address, modification: 2, live: true });
    rejected(v.verify(signed({ ...known, modification: 2 })), REASONS.REPLAY, /modification: 2 is not above .* \(2\)/);
    rejected(v.verify(signed({ ...known, modification: 0, signal: 0 })), REASONS.REPLAY, /modification/);
    expect(v.verify(signed({ ...known, modification: 3 }))).toMatchObject({ ok: true, kind: 'modification' });
  });

  it('7 CLOCK_SKEW (253): issuedAt more than 30 s ahead', () => {
    const { v } = verifier();
    const r = rejected(v.verify(signed(orderMessage(T0, { issuedAt: T0 + 30_001 }))), REASONS.CLOCK_SKEW, /issuedAt/);
    expect(r.raisesSequence).toBe(true);
    expect(v.verify(signed(orderMessage(T0, { issuedAt: T0 + 30_000 }))).ok).toBe(true);
  });

  it('8 UNSUPPORTED_SIGNAL (252)', () => {
    const { v } = verifier();
    for (const signal of [5, 6, 99, 255]) rejected(v.verify(signed(orderMessage(T0, { signal }))), REASONS.UNSUPPORTED_SIGNAL, /signal/);
  });

  it('9 OUT_OF_RANGE (252): every limit, with its boundary accepted', () => {
    const { v } = verifier();
    const H = 60 * MINUTE_MS;
    const cases: [Partial<DispatchOrder>, boolean][] = [
      [{ signal: 1, valueW: -1 }, false],
      [{ signal: 1, valueW: 0 }, true],
      [{ signal: 1, valueW: SITE.siteMaxImportW }, true],
      [{ signal: 1, valueW: SITE.siteMaxImportW + 1 }, false],
      [{ signal: 2, valueW: -1 }, false],
      [{ signal: 2, valueW: SITE.siteMaxExportW }, true],
      [{ signal: 2, valueW: SITE.siteMaxExportW + 1 }, false],
      [{ signal: 3, valueW: SITE.siteMaxImportW }, true],
      [{ signal: 3, valueW: SITE.siteMaxImportW + 1 }, false],
      [{ signal: 3, valueW: -SITE.siteMaxExportW }, true],
      [{ signal: 3, valueW: -SITE.siteMaxExportW - 1 }, false],
      [{ signal: 4, valueW: SITE.deltaRangeW.minW }, true],
      [{ signal: 4, valueW: SITE.deltaRangeW.minW - 1 }, false],
      [{ signal: 4, valueW: SITE.deltaRangeW.maxW }, true],
      [{ signal: 4, valueW: SITE.deltaRangeW.maxW + 1 }, false],
      [{ durationMs: 0 }, false],
      [{ durationMs: 24 * H }, true],
      [{ durationMs: 24 * H + 1 }, false],
      [{ start: T0 + 48 * H }, true],
      [{ start: T0 + 48 * H + 1 }, false],
      [{ randomizeMs: 15 * MINUTE_MS - 1 }, true],
      [{ randomizeMs: 15 * MINUTE_MS }, false],
    ];
    for (const [patch, ok] of cases) {
      const verdict = v.verify(signed(orderMessage(T0, patch)));
      if (ok) expect(verdict.ok, JSON.stringify(patch)).toBe(true);
      else expect(rejected(verdict, REASONS.OUT_OF_RANGE).raisesSequence).toBe(true);
    }
    // A CANCEL's value and window are ignored.
    const state: FakeState = { last: new Map(), known: new Map() };
    const { v: withKnown } = verifier(T0, state);
    const target = orderMessage(T0);
    state.known.set(target.orderId, { aggregator: AGGREGATOR.address, modification: 0, live: true });
    expect(withKnown.verify(signed({ ...target, signal: 0, modification: 1, valueW: -99_999_999, durationMs: 0, start: T0 - 99 * H }))).toMatchObject({ ok: true, kind: 'cancel' });
  });

  it('10 UNKNOWN_ORDER (252): modification > 0 or CANCEL of an order never accepted, ended, or of another aggregator', () => {
    const state: FakeState = { last: new Map(), known: new Map() };
    const { v } = verifier(T0, state);
    rejected(v.verify(signed(orderMessage(T0, { modification: 1 }))), REASONS.UNKNOWN_ORDER, /never accepted/);
    rejected(v.verify(signed(orderMessage(T0, { signal: 0 }))), REASONS.UNKNOWN_ORDER, /CANCEL .* never accepted/);
    const ended = orderMessage(T0);
    state.known.set(ended.orderId, { aggregator: AGGREGATOR.address, modification: 0, live: false });
    rejected(v.verify(signed({ ...ended, modification: 1 })), REASONS.UNKNOWN_ORDER, /has ended/);
    rejected(v.verify(signed({ ...ended, signal: 0, modification: 1 })), REASONS.UNKNOWN_ORDER, /has ended/);
    const theirs = orderMessage(T0);
    state.known.set(theirs.orderId, { aggregator: AGGREGATOR_2.address, modification: 0, live: true });
    rejected(v.verify(signed({ ...theirs, signal: 0, modification: 1 })), REASONS.UNKNOWN_ORDER, /another aggregator/);
    expect(rejected(v.verify(signed({ ...theirs, modification: 1 })), REASONS.UNKNOWN_ORDER).raisesSequence).toBe(true);
  });
});

describe('order of the checks: the first failing one is reported', () => {
  const state: FakeState = { last: new Map([[AGGREGATOR.address, T0]]), known: new Map() };
  const { v } = verifier(T0 + 1000, state);
  const fresh = { sequence: T0 + 10 };
  const cases: [string, () => string | Uint8Array, RejectionReason][] = [
    ['MALFORMED before BAD_SIGNATURE (extra field in a tampered order)', () => signed(orderMessage(T0, fresh)).replace('"valueW":3000', '"valueW":3001,"x":1'), 1],
    ['BAD_SIGNATURE before EXPIRED (an expired order with a bad signature)', () => highS(signed(orderMessage(T0, { ...fresh, validUntil: T0 }))), 2],
    ['BAD_SIGNATURE before UNTRUSTED (stranger signs as the trusted aggregator)', () => signed(orderMessage(T0, fresh), STRANGER.privateKey), 2],
    ['UNTRUSTED before WRONG_GATEWAY', () => signed(orderMessage(T0, { ...fresh, aggregator: STRANGER.address, gateway: OTHER_GATEWAY.address }), STRANGER.privateKey), 3],
    ['WRONG_GATEWAY before EXPIRED', () => signed(orderMessage(T0, { ...fresh, gateway: OTHER_GATEWAY.address, validUntil: T0 })), 4],
    ['EXPIRED before REPLAY', () => signed(orderMessage(T0, { sequence: 1, validUntil: T0 })), 5],
    ['REPLAY before CLOCK_SKEW', () => signed(orderMessage(T0, { sequence: 1, issuedAt: T0 + 99_000 })), 6],
    ['CLOCK_SKEW before UNSUPPORTED_SIGNAL', () => signed(orderMessage(T0, { ...fresh, issuedAt: T0 + 99_000, signal: 9 })), 7],
    ['UNSUPPORTED_SIGNAL before OUT_OF_RANGE', () => signed(orderMessage(T0, { ...fresh, signal: 9, durationMs: 0 })), 8],
    ['OUT_OF_RANGE before UNKNOWN_ORDER', () => signed(orderMessage(T0, { ...fresh, modification: 4, valueW: -5 })), 9],
  ];
  for (const [name, make, reason] of cases) {
    it(name, () => {
      rejected(v.verify(make()), reason);
    });
  }
});
