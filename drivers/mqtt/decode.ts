/**
 * Turning an MQTT payload into source values, without the MQTT library: JSON paths (`aenergy.total`,
 * `a[0].b`), plain-text payloads (path ""), and the declared type. Total: any byte sequence gives a
 * value of the declared type or a problem with a stable kind, never an exception.
 */
import type { SourceValue } from '../profiles/transport.js';
import type { MqttSource } from './profile-schema.js';

export type SourceType = MqttSource['type'];

/** Why a message gave no value for a source. The kind is what "logged once per cause" counts. */
export type DecodeProblemKind = 'not-json' | 'missing-field' | 'wrong-type';

export type Decoded = { ok: true; value: SourceValue } | { ok: false; kind: DecodeProblemKind; message: string };

const PART = /^([^[\]]+)((?:\[\d+\])*)$/;

/**
 * Reads `path` (`a.b[0].c`; "" = the whole value) out of parsed JSON. Undefined when any step is
 * missing, indexes the wrong kind of value, or names an inherited property (`constructor`, `__proto__`).
 */
export function jsonPath(value: unknown, path: string): unknown {
  if (path === '') return value;
  let cur: unknown = value;
  for (const part of path.split('.')) {
    const m = PART.exec(part);
    if (!m) return undefined;
    const key = m[1]!;
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur) || !Object.hasOwn(cur, key)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
    for (const idx of m[2]!.matchAll(/\[(\d+)\]/g)) {
      const i = Number(idx[1]);
      if (!Array.isArray(cur) || i >= cur.length) return undefined;
      cur = cur[i];
    }
  }
  return cur;
}

/** A plain-text payload as the declared type: numbers as decimal text, booleans as true/false, on/off, 1/0. */
export function plainValue(text: string, type: SourceType): SourceValue | undefined {
  const t = text.trim();
  switch (type) {
    case 'string':
      return t;
    case 'boolean': {
      const lower = t.toLowerCase();
      if (lower === 'true' || lower === 'on' || lower === '1') return true;
      if (lower === 'false' || lower === 'off' || lower === '0') return false;
      return undefined;
    }
    case 'number': {
      if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return undefined;
      const n = Number(t);
      return Number.isFinite(n) ? n : undefined;
    }
  }
}

/** The parsed form of one payload, shared by every source on its topic. */
export interface ParsedPayload {
  text: string;
  /** Present when the payload is JSON. */
  json?: { value: unknown };
}

export function parsePayload(payload: Uint8Array): ParsedPayload {
  const text = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength).toString('utf8');
  try {
    return { text, json: { value: JSON.parse(text) as unknown } };
  } catch {
    return { text };
  }
}

/** One source's value from a payload on `topic`. */
export function decodeSource(parsed: ParsedPayload, source: { path: string; type: SourceType }, topic: string): Decoded {
  if (source.path === '') {
    const value = plainValue(parsed.text, source.type);
    if (value === undefined) return { ok: false, kind: 'wrong-type', message: `the payload on ${topic} is not a ${source.type}` };
    return { ok: true, value };
  }
  if (!parsed.json) return { ok: false, kind: 'not-json', message: `the payload on ${topic} is not JSON` };
  const raw = jsonPath(parsed.json.value, source.path);
  if (raw === undefined || raw === null) return { ok: false, kind: 'missing-field', message: `no field "${source.path}" in the payload on ${topic}` };
  if (typeof raw !== source.type || (typeof raw === 'number' && !Number.isFinite(raw))) {
    return { ok: false, kind: 'wrong-type', message: `"${source.path}" on ${topic} is not a ${source.type}` };
  }
  return { ok: true, value: raw as SourceValue };
}
