/**
 * Interop with an aggregator written in another language: docs/examples/aggregator.py under Debian's
 * /usr/bin/python3 (python3-ecdsa, python3-pycryptodome; EIP-712 encoded by hand there). Its signed
 * orders are byte for byte what the TypeScript signer makes and are accepted by the order book; it
 * accepts the statuses the gateway signs and rejects tampered ones.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { secp256k1 } from '@noble/curves/secp256k1';
import { afterAll, describe, expect, it } from 'vitest';
import { signEnvelope, type DispatchOrder } from '../../ledger-client/eip712.js';
import { hasDebianPythonModule, repoRoot, requirePackage } from '../../test/helpers.js';
import { AGGREGATOR, CHAIN_ID, GATEWAY, MINUTE_MS, OTHER_GATEWAY, T0, makeSide, orderMessage, settle, vectorOrder } from './test-support.js';

const script = join(repoRoot, 'docs', 'examples', 'aggregator.py');
const N = secp256k1.Point.Fn.ORDER;

function python(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('/usr/bin/python3', [script, ...args], { encoding: 'utf8', input: input ?? '', timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The `sign` arguments for a message (every field given, so the result is deterministic). */
function signArgs(m: DispatchOrder, chainId = CHAIN_ID): string[] {
  return [
    'sign',
    '--key', AGGREGATOR.privateKey,
    '--chain-id', String(chainId),
    '--gateway', m.gateway,
    '--order-id', m.orderId,
    '--auction-id', m.auctionId,
    '--sequence', String(m.sequence),
    '--issued-at', String(m.issuedAt),
    '--valid-until', String(m.validUntil),
    '--start', String(m.start),
    '--duration-ms', String(m.durationMs),
    '--randomize-ms', String(m.randomizeMs),
    '--ramp-ms', String(m.rampMs),
    '--signal', String(m.signal),
    '--value', String(m.valueW),
    '--price-micros', String(m.priceMicros),
    '--modification', String(m.modification),
  ];
}

const present = requirePackage('ecdsa', 'python3-ecdsa', hasDebianPythonModule) && requirePackage('Cryptodome', 'python3-pycryptodome', hasDebianPythonModule);
const side = makeSide({ nowMs: T0 });
afterAll(() => side.close());

describe.runIf(present)('docs/examples/aggregator.py (Debian python3)', () => {
  it('signs the golden-vector order byte for byte as the TypeScript signer (and the vector) does', () => {
    const r = python(signArgs(vectorOrder.message));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.trim()).toBe(JSON.stringify(signEnvelope(AGGREGATOR.privateKey, 'DispatchOrder', vectorOrder.message, CHAIN_ID)));
    expect(r.stdout.trim()).toBe(JSON.stringify(vectorOrder));
  });

  it('its orders are byte for byte the TS signer’s and the order book accepts them', async () => {
    const messages = [
      orderMessage(T0, { sequence: 10, signal: 1, valueW: 3000, start: 0, durationMs: 15 * MINUTE_MS, rampMs: 30_000, randomizeMs: 10_000 }),
      orderMessage(T0, { sequence: 11, signal: 4, valueW: -2500, start: T0 + 20 * MINUTE_MS, durationMs: 5 * MINUTE_MS, priceMicros: 210_000, auctionId: `0x${'cd'.repeat(32)}` }),
      orderMessage(T0, { sequence: 12, signal: 3, valueW: -9_999, start: T0 + 30 * MINUTE_MS, durationMs: MINUTE_MS }),
    ];
    for (const m of messages) {
      const r = python(signArgs(m));
      expect(r.code, r.stderr).toBe(0);
      const raw = r.stdout.trim();
      expect(raw).toBe(JSON.stringify(signEnvelope(AGGREGATOR.privateKey, 'DispatchOrder', m, CHAIN_ID)));
      const result = side.book.submit(Buffer.from(raw));
      expect(result.verdict).toMatchObject({ ok: true, kind: 'new', signer: AGGREGATOR.address });
    }
    // a modification of the first one, signed in Python
    const mod = python(signArgs({ ...messages[0]!, sequence: 13, modification: 1, valueW: 2000 }));
    expect(side.book.submit(mod.stdout.trim()).verdict).toMatchObject({ ok: true, kind: 'modification' });
    // with defaults (random orderId, sequence = issuedAt = now): well-formed and signed by the key
    const defaults = python(['sign', '--key', AGGREGATOR.privateKey, '--chain-id', String(CHAIN_ID), '--gateway', GATEWAY.address, '--signal', '1', '--value', '3000', '--duration-ms', '900000']);
    const parsed = JSON.parse(defaults.stdout) as { message: DispatchOrder };
    expect(parsed.message).toMatchObject({ aggregator: AGGREGATOR.address, gateway: GATEWAY.address, start: 0, modification: 0, signal: 1 });
    expect(parsed.message.validUntil - parsed.message.issuedAt).toBe(30_000);
    await settle();
  });

  it('verify-status accepts the statuses the gateway signs and rejects tampered, high-s, malformed or foreign ones', async () => {
    const fresh = makeSide({ nowMs: T0 });
    try {
      const m = orderMessage(T0, { sequence: 1, start: 0, durationMs: MINUTE_MS });
      fresh.book.submit(JSON.stringify(signEnvelope(AGGREGATOR.privateKey, 'DispatchOrder', m, CHAIN_ID)));
      fresh.book.started(`${m.orderId}:0`, { atMs: T0 + 5, safetyLimited: true });
      fresh.execution.delivered.set(`${m.orderId}:0`, -612);
      fresh.clock.advance(MINUTE_MS);
      fresh.book.tick();
      fresh.book.submit('garbage');
      await settle();
      const payloads = fresh.transport.published;
      expect(payloads).toHaveLength(4);
      const verify = (input: string, gateway = GATEWAY.address) => python(['verify-status', '--gateway', gateway.toUpperCase().replace('0X', '0x'), '--chain-id', String(CHAIN_ID)], input);
      const lines = payloads.map((p) => verify(p));
      expect(lines.map((l) => l.code)).toEqual([0, 0, 0, 0]);
      expect(lines.map((l) => l.stdout.split(' order')[0])).toEqual(['valid: RECEIVED', 'valid: STARTED (SAFETY_LIMIT)', 'valid: COMPLETED (SAFETY_LIMIT)', 'valid: INVALID (MALFORMED)']);
      expect(lines[2]!.stdout).toContain('deliveredWh -612');

      const completed = payloads[2]!;
      const tampered = completed.replace('"deliveredWh":-612', '"deliveredWh":-613');
      expect(verify(tampered)).toMatchObject({ code: 1, stdout: expect.stringMatching(/^INVALID: BAD_SIGNATURE: signed by 0x[0-9a-f]{40}, not by message.gateway/) });
      const e = JSON.parse(completed) as { signature: string };
      const sig = Buffer.from(e.signature.slice(2), 'hex');
      const s = BigInt(`0x${sig.subarray(32, 64).toString('hex')}`);
      sig.set(Buffer.from((N - s).toString(16).padStart(64, '0'), 'hex'), 32);
      sig[64] = sig[64] === 27 ? 28 : 27;
      expect(verify(JSON.stringify({ ...e, signature: `0x${sig.toString('hex')}` })).stdout).toMatch(/^INVALID: BAD_SIGNATURE: high s/);
      expect(verify(completed.replace('"reason":12', '"reason":"12"')).stdout).toMatch(/^INVALID: MALFORMED: message.reason/);
      expect(verify(completed.replace('}', ',"extra":1}')).stdout).toMatch(/^INVALID: MALFORMED/);
      expect(verify('{"type":').stdout).toMatch(/^INVALID: MALFORMED: not JSON/);
      expect(verify(completed, OTHER_GATEWAY.address)).toMatchObject({ code: 1, stdout: expect.stringMatching(/^INVALID: WRONG_GATEWAY/) });
      expect(python(['verify-status', '--gateway', GATEWAY.address, '--chain-id', '1'], completed).code).toBe(1);
    } finally {
      await fresh.close();
    }
  });

  it('usage errors exit 2', () => {
    expect(python(['sign', '--key', '0x12']).code).toBe(2);
    expect(python(['verify-status']).code).toBe(2);
  });
});
