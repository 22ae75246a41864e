/**
 * Payload decoding: JSON paths, plain-text payloads, declared types, and totality on any bytes.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeSource, jsonPath, parsePayload, plainValue } from './decode.js';

const bytes = (s: string) => new TextEncoder().encode(s);

describe('JSON paths', () => {
  const status = { output: true, apower: 1998.3, aenergy: { total: 123456.789, by_minute: [33.1, 33.3, [1, { x: 2 }]] }, temperature: { tC: 41.2 }, nothing: null };

  it('reads nested fields and array elements', () => {
    expect(jsonPath(status, 'output')).toBe(true);
    expect(jsonPath(status, 'aenergy.total')).toBe(123456.789);
    expect(jsonPath(status, 'aenergy.by_minute[1]')).toBe(33.3);
    expect(jsonPath(status, 'aenergy.by_minute[2][1].x')).toBe(2);
    expect(jsonPath([1, 2], '')).toEqual([1, 2]);
  });

  it('is undefined for missing fields, out-of-range indexes, wrong kinds and inherited names', () => {
    expect(jsonPath(status, 'aenergy.minute_ts')).toBeUndefined();
    expect(jsonPath(status, 'aenergy.by_minute[3]')).toBeUndefined();
    expect(jsonPath(status, 'output.x')).toBeUndefined();
    expect(jsonPath(status, 'aenergy[0]')).toBeUndefined();
    expect(jsonPath(status, 'aenergy.total[0]')).toBeUndefined();
    expect(jsonPath(status, 'constructor')).toBeUndefined();
    expect(jsonPath(status, '__proto__')).toBeUndefined();
    expect(jsonPath(status, 'aenergy.by_minute.length')).toBeUndefined();
    expect(jsonPath([{ a: 1 }], 'a')).toBeUndefined();
    expect(jsonPath('text', 'length')).toBeUndefined();
  });
});

describe('decoding one source', () => {
  const topic = 'plug/status/switch:0';

  it('gives the value at the path, of the declared type', () => {
    const parsed = parsePayload(bytes('{"output":false,"apower":0,"aenergy":{"total":12.5},"temperature":{"tC":null},"id":"0"}'));
    expect(decodeSource(parsed, { path: 'output', type: 'boolean' }, topic)).toEqual({ ok: true, value: false });
    expect(decodeSource(parsed, { path: 'apower', type: 'number' }, topic)).toEqual({ ok: true, value: 0 });
    expect(decodeSource(parsed, { path: 'aenergy.total', type: 'number' }, topic)).toEqual({ ok: true, value: 12.5 });
    expect(decodeSource(parsed, { path: 'id', type: 'string' }, topic)).toEqual({ ok: true, value: '0' });
  });

  it('names the problem: not JSON, a missing (or null) field, the wrong type', () => {
    expect(decodeSource(parsePayload(bytes('{"output":tru')), { path: 'output', type: 'boolean' }, topic)).toMatchObject({ ok: false, kind: 'not-json', message: `the payload on ${topic} is not JSON` });
    const parsed = parsePayload(bytes('{"output":"on","apower":"12","temperature":{"tC":null}}'));
    expect(decodeSource(parsed, { path: 'aenergy.total', type: 'number' }, topic)).toMatchObject({ ok: false, kind: 'missing-field', message: `no field "aenergy.total" in the payload on ${topic}` });
    expect(decodeSource(parsed, { path: 'temperature.tC', type: 'number' }, topic)).toMatchObject({ ok: false, kind: 'missing-field' });
    expect(decodeSource(parsed, { path: 'output', type: 'boolean' }, topic)).toMatchObject({ ok: false, kind: 'wrong-type' });
    expect(decodeSource(parsed, { path: 'apower', type: 'number' }, topic)).toMatchObject({ ok: false, kind: 'wrong-type' });
  });

  it('reads plain-text payloads when the path is empty', () => {
    expect(plainValue(' 41.2\n', 'number')).toBe(41.2);
    expect(plainValue('-1e3', 'number')).toBe(-1000);
    for (const t of ['', 'NaN', 'Infinity', '0x10', '1,5', '12 W', '1e999']) expect(plainValue(t, 'number')).toBeUndefined();
    expect(plainValue('ON', 'boolean')).toBe(true);
    expect(plainValue('off', 'boolean')).toBe(false);
    expect(plainValue('0', 'boolean')).toBe(false);
    expect(plainValue('yes', 'boolean')).toBeUndefined();
    expect(plainValue(' eco ', 'string')).toBe('eco');
    expect(decodeSource(parsePayload(bytes('warm')), { path: '', type: 'number' }, topic)).toMatchObject({ ok: false, kind: 'wrong-type', message: `the payload on ${topic} is not a number` });
  });

  it('never throws on any bytes, and a value is always of the declared type and finite', () => {
    const path = fc.oneof(fc.constant(''), fc.constantFrom('a', 'a.b', 'a[0]', 'a[1].b', 'b.c[0][0]', 'constructor', '__proto__.x'));
    const type = fc.constantFrom('number' as const, 'boolean' as const, 'string' as const);
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 200 }),
      fc.jsonValue().map((v) => bytes(JSON.stringify(v))),
      fc.jsonValue().map((v) => bytes(JSON.stringify({ a: v, b: { c: [[v]] } }))),
      fc.string().map(bytes),
    );
    fc.assert(
      fc.property(payload, path, type, (p, sourcePath, sourceType) => {
        const decoded = decodeSource(parsePayload(p), { path: sourcePath, type: sourceType }, 't');
        if (decoded.ok) {
          expect(typeof decoded.value).toBe(sourceType);
          if (typeof decoded.value === 'number') expect(Number.isFinite(decoded.value)).toBe(true);
        } else {
          expect(['not-json', 'missing-field', 'wrong-type']).toContain(decoded.kind);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('finds any JSON value put at a path (an independent oracle: the value is built at the path)', () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/), fc.nat({ max: 4 })), { minLength: 1, maxLength: 5 }), fc.oneof(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.boolean(), fc.string()), (steps, leaf) => {
        // Build {k: [.., [.., leaf]]} along `steps` (a key or an index), and the path that names it.
        if (typeof steps[0] === 'number') steps.unshift('root');
        let value: unknown = leaf;
        for (let i = steps.length - 1; i >= 0; i--) {
          const step = steps[i]!;
          if (typeof step === 'number') {
            const arr: unknown[] = Array.from({ length: step + 1 }, () => 0);
            arr[step] = value;
            value = arr;
          } else value = { other: 1, [step]: value };
        }
        const path = steps.map((s, i) => (typeof s === 'number' ? `[${s}]` : i === 0 ? s : `.${s}`)).join('');
        const type = typeof leaf as 'number' | 'boolean' | 'string';
        const decoded = decodeSource(parsePayload(bytes(JSON.stringify(value))), { path, type }, 't');
        expect(decoded).toEqual({ ok: true, value: Object.is(leaf, -0) ? 0 : leaf });
      }),
      { numRuns: 1000 },
    );
  });
});
