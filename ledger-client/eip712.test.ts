import { readFileSync } from 'node:fs';
import { secp256k1 } from '@noble/curves/secp256k1';
import fc from 'fast-check';
import { concat, encodeAbiParameters, getAddress, hashStruct as viemHashStruct, hashTypedData, keccak256, toHex as viemToHex } from 'viem';
import { describe, expect, it } from 'vitest';
import {
  addressOf,
  digest,
  domainSeparator,
  EIP712_TYPES,
  hashStruct,
  MAX_MESSAGE_BYTES,
  MESSAGE_TYPES,
  parseEnvelope,
  recoverDigestSigner,
  recoverSigner,
  sign,
  signDigest,
  signEnvelope,
  typeHash,
  typeString,
  verifyEnvelope,
  verifyRawEnvelope,
  type DispatchOrder,
  type Hex,
  type MessageMap,
  type MessageType,
  type Rejection,
  type VerifyResult,
} from './eip712.js';
import { LedgerInputError } from './errors.js';

interface MessageVector {
  type: MessageType;
  typeString: string;
  typeHash: Hex;
  structHash: Hex;
  digest: Hex;
  envelope: { type: MessageType; message: Record<string, unknown>; signature: Hex };
  signer: Hex;
}
interface Eip712Vectors {
  domain: { name: string; version: string; chainId: number };
  domainSeparator: Hex;
  keys: Record<'aggregator' | 'gateway', { privateKey: Hex; address: Hex }>;
  messages: MessageVector[];
}

const vectors = JSON.parse(readFileSync(new URL('./vectors/eip712.json', import.meta.url), 'utf8')) as Eip712Vectors;
const CHAIN_ID = vectors.domain.chainId;
const AGGREGATOR = vectors.keys.aggregator;
const GATEWAY = vectors.keys.gateway;
const N = secp256k1.Point.Fn.ORDER;

function vectorOf<T extends MessageType>(type: T): MessageVector & { envelope: { message: MessageMap[T] } } {
  const v = vectors.messages.find((m) => m.type === type);
  if (!v) throw new Error(`no vector for ${type}`);
  return v as MessageVector & { envelope: { message: MessageMap[T] } };
}

const order = vectorOf('DispatchOrder');
const orderMessage: DispatchOrder = order.envelope.message;

/** A deep copy of the DispatchOrder vector's envelope, as plain JSON. */
function orderEnvelope(): Record<string, unknown> & { message: Record<string, unknown> } {
  return JSON.parse(JSON.stringify(order.envelope)) as Record<string, unknown> & { message: Record<string, unknown> };
}

function keyOf(address: Hex): Hex {
  return address === AGGREGATOR.address ? AGGREGATOR.privateKey : GATEWAY.privateKey;
}

function expectRejected(result: VerifyResult | { ok: boolean }, reason: Rejection['reason'], detailPattern: RegExp): void {
  expect(result.ok).toBe(false);
  const rejection = result as Rejection;
  expect(rejection.reason).toBe(reason);
  expect(rejection.detail).toMatch(detailPattern);
}

function withSignatureBytes(signature: Hex, edit: (bytes: Uint8Array) => void): Hex {
  const bytes = Uint8Array.from(Buffer.from(signature.slice(2), 'hex'));
  edit(bytes);
  return `0x${Buffer.from(bytes).toString('hex')}`;
}

describe('EIP-712 golden vectors (vectors/eip712.json)', () => {
  it('reproduces the domain separator, and it is the EIP-712 hashStruct of {name, version, chainId}', () => {
    expect(domainSeparator(CHAIN_ID)).toBe(vectors.domainSeparator);
    const domainTypeHash = keccak256(viemToHex('EIP712Domain(string name,string version,uint256 chainId)'));
    const byHand = keccak256(
      encodeAbiParameters(
        [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'bytes32' }, { type: 'uint256' }],
        [domainTypeHash, keccak256(viemToHex('flexgate')), keccak256(viemToHex('1')), BigInt(CHAIN_ID)],
      ),
    );
    expect(byHand).toBe(vectors.domainSeparator);
  });

  it('covers the five types of PROTOCOL.md §2', () => {
    expect(vectors.messages.map((m) => m.type).sort()).toEqual([...MESSAGE_TYPES].sort());
  });

  for (const v of vectors.messages) {
    describe(v.type, () => {
      const message = v.envelope.message as never;

      it('has the type string and type hash exactly as hashed', () => {
        expect(typeString(v.type)).toBe(v.typeString);
        expect(typeHash(v.type)).toBe(v.typeHash);
        expect(keccak256(viemToHex(v.typeString))).toBe(v.typeHash);
      });

      it('reproduces the struct hash and the digest (= keccak256(0x1901 ‖ domainSeparator ‖ structHash))', () => {
        expect(hashStruct(v.type, message)).toBe(v.structHash);
        expect(digest(v.type, message, CHAIN_ID)).toBe(v.digest);
        expect(keccak256(concat(['0x1901', vectors.domainSeparator, v.structHash]))).toBe(v.digest);
      });

      it('reproduces the signature byte for byte (RFC 6979, low s, v ∈ {27, 28})', () => {
        const signature = sign(keyOf(v.signer), v.type, message, CHAIN_ID);
        expect(signature).toBe(v.envelope.signature);
        expect(addressOf(keyOf(v.signer))).toBe(v.signer);
      });

      it('accepts the envelope and recovers its author', () => {
        const result = verifyEnvelope(v.envelope, { chainId: CHAIN_ID });
        expect(result).toEqual({ ok: true, envelope: v.envelope, signer: v.signer });
        expect(verifyRawEnvelope(JSON.stringify(v.envelope), { chainId: CHAIN_ID, expectedType: v.type }).ok).toBe(true);
        expect(recoverSigner(v.type, message, CHAIN_ID, v.envelope.signature)).toEqual({ ok: true, signer: v.signer });
      });

      it('signEnvelope gives the vector envelope', () => {
        expect(signEnvelope(keyOf(v.signer), v.type, message, CHAIN_ID)).toEqual(v.envelope);
      });
    });
  }
});

describe('envelope parsing: MALFORMED (PROTOCOL.md §1–2)', () => {
  const chainId = CHAIN_ID;

  function withMessage(patch: (m: Record<string, unknown>) => void): unknown {
    const e = orderEnvelope();
    patch(e.message);
    return e;
  }

  const cases: [string, unknown, RegExp][] = [
    ['an extra field in message', withMessage((m) => (m['extra'] = 1)), /^message\.extra: not a field of DispatchOrder/],
    ['a missing field', withMessage((m) => delete m['valueW']), /^message\.valueW: missing/],
    ['7.5', withMessage((m) => (m['durationMs'] = 7.5)), /^message\.durationMs: expected an integer .*7\.5/],
    ['"7"', withMessage((m) => (m['durationMs'] = '7')), /^message\.durationMs: expected a JSON integer .*string "7"/],
    ['true', withMessage((m) => (m['signal'] = true)), /^message\.signal: expected a JSON integer .*boolean true/],
    ['null', withMessage((m) => (m['modification'] = null)), /^message\.modification: .*null/],
    ['256 for a uint8', withMessage((m) => (m['signal'] = 256)), /^message\.signal: 256 is out of range for uint8/],
    ['−1 for a uint64', withMessage((m) => (m['sequence'] = -1)), /^message\.sequence: -1 is out of range for uint64/],
    ['2^53 for a uint64 (beyond ±(2^53−1))', withMessage((m) => (m['sequence'] = 2 ** 53)), /^message\.sequence: 9007199254740992 is out of range/],
    ['−2^53 for an int64', withMessage((m) => (m['valueW'] = -(2 ** 53))), /^message\.valueW: -9007199254740992 is out of range for int64/],
    ['2^32 for a uint32', withMessage((m) => (m['modification'] = 2 ** 32)), /^message\.modification: 4294967296 is out of range for uint32/],
    ['a bigint-looking string', withMessage((m) => (m['priceMicros'] = '210000n')), /^message\.priceMicros: expected a JSON integer/],
    ['an over-long address', withMessage((m) => (m['gateway'] = `${orderMessage.gateway}00`)), /^message\.gateway: expected an address \(0x \+ 40 hex\)/],
    ['a short address', withMessage((m) => (m['gateway'] = orderMessage.gateway.slice(0, 41))), /^message\.gateway: expected an address/],
    ['an address without 0x', withMessage((m) => (m['aggregator'] = orderMessage.aggregator.slice(2))), /^message\.aggregator: expected an address/],
    ['an over-long bytes32', withMessage((m) => (m['orderId'] = `${orderMessage.orderId}ab`)), /^message\.orderId: expected bytes32 \(0x \+ 64 hex\)/],
    ['a non-hex bytes32', withMessage((m) => (m['auctionId'] = `0x${'g'.repeat(64)}`)), /^message\.auctionId: expected bytes32/],
    ['message an array', { ...orderEnvelope(), message: [] }, /^message: expected an object/],
    ['message null', { ...orderEnvelope(), message: null }, /^message: expected an object .*null/],
    ['an extra envelope key', { ...orderEnvelope(), signer: AGGREGATOR.address }, /^envelope: unexpected key "signer"/],
    ['a missing signature key', (({ signature: _s, ...rest }) => rest)(orderEnvelope()), /^envelope: missing key "signature"/],
    ['a missing type key', (({ type: _t, ...rest }) => rest)(orderEnvelope()), /^envelope: missing key "type"/],
    ['an unknown type', { ...orderEnvelope(), type: 'Order' }, /^type: unknown message type "Order"/],
    ['a type of the wrong case', { ...orderEnvelope(), type: 'dispatchorder' }, /^type: unknown message type/],
    ['a type that is a field of Object.prototype', { ...orderEnvelope(), type: 'toString' }, /^type: unknown message type "toString"/],
    ['the envelope an array', [order.envelope], /^envelope: expected an object/],
    ['the envelope null', null, /^envelope: expected an object .*null/],
    ['the envelope a string', JSON.stringify(order.envelope), /^envelope: expected an object .*string/],
    ['an over-long signature', { ...orderEnvelope(), signature: `${order.envelope.signature}00` }, /^signature: expected 0x \+ 130 hex .*134 characters/],
    ['a short signature', { ...orderEnvelope(), signature: order.envelope.signature.slice(0, 130) }, /^signature: expected 0x \+ 130 hex/],
    ['a signature without 0x', { ...orderEnvelope(), signature: order.envelope.signature.slice(2) }, /^signature: expected 0x \+ 130 hex/],
    ['a signature with a non-hex digit', { ...orderEnvelope(), signature: `${order.envelope.signature.slice(0, 131)}z` }, /^signature: expected 0x \+ 130 hex/],
    ['a signature that is a number', { ...orderEnvelope(), signature: 1 }, /^signature: expected 0x \+ 130 hex .*number/],
  ];

  for (const [name, input, detail] of cases) {
    it(`rejects ${name} as MALFORMED, naming the field`, () => {
      expectRejected(verifyEnvelope(input, { chainId }), 'MALFORMED', detail);
      expectRejected(parseEnvelope(input), 'MALFORMED', detail);
    });
  }

  it('rejects a __proto__ key in the message (JSON.parse makes it an own key)', () => {
    const raw = JSON.stringify(order.envelope).replace('"modification":0', '"modification":0,"__proto__":{"x":1}');
    expectRejected(verifyRawEnvelope(raw, { chainId }), 'MALFORMED', /^message\.__proto__: not a field of DispatchOrder/);
  });

  it('rejects a type other than the expected one as MALFORMED', () => {
    const status = vectorOf('OrderStatus').envelope;
    expectRejected(verifyEnvelope(status, { chainId, expectedType: 'DispatchOrder' }), 'MALFORMED', /^type: expected DispatchOrder, got OrderStatus/);
    expect(verifyEnvelope(status, { chainId, expectedType: ['DispatchOrder', 'OrderStatus'] }).ok).toBe(true);
  });

  it('rejects raw payloads that are not JSON, not UTF-8, or over 16 KiB', () => {
    expectRejected(verifyRawEnvelope('{"type":', { chainId }), 'MALFORMED', /^message: not JSON/);
    expectRejected(verifyRawEnvelope(Uint8Array.of(0x7b, 0xff, 0x7d), { chainId }), 'MALFORMED', /^message: not valid UTF-8/);
    const padded = JSON.stringify(order.envelope).replace('{', `{${' '.repeat(MAX_MESSAGE_BYTES)}`);
    expectRejected(verifyRawEnvelope(padded, { chainId }), 'MALFORMED', /over the 16384-byte limit/);
    // Exactly 16 KiB is still accepted.
    const exact = JSON.stringify(order.envelope);
    const fitted = exact.replace('{', `{${' '.repeat(MAX_MESSAGE_BYTES - Buffer.byteLength(exact))}`);
    expect(Buffer.byteLength(fitted)).toBe(MAX_MESSAGE_BYTES);
    expect(verifyRawEnvelope(Buffer.from(fitted), { chainId }).ok).toBe(true);
  });

  it('accepts JSON integers however written (1764000000123 as 1.764000000123e12, 0 as -0)', () => {
    const raw = JSON.stringify(order.envelope).replace('1764000000123', '1.764000000123e12').replace('"randomizeMs":0', '"randomizeMs":-0');
    const result = verifyRawEnvelope(raw, { chainId });
    expect(result.ok).toBe(true);
  });

  it('never throws, whatever JSON value it is given', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        const result = verifyEnvelope(value, { chainId });
        return result.ok === false && result.reason === 'MALFORMED';
      }),
      { numRuns: 500 },
    );
  });

  it('never throws on envelopes with one field replaced by any JSON value, and rejects all but valid values', () => {
    const fields = EIP712_TYPES.DispatchOrder.map((f) => f.name);
    fc.assert(
      fc.property(fc.constantFrom(...fields), fc.jsonValue(), (field, value) => {
        const e = orderEnvelope();
        e.message[field] = value;
        const result = verifyEnvelope(e, { chainId });
        if (result.ok) return JSON.stringify(value) === JSON.stringify(order.envelope.message[field]);
        return result.detail.startsWith(`message.${field}:`) || result.reason === 'BAD_SIGNATURE';
      }),
      { numRuns: 300 },
    );
  });
});

describe('envelope verification: BAD_SIGNATURE (PROTOCOL.md §2)', () => {
  const chainId = CHAIN_ID;

  it('rejects a high-s signature (s → n − s, v flipped), which would otherwise recover the same signer', () => {
    const high = withSignatureBytes(order.envelope.signature, (bytes) => {
      const s = BigInt(`0x${Buffer.from(bytes.subarray(32, 64)).toString('hex')}`);
      bytes.set(Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex'), 32);
      bytes[64] = bytes[64] === 27 ? 28 : 27;
    });
    // The malleated signature is a valid ECDSA signature of the same digest by the same key...
    const sigBytes = Buffer.from(high.slice(2), 'hex');
    const recovered = new secp256k1.Signature(
      BigInt(`0x${sigBytes.subarray(0, 32).toString('hex')}`),
      BigInt(`0x${sigBytes.subarray(32, 64).toString('hex')}`),
      sigBytes[64]! - 27,
    ).recoverPublicKey(Buffer.from(order.digest.slice(2), 'hex'));
    expect(keccak256(recovered.toBytes(false).subarray(1)).slice(26)).toBe(AGGREGATOR.address.slice(2));
    // ...and still rejected, for being high-s.
    expectRejected(verifyEnvelope({ ...orderEnvelope(), signature: high }, { chainId }), 'BAD_SIGNATURE', /^signature: high s/);
  });

  for (const v of [0, 1, 29, 255]) {
    it(`rejects v = ${v}`, () => {
      const signature = withSignatureBytes(order.envelope.signature, (bytes) => (bytes[64] = v));
      expectRejected(verifyEnvelope({ ...orderEnvelope(), signature }, { chainId }), 'BAD_SIGNATURE', new RegExp(`^signature: v = ${v}, expected 27 or 28`));
    });
  }

  it('rejects a signature by the wrong key', () => {
    const signature = sign(GATEWAY.privateKey, 'DispatchOrder', orderMessage, chainId);
    expectRejected(
      verifyEnvelope({ ...orderEnvelope(), signature }, { chainId }),
      'BAD_SIGNATURE',
      new RegExp(`^signature: signed by ${GATEWAY.address}, not by message.aggregator ${AGGREGATOR.address}`),
    );
  });

  it('rejects a tampered message (valueW changed after signing)', () => {
    const e = orderEnvelope();
    e.message['valueW'] = -2501;
    expectRejected(verifyEnvelope(e, { chainId }), 'BAD_SIGNATURE', /^signature: signed by 0x[0-9a-f]{40}, not by message\.aggregator/);
  });

  it('rejects a signature made for another chain', () => {
    const signature = sign(AGGREGATOR.privateKey, 'DispatchOrder', orderMessage, 1);
    expectRejected(verifyEnvelope({ ...orderEnvelope(), signature }, { chainId }), 'BAD_SIGNATURE', /^signature: signed by/);
    expect(verifyEnvelope({ ...orderEnvelope(), signature }, { chainId: 1 }).ok).toBe(true);
  });

  it('rejects r = 0, r ≥ n, s = 0 and s ≥ n', () => {
    const set = (offset: number, value: bigint) =>
      withSignatureBytes(order.envelope.signature, (bytes) => bytes.set(Buffer.from(value.toString(16).padStart(64, '0'), 'hex'), offset));
    expectRejected(verifyEnvelope({ ...orderEnvelope(), signature: set(0, 0n) }, { chainId }), 'BAD_SIGNATURE', /^signature: r is not in/);
    expectRejected(verifyEnvelope({ ...orderEnvelope(), signature: set(0, N) }, { chainId }), 'BAD_SIGNATURE', /^signature: r is not in/);
    expectRejected(verifyEnvelope({ ...orderEnvelope(), signature: set(32, 0n) }, { chainId }), 'BAD_SIGNATURE', /^signature: s is not in/);
    expectRejected(verifyEnvelope({ ...orderEnvelope(), signature: set(32, N + 1n) }, { chainId }), 'BAD_SIGNATURE', /^signature: s is not in/);
  });

  it('rejects an unrecoverable signature (r is no point’s x coordinate)', () => {
    // Find a small r for which x = r gives no point on the curve.
    let r = 1n;
    for (; ; r++) {
      try {
        secp256k1.Point.fromHex(`02${r.toString(16).padStart(64, '0')}`);
      } catch {
        break;
      }
    }
    const signature = withSignatureBytes(order.envelope.signature, (bytes) => bytes.set(Buffer.from(r.toString(16).padStart(64, '0'), 'hex'), 0));
    expectRejected(verifyEnvelope({ ...orderEnvelope(), signature }, { chainId }), 'BAD_SIGNATURE', /^signature: no public key recovers/);
  });

  it('accepts addresses and hex in any case, compares them case-insensitively, and lowercases them', () => {
    const e = orderEnvelope();
    e.message['aggregator'] = getAddress(AGGREGATOR.address);
    e.message['gateway'] = GATEWAY.address.toUpperCase().replace('0X', '0x');
    e.message['orderId'] = orderMessage.orderId.toUpperCase().replace('0X', '0x');
    e['signature'] = order.envelope.signature.toUpperCase().replace('0X', '0x');
    const result = verifyEnvelope(e, { chainId });
    expect(result).toEqual({ ok: true, envelope: order.envelope, signer: AGGREGATOR.address });
  });
});

describe('signing', () => {
  const arbitraryOrder = fc.record({
    orderId: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => viemToHex(b)),
    sequence: fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }),
    signal: fc.integer({ min: 0, max: 255 }),
    valueW: fc.integer({ min: -Number.MAX_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }),
    modification: fc.integer({ min: 0, max: 2 ** 32 - 1 }),
  });

  it('signs any valid message low-s with v ∈ {27, 28}, deterministically, and the envelope verifies', () => {
    fc.assert(
      fc.property(arbitraryOrder, (patch) => {
        const message: DispatchOrder = { ...orderMessage, ...patch };
        const envelope = signEnvelope(AGGREGATOR.privateKey, 'DispatchOrder', message, CHAIN_ID);
        const bytes = Buffer.from(envelope.signature.slice(2), 'hex');
        const s = BigInt(`0x${bytes.subarray(32, 64).toString('hex')}`);
        expect(s <= N / 2n).toBe(true);
        expect([27, 28]).toContain(bytes[64]);
        expect(sign(AGGREGATOR.privateKey, 'DispatchOrder', message, CHAIN_ID)).toBe(envelope.signature);
        const result = verifyRawEnvelope(JSON.stringify(envelope), { chainId: CHAIN_ID, expectedType: 'DispatchOrder' });
        expect(result.ok && result.envelope.message).toEqual(message);
      }),
      { numRuns: 40 },
    );
  });

  it('throws LedgerInputError naming the field for a message that does not fit its type', () => {
    const attempts: [Partial<DispatchOrder> & Record<string, unknown>, string][] = [
      [{ signal: 256 }, 'message.signal'],
      [{ valueW: 0.5 }, 'message.valueW'],
      [{ gateway: '0x1234' }, 'message.gateway'],
      [{ extra: 1 }, 'message.extra'],
    ];
    for (const [patch, field] of attempts) {
      let error: unknown;
      try {
        sign(AGGREGATOR.privateKey, 'DispatchOrder', { ...orderMessage, ...patch }, CHAIN_ID);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(LedgerInputError);
      expect((error as LedgerInputError).field).toBe(field);
    }
    expect(() => sign(`0x${'00'.repeat(32)}`, 'DispatchOrder', orderMessage, CHAIN_ID)).toThrow(LedgerInputError);
    expect(() => sign(AGGREGATOR.privateKey, 'DispatchOrder', orderMessage, 0)).toThrow(LedgerInputError);
  });

  it('recoverSigner reports a malformed message as MALFORMED instead of throwing', () => {
    const result = recoverSigner('DispatchOrder', { ...orderMessage, signal: 300 }, CHAIN_ID, order.envelope.signature);
    expectRejected(result, 'MALFORMED', /^message\.signal:/);
  });
});

describe('the hand-written EIP-712 encoder against viem', () => {
  const hex = (n: number) => fc.uint8Array({ minLength: n, maxLength: n }).map((b) => viemToHex(b));
  const wire = (type: string): fc.Arbitrary<string | number> => {
    if (type === 'bytes32') return hex(32);
    if (type === 'address') return hex(20);
    if (type === 'int64') return fc.integer({ min: Number.MIN_SAFE_INTEGER, max: Number.MAX_SAFE_INTEGER }).chain((n) => fc.constantFrom(n, -1, 0, Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER));
    const bits = Number(type.slice(4));
    const max = bits >= 53 ? Number.MAX_SAFE_INTEGER : 2 ** bits - 1;
    return fc.integer({ min: 0, max }).chain((n) => fc.constantFrom(n, 0, max));
  };
  for (const type of Object.keys(EIP712_TYPES) as (keyof typeof EIP712_TYPES)[]) {
    it(`${type}: digest and hashStruct equal viem's hashTypedData / hashStruct for random messages`, () => {
      const fields = EIP712_TYPES[type];
      const messageArb = fc.record(Object.fromEntries(fields.map((f) => [f.name, wire(f.type)])) as Record<string, fc.Arbitrary<string | number>>);
      fc.assert(
        fc.property(messageArb, fc.integer({ min: 1, max: 2 ** 40 }), (message, chainId) => {
          const data = Object.fromEntries(Object.entries(message).map(([k, v]) => [k, typeof v === 'number' ? BigInt(v) : v]));
          const types = { [type]: fields.map((f) => ({ name: f.name, type: f.type })) };
          const expected = hashTypedData({ domain: { name: 'flexgate', version: '1', chainId: BigInt(chainId) }, types, primaryType: type, message: data });
          expect(digest(type, message as never, chainId)).toBe(expected);
          expect(hashStruct(type, message as never)).toBe(viemHashStruct({ types, primaryType: type, data }));
        }),
        { numRuns: 300 },
      );
    });
  }
});

describe('libsecp256k1 (WebAssembly) against @noble/curves, an independent implementation', () => {
  const key = fc.uint8Array({ minLength: 32, maxLength: 32 }).filter((b) => secp256k1.utils.isValidSecretKey(b)).map((b) => viemToHex(b));
  const hash32 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => viemToHex(b));

  it('signDigest gives the RFC 6979 low-s signature of @noble/curves, byte for byte, and the same address', () => {
    fc.assert(
      fc.property(key, hash32, (privateKey, digestHash) => {
        const sig = secp256k1.sign(Buffer.from(digestHash.slice(2), 'hex'), Buffer.from(privateKey.slice(2), 'hex'), { prehash: false, lowS: true, extraEntropy: false });
        const expected = `0x${Buffer.from(sig.toBytes('compact')).toString('hex')}${(27 + sig.recovery!).toString(16)}`;
        expect(signDigest(privateKey, digestHash)).toBe(expected);
        expect(addressOf(privateKey)).toBe(viemToHex(keccak256(secp256k1.getPublicKey(Buffer.from(privateKey.slice(2), 'hex'), false).subarray(1), 'bytes').subarray(12)));
      }),
      { numRuns: 100 },
    );
  });

  /** A signature changed in one of the ways an attacker or a broken sender would change it. */
  const tamper = fc.oneof(
    fc.constant((sig: string) => sig),
    fc.constant((sig: string) => `${sig.slice(0, 130)}${sig.endsWith('1b') ? '1c' : '1b'}`), // v flipped
    fc.integer({ min: 2, max: 129 }).map((i) => (sig: string) => `${sig.slice(0, i)}${sig[i] === '0' ? '1' : '0'}${sig.slice(i + 1)}`), // one hex digit of r or s
    fc.constant((sig: string) => `0x${'00'.repeat(32)}${sig.slice(66)}`), // r = 0
    fc.constant((sig: string) => `${sig.slice(0, 66)}${(N - BigInt(`0x${sig.slice(66, 130)}`)).toString(16).padStart(64, '0')}${sig.endsWith('1b') ? '1c' : '1b'}`), // s → n − s, v flipped
  );

  it('recoverDigestSigner recovers the signer @noble/curves recovers, and fails exactly where it fails', () => {
    fc.assert(
      fc.property(key, hash32, hash32, tamper, fc.boolean(), (privateKey, signedHash, otherHash, change, sameHash) => {
        const signature = change(signDigest(privateKey, signedHash));
        const hash = sameHash ? signedHash : otherHash;
        const result = recoverDigestSigner(hash, signature);
        const bytes = Buffer.from(signature.slice(2), 'hex');
        const r = BigInt(`0x${bytes.subarray(0, 32).toString('hex')}`);
        const s = BigInt(`0x${bytes.subarray(32, 64).toString('hex')}`);
        let expected: string | undefined;
        if (r > 0n && r < N && s > 0n && s <= N / 2n) {
          try {
            const point = new secp256k1.Signature(r, s, bytes[64]! - 27).recoverPublicKey(Buffer.from(hash.slice(2), 'hex'));
            expected = viemToHex(keccak256(point.toBytes(false).subarray(1), 'bytes').subarray(12));
          } catch {
            expected = undefined;
          }
        }
        if (expected === undefined) expect(result).toMatchObject({ ok: false, reason: 'BAD_SIGNATURE' });
        else expect(result).toEqual({ ok: true, signer: expected });
      }),
      { numRuns: 500 },
    );
  });
});
