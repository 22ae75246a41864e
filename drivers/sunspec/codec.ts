/**
 * Decoding and encoding of SunSpec models, driven only by the model definitions (model-def.ts):
 * no per-model offsets are written by hand anywhere in this folder.
 *
 * A value the device does not implement (the type's "unimplemented" pattern, NaN, or a value whose
 * scale factor is unimplemented) decodes to undefined, never to a made-up number.
 */
import { BadDataError, NotSupportedError } from '../errors.js';
import { hasStaticSize, staticGroupSize, type GroupDef, type ModelDef, type PointDef, type PointType } from './model-def.js';

/** A decoded value: a number (scaled, in the point's units), or a string (string, ipaddr, ipv6addr,
 * eui48, and bitfield64 as 0x-hex because it does not fit a double). */
export type PointValue = number | string;

export interface DecodedGroup {
  readonly name: string;
  /** Values by point name; undefined when the device does not implement the point. Scale factor
   * points (sunssf) appear as their exponent. pad points are left out. */
  readonly values: Readonly<Record<string, PointValue | undefined>>;
  /** Sub-groups by name: an object for a group without count (and sync groups), an array of
   * instances for a repeating group. */
  readonly groups: Readonly<Record<string, DecodedGroup | readonly DecodedGroup[]>>;
}

export interface DecodedModel extends DecodedGroup {
  readonly id: number;
  /** L: registers after ID and L. */
  readonly length: number;
  /** Address of the ID register, when the caller gave it. */
  readonly address?: number;
}

export interface DecodeOptions {
  /** Modbus address of the model's ID register, for error messages. */
  address?: number;
}

const SCALABLE: ReadonlySet<PointType> = new Set<PointType>([
  'int16',
  'int32',
  'int64',
  'uint16',
  'uint32',
  'uint64',
  'acc16',
  'acc32',
  'acc64',
  'float32',
  'float64',
]);

/** Whether a point's value takes its scale factor (enums, bitfields, counts and strings never do). */
export function isScalable(type: PointType): boolean {
  return SCALABLE.has(type);
}

function where(def: ModelDef, address: number | undefined): string {
  return address === undefined ? `SunSpec model ${def.id}` : `SunSpec model ${def.id} at address ${address}`;
}

function u32(regs: ArrayLike<number>, i: number): number {
  return (regs[i]! * 0x10000 + regs[i + 1]!) >>> 0;
}

function u64(regs: ArrayLike<number>, i: number): bigint {
  return (BigInt(regs[i]!) << 48n) | (BigInt(regs[i + 1]!) << 32n) | (BigInt(regs[i + 2]!) << 16n) | BigInt(regs[i + 3]!);
}

function bytesOf(regs: ArrayLike<number>, i: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size * 2);
  for (let k = 0; k < size; k++) {
    bytes[2 * k] = (regs[i + k]! >> 8) & 0xff;
    bytes[2 * k + 1] = regs[i + k]! & 0xff;
  }
  return bytes;
}

const U64_UNIMPL = 0xffff_ffff_ffff_ffffn;
const I64_UNIMPL = 0x8000_0000_0000_0000n;

/**
 * The unscaled value of one point at `regs[i..i+size)`, or undefined when it reads as the type's
 * "not implemented" value. Exported for tests and for the encoder's round trip.
 */
export function decodeRawValue(type: PointType, regs: ArrayLike<number>, i: number, size: number): PointValue | undefined {
  switch (type) {
    case 'int16': {
      const v = regs[i]!;
      if (v === 0x8000) return undefined;
      return v >= 0x8000 ? v - 0x10000 : v;
    }
    case 'sunssf': {
      const v = regs[i]!;
      if (v === 0x8000) return undefined;
      const sf = v >= 0x8000 ? v - 0x10000 : v;
      // The specification allows -10..10; anything else is garbage, not a scale.
      return sf >= -10 && sf <= 10 ? sf : undefined;
    }
    case 'uint16':
    case 'enum16':
    case 'bitfield16':
    case 'count': {
      const v = regs[i]!;
      return v === 0xffff ? undefined : v;
    }
    case 'raw16':
      return regs[i]!;
    case 'acc16': {
      const v = regs[i]!;
      return v === 0 ? undefined : v;
    }
    case 'int32': {
      const v = u32(regs, i);
      if (v === 0x8000_0000) return undefined;
      return v | 0;
    }
    case 'uint32':
    case 'enum32':
    case 'bitfield32': {
      const v = u32(regs, i);
      return v === 0xffff_ffff ? undefined : v;
    }
    case 'acc32': {
      const v = u32(regs, i);
      return v === 0 ? undefined : v;
    }
    case 'ipaddr': {
      const v = u32(regs, i);
      if (v === 0) return undefined;
      return [v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff].join('.');
    }
    case 'int64': {
      const v = u64(regs, i);
      if (v === I64_UNIMPL) return undefined;
      return Number(BigInt.asIntN(64, v));
    }
    case 'uint64': {
      const v = u64(regs, i);
      return v === U64_UNIMPL ? undefined : Number(v);
    }
    case 'acc64': {
      const v = u64(regs, i);
      return v === 0n ? undefined : Number(v);
    }
    case 'bitfield64': {
      const v = u64(regs, i);
      return v === U64_UNIMPL ? undefined : `0x${v.toString(16).padStart(16, '0')}`;
    }
    case 'eui48': {
      const v = u64(regs, i);
      if (v === U64_UNIMPL) return undefined;
      const hex = (v & 0xffff_ffff_ffffn).toString(16).padStart(12, '0');
      return hex.match(/../g)!.join(':');
    }
    case 'float32': {
      const view = new DataView(new ArrayBuffer(4));
      view.setUint16(0, regs[i]!);
      view.setUint16(2, regs[i + 1]!);
      const f = view.getFloat32(0);
      return Number.isFinite(f) ? f : undefined;
    }
    case 'float64': {
      const view = new DataView(new ArrayBuffer(8));
      for (let k = 0; k < 4; k++) view.setUint16(2 * k, regs[i + k]!);
      const f = view.getFloat64(0);
      return Number.isFinite(f) ? f : undefined;
    }
    case 'string': {
      const bytes = bytesOf(regs, i, size);
      const nul = bytes.indexOf(0);
      const text = Buffer.from(nul === -1 ? bytes : bytes.subarray(0, nul))
        .toString('latin1')
        .trim();
      return text === '' ? undefined : text;
    }
    case 'ipv6addr': {
      let nonZero = false;
      const parts: string[] = [];
      for (let k = 0; k < size; k++) {
        if (regs[i + k] !== 0) nonZero = true;
        parts.push(regs[i + k]!.toString(16));
      }
      return nonZero ? parts.join(':') : undefined;
    }
    case 'pad':
      return undefined;
  }
}

/** value × 10^sf, computed so that e.g. 2301 with sf -1 gives 230.1 (not 230.10000000000002). */
export function applyScale(raw: number, sf: number): number {
  return sf < 0 ? raw / 10 ** -sf : sf === 0 ? raw : raw * 10 ** sf;
}

interface Scope {
  readonly group: GroupDef;
  readonly values: Record<string, PointValue | undefined>;
}

function lookup(scopes: readonly Scope[], name: string): { found: boolean; value: PointValue | undefined } {
  for (const s of scopes) {
    if (s.group.points.some((p) => p.name === name)) return { found: true, value: s.values[name] };
  }
  return { found: false, value: undefined };
}

/** Raw values first (scale factors may follow the points they scale), then the scales. */
function decodePointList(
  points: readonly PointDef[],
  regs: ArrayLike<number>,
  offset: number,
  end: number,
  scopes: readonly Scope[],
  values: Record<string, PointValue | undefined>,
): number {
  let off = offset;
  const scaled: PointDef[] = [];
  for (const p of points) {
    if (off + p.size <= end && p.type !== 'pad') {
      values[p.name] = decodeRawValue(p.type, regs, off, p.size);
      if (p.sf !== undefined && isScalable(p.type)) scaled.push(p);
    }
    off += p.size;
  }
  for (const p of scaled) {
    const raw = values[p.name];
    if (typeof raw !== 'number') continue;
    let sf: PointValue | undefined;
    if (typeof p.sf === 'number') sf = p.sf;
    else sf = lookup(scopes, p.sf!).value;
    values[p.name] = typeof sf === 'number' ? applyScale(raw, sf) : undefined;
  }
  return off;
}

function pointsSize(group: GroupDef): number {
  let n = 0;
  for (const p of group.points) n += p.size;
  return n;
}

interface DecodeContext {
  readonly def: ModelDef;
  readonly regs: ArrayLike<number>;
  readonly end: number;
  readonly address: number | undefined;
}

function lengthError(ctx: DecodeContext, detail: string): BadDataError {
  return new BadDataError(`${where(ctx.def, ctx.address)}: length L=${ctx.end - 2} does not fit the model definition (${detail})`);
}

function decodeGroup(ctx: DecodeContext, group: GroupDef, offset: number, outer: readonly Scope[]): { decoded: DecodedGroup; end: number } {
  const values: Record<string, PointValue | undefined> = {};
  const scopes: Scope[] = [{ group, values }, ...outer];
  const size = pointsSize(group);
  if (offset + size > ctx.end) throw lengthError(ctx, `group ${group.name} at offset ${offset} needs ${size} registers`);
  let off = decodePointList(group.points, ctx.regs, offset, ctx.end, scopes, values);
  const groups: Record<string, DecodedGroup | DecodedGroup[]> = {};
  group.groups.forEach((sub, index) => {
    if (sub.count === undefined) {
      const r = decodeGroup(ctx, sub, off, scopes);
      groups[sub.name] = r.decoded;
      off = r.end;
      return;
    }
    let n: number;
    if (typeof sub.count === 'number' && sub.count > 0) {
      n = sub.count;
    } else if (typeof sub.count === 'number') {
      // count 0: as many instances as fit in what the following groups leave of L.
      if (!hasStaticSize(sub)) throw lengthError(ctx, `group ${sub.name} has a variable size and no count`);
      const instance = staticGroupSize(sub);
      let rest = 0;
      for (const later of group.groups.slice(index + 1)) {
        if (!hasStaticSize(later) || typeof later.count === 'string') throw lengthError(ctx, `group ${sub.name} is followed by a group of variable size`);
        rest += staticGroupSize(later) * (later.count === undefined ? 1 : later.count);
      }
      const room = ctx.end - off - rest;
      if (instance === 0 || room < 0 || room % instance !== 0) {
        throw lengthError(ctx, `${room} registers left for group ${sub.name} are not a multiple of its size ${instance}`);
      }
      n = room / instance;
    } else {
      const c = lookup(scopes, sub.count).value;
      if (typeof c !== 'number') {
        throw new BadDataError(`${where(ctx.def, ctx.address)}: count point ${sub.count} of group ${sub.name} is not implemented`);
      }
      n = c;
    }
    const minInstance = pointsSize(sub);
    if (n * minInstance > ctx.end - off) throw lengthError(ctx, `${n} instances of group ${sub.name} need at least ${n * minInstance} registers, ${ctx.end - off} left`);
    const instances: DecodedGroup[] = [];
    for (let k = 0; k < n; k++) {
      const r = decodeGroup(ctx, sub, off, scopes);
      instances.push(r.decoded);
      off = r.end;
    }
    groups[sub.name] = instances;
  });
  return { decoded: { name: group.name, values, groups }, end: off };
}

/** Registers of trailing pad points at the end of a model without groups (devices written to an
 * older revision often omit them, e.g. the common model with L=65 instead of 66). */
function trailingPadSize(def: ModelDef): number {
  if (def.group.groups.length > 0) return 0;
  let n = 0;
  for (let k = def.group.points.length - 1; k >= 0 && def.group.points[k]!.type === 'pad'; k--) n += def.group.points[k]!.size;
  return n;
}

function checkHeader(def: ModelDef, registers: ArrayLike<number>, address: number | undefined): void {
  if (registers.length < 2) throw new BadDataError(`${where(def, address)}: ${registers.length} registers given, at least ID and L expected`);
  if (registers[0] !== def.id) throw new BadDataError(`${where(def, address)}: the ID register reads ${registers[0]}, expected ${def.id}`);
}

/**
 * Whether length `L` is one the definition allows: true/false for models whose size does not
 * depend on their contents, undefined when it does (counts held in points; check with decodeModel).
 */
export function isAllowedLength(def: ModelDef, L: number): boolean | undefined {
  const total = L + 2;
  const top = def.group;
  if (!hasStaticSizeExceptDerived(top)) return undefined;
  let fixed = pointsSize(top);
  let derived: GroupDef | undefined;
  for (const g of top.groups) {
    if (g.count === 0) derived = g;
    else fixed += staticGroupSize(g) * (g.count === undefined ? 1 : (g.count as number));
  }
  if (derived) {
    const instance = staticGroupSize(derived);
    return total >= fixed && instance > 0 && (total - fixed) % instance === 0;
  }
  return total === fixed || (total < fixed && fixed - total <= trailingPadSize(def));
}

function hasStaticSizeExceptDerived(group: GroupDef): boolean {
  return group.groups.every((g) => typeof g.count !== 'string' && hasStaticSize(g));
}

/**
 * Decodes a whole model: `registers` start at its ID register and hold ID, L and L more registers.
 * Throws BadDataError when the ID is not the definition's, when `registers.length` is not L+2, or
 * when L is not a length the definition allows (fixed part + n × repeating groups).
 */
export function decodeModel(def: ModelDef, registers: ArrayLike<number>, options: DecodeOptions = {}): DecodedModel {
  const { address } = options;
  checkHeader(def, registers, address);
  const L = registers[1]!;
  if (registers.length !== L + 2) {
    throw new BadDataError(`${where(def, address)}: L=${L} but ${registers.length - 2} registers follow ID and L`);
  }
  const allowed = isAllowedLength(def, L);
  if (allowed === false) {
    throw new BadDataError(`${where(def, address)}: length L=${L} is not one the model definition allows`);
  }
  const ctx: DecodeContext = { def, regs: registers, end: registers.length, address };
  let decoded: DecodedGroup;
  let end: number;
  const padShort = trailingPadSize(def) > 0 && registers.length < def.fixedPointsSize;
  if (padShort) {
    const values: Record<string, PointValue | undefined> = {};
    end = Math.min(decodePointList(def.group.points, registers, 0, registers.length, [{ group: def.group, values }], values), registers.length);
    decoded = { name: def.group.name, values, groups: {} };
  } else {
    ({ decoded, end } = decodeGroup(ctx, def.group, 0, []));
  }
  if (end !== registers.length) throw lengthError(ctx, `the definition ends after ${end - 2} registers`);
  return { ...decoded, id: def.id, length: L, ...(address !== undefined ? { address } : {}) };
}

/**
 * Decodes the top-level points found in `registers`, a prefix of the model starting at its ID
 * register (a poll reads only the part of a model it needs). Points past the end of the prefix and
 * repeating groups are left out. Checks the ID register; the caller checks L against discovery.
 */
export function decodeModelPrefix(def: ModelDef, registers: ArrayLike<number>, options: DecodeOptions = {}): Readonly<Record<string, PointValue | undefined>> {
  checkHeader(def, registers, options.address);
  const values: Record<string, PointValue | undefined> = {};
  decodePointList(def.group.points, registers, 0, registers.length, [{ group: def.group, values }], values);
  return values;
}

/** Scale factor values by sunssf point name (a DecodedModel's `values` will do). */
export type ScaleFactors = Readonly<Record<string, PointValue | undefined>>;

export interface EncodedPoint {
  /** Modbus address of the point's first register (model address + offset). */
  readonly address: number;
  readonly registers: number[];
}

const INT_RANGES: Partial<Record<PointType, readonly [number, number]>> = {
  int16: [-0x7fff, 0x7fff],
  uint16: [0, 0xfffe],
  enum16: [0, 0xfffe],
  bitfield16: [0, 0xfffe],
  count: [0, 0xfffe],
  raw16: [0, 0xffff],
  acc16: [1, 0xffff],
  int32: [-0x7fff_ffff, 0x7fff_ffff],
  uint32: [0, 0xffff_fffe],
  enum32: [0, 0xffff_fffe],
  bitfield32: [0, 0xffff_fffe],
  acc32: [1, 0xffff_ffff],
  int64: [-Number.MAX_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  uint64: [0, Number.MAX_SAFE_INTEGER],
  acc64: [1, Number.MAX_SAFE_INTEGER],
};

function wordsOf(value: bigint, count: number): number[] {
  const out: number[] = [];
  for (let k = count - 1; k >= 0; k--) out.push(Number((value >> BigInt(16 * k)) & 0xffffn));
  return out;
}

/**
 * Registers that write `value` (in the point's units, e.g. percent or W) to a writable top-level
 * point of `def`, with its scale factor taken from `scaleFactors`. Throws NotSupportedError for an
 * unknown or read-only point, BadDataError when the scale factor is unknown/unimplemented, and
 * RangeError (before anything is written) when the value does not fit the point.
 */
export function encodePoint(def: ModelDef, pointName: string, value: PointValue, scaleFactors: ScaleFactors = {}, modelAddress = 0): EncodedPoint {
  const layout = def.points.get(pointName);
  if (!layout) throw new NotSupportedError(`SunSpec model ${def.id} has no point ${pointName}`);
  const { point, offset } = layout;
  const address = modelAddress + offset;
  if (point.access !== 'RW') throw new NotSupportedError(`point ${pointName} of SunSpec model ${def.id} is read-only`);
  const what = `${pointName} of SunSpec model ${def.id}`;

  if (point.type === 'string') {
    if (typeof value !== 'string') throw new RangeError(`${what} is a string, got ${typeof value}`);
    const bytes = Buffer.from(value, 'latin1');
    if (!/^[\x20-\x7e]*$/.test(value) || bytes.length > point.size * 2) {
      throw new RangeError(`${what}: expected at most ${point.size * 2} printable ASCII characters`);
    }
    const regs: number[] = [];
    for (let k = 0; k < point.size; k++) regs.push(((bytes[2 * k] ?? 0) << 8) | (bytes[2 * k + 1] ?? 0));
    return { address, registers: regs };
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) throw new RangeError(`${what}: expected a finite number, got ${String(value)}`);

  let sf = 0;
  if (point.sf !== undefined && isScalable(point.type)) {
    if (typeof point.sf === 'number') sf = point.sf;
    else {
      const s = scaleFactors[point.sf];
      if (typeof s !== 'number' || !Number.isInteger(s) || s < -10 || s > 10) {
        throw new BadDataError(`${what}: its scale factor ${point.sf} is unknown or not implemented (${String(s)})`);
      }
      sf = s;
    }
  }
  if (point.type === 'float32' || point.type === 'float64') {
    const scaled = applyScale(value, -sf);
    const view = new DataView(new ArrayBuffer(point.size * 2));
    if (point.type === 'float32') {
      if (Math.abs(scaled) > 3.4028234663852886e38) throw new RangeError(`${what}: ${value} does not fit a float32`);
      view.setFloat32(0, scaled);
    } else view.setFloat64(0, scaled);
    const regs: number[] = [];
    for (let k = 0; k < point.size; k++) regs.push(view.getUint16(2 * k));
    return { address, registers: regs };
  }
  const range = INT_RANGES[point.type];
  if (!range) throw new NotSupportedError(`${what}: writing type ${point.type} is not supported`);
  // value / 10^sf, rounded to the register's resolution.
  const raw = Math.round(applyScale(value, -sf));
  if (raw < range[0] || raw > range[1]) {
    const unit = point.units ? ` ${point.units}` : '';
    throw new RangeError(
      `${what}: ${value}${unit} is out of range (${applyScale(range[0], sf)}..${applyScale(range[1], sf)}${unit} with scale factor 10^${sf})`,
    );
  }
  if ((point.type === 'enum16' || point.type === 'enum32') && point.symbols.length > 0 && !point.symbols.some((s) => s.value === raw)) {
    throw new RangeError(`${what}: ${raw} is not one of ${point.symbols.map((s) => `${s.value} (${s.name})`).join(', ')}`);
  }
  return { address, registers: wordsOf(BigInt.asUintN(point.size * 16, BigInt(raw)), point.size) };
}
