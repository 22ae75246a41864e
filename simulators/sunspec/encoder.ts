/**
 * The simulators' own SunSpec encoder: lays models out back to back after "SunS" (offsets are the
 * running sum of point sizes from ID and L), and encodes/decodes point values by name with their
 * type and scale factor. Written apart from drivers/sunspec on purpose: a bug shared by driver and
 * simulator would hide itself.
 */
import { ExceptionCode, RegisterImage, type RegisterWrite } from '../modbus/image.js';
import { modelDefinition, type GroupDefinition, type ModelDefinition, type PointType } from './models.js';

export const SUNS_MARKER = [0x5375, 0x6e53] as const;
export const END_MARKER = [0xffff, 0x0000] as const;

export interface ModelSpec {
  id: number;
  /** Repeat counts of repeating groups by group name (groups whose JSON count is 0 or a point name). */
  repeats?: Record<string, number>;
  /** Definition to use instead of the loaded one. */
  definition?: ModelDefinition;
  /**
   * FOR BROKEN DEVICES: the L to lay the model out with instead of the one its definition gives. The
   * model then occupies L + 2 registers (so the chain after it stays walkable): points that do not
   * fit are left out, extra registers read 0. Models built like this are what some devices written
   * to another revision of a model, or simply wrong, serve.
   */
  length?: number;
}

export interface PointLayout {
  readonly modelId: number;
  /** Name within the model: "W", "PFWInj.PF" (group of one), "module[1].DCW" (repeating group). */
  readonly name: string;
  readonly type: PointType;
  readonly size: number;
  /** Absolute register address of the point's first register. */
  readonly address: number;
  /** Offset from the model's ID register (as in the SunSpec tables). */
  readonly offset: number;
  readonly writable: boolean;
  /** Fixed scale factor, or the name (full, as in `name`) of the sunssf point holding it. */
  readonly sf?: number | string;
  /** Fixed value from the definition (e.g. ID). */
  readonly fixedValue?: number | string;
}

export interface ModelLayout {
  readonly id: number;
  /** Address of the model's ID register. */
  readonly address: number;
  /** L: registers after ID and L. */
  readonly length: number;
  readonly points: ReadonlyMap<string, PointLayout>;
}

export interface SunSpecLayout {
  readonly baseAddress: number;
  /** Registers from "SunS" through the end marker. */
  readonly totalRegisters: number;
  readonly models: readonly ModelLayout[];
}

function isRepeating(group: GroupDefinition): boolean {
  return group.count !== undefined && group.count !== 1;
}

/** Builds the register layout of a device from its models. */
export function buildLayout(models: readonly (number | ModelSpec)[], baseAddress = 40000): SunSpecLayout {
  let address = baseAddress + 2;
  const layouts: ModelLayout[] = [];
  const seen = new Set<number>();
  for (const entry of models) {
    const spec: ModelSpec = typeof entry === 'number' ? { id: entry } : entry;
    if (seen.has(spec.id)) throw new Error(`model ${spec.id} appears twice`);
    seen.add(spec.id);
    const def = spec.definition ?? modelDefinition(spec.id);
    const points = new Map<string, PointLayout>();
    const modelAddress = address;
    let offset = 0;
    const walk = (group: GroupDefinition, prefix: string, scopes: readonly string[]): void => {
      const names = new Set((group.points ?? []).map((p) => p.name));
      const resolveSf = (sf: string): string => {
        if (names.has(sf)) return prefix + sf;
        for (const scope of scopes) {
          if (points.has(scope + sf)) return scope + sf;
        }
        throw new Error(`model ${spec.id}: scale factor ${sf} not found for ${prefix}`);
      };
      const pending: Array<{ name: string; sf: string }> = [];
      for (const p of group.points ?? []) {
        const layout: { -readonly [K in keyof PointLayout]: PointLayout[K] } = {
          modelId: spec.id,
          name: prefix + p.name,
          type: p.type,
          size: p.size,
          address: modelAddress + offset,
          offset,
          writable: p.access === 'RW',
        };
        if (typeof p.sf === 'number') layout.sf = p.sf;
        if (typeof p.sf === 'string') pending.push({ name: layout.name, sf: p.sf });
        if (p.value !== undefined) layout.fixedValue = p.value;
        points.set(layout.name, layout);
        offset += p.size;
      }
      // Scale factors may be defined after the points using them: resolve once the group is laid out.
      for (const { name, sf } of pending) {
        const point = points.get(name)!;
        points.set(name, { ...point, sf: resolveSf(sf) });
      }
      for (const sub of group.groups ?? []) {
        const repeating = isRepeating(sub);
        const count = repeating ? (spec.repeats?.[sub.name] ?? (typeof sub.count === 'number' && sub.count > 0 ? sub.count : 1)) : 1;
        for (let i = 0; i < count; i++) {
          walk(sub, repeating ? `${prefix}${sub.name}[${i}].` : `${prefix}${sub.name}.`, [prefix, ...scopes]);
        }
      }
    };
    walk(def.group, '', []);
    let length = offset - 2;
    if (spec.length !== undefined) {
      if (!Number.isInteger(spec.length) || spec.length < 0 || spec.length > 0xffff) throw new RangeError(`model ${spec.id}: bad length ${spec.length}`);
      length = spec.length;
      // Points past the forced end are not there (a point cut in two is left out entirely).
      for (const [name, p] of points) if (p.offset + p.size > length + 2) points.delete(name);
      for (const [name, p] of points) {
        // Its scale factor register was cut off: the point reads unscaled.
        if (typeof p.sf === 'string' && !points.has(p.sf)) points.set(name, { ...p, sf: 0 });
      }
    }
    layouts.push({ id: spec.id, address: modelAddress, length, points });
    address += length + 2;
  }
  return { baseAddress, totalRegisters: address + 2 - baseAddress, models: layouts };
}

/** Register value(s) a point reads when the device does not implement it. */
export function unimplementedRegisters(type: PointType, size: number): number[] {
  switch (type) {
    case 'int16':
    case 'sunssf':
    case 'pad':
    case 'raw16':
      return [0x8000];
    case 'uint16':
    case 'enum16':
    case 'bitfield16':
      return [0xffff];
    case 'acc16':
    case 'count':
      return [0];
    case 'int32':
      return [0x8000, 0];
    case 'uint32':
    case 'enum32':
    case 'bitfield32':
      return [0xffff, 0xffff];
    case 'float32':
      return [0x7fc0, 0];
    case 'int64':
      return [0x8000, 0, 0, 0];
    case 'uint64':
    case 'bitfield64':
      return [0xffff, 0xffff, 0xffff, 0xffff];
    case 'float64':
      return [0x7ff8, 0, 0, 0];
    default: // acc32, acc64, string, ipaddr, ipv6addr, eui48
      return new Array<number>(size).fill(0);
  }
}

function isUnimplemented(type: PointType, regs: readonly number[]): boolean {
  if (type === 'float32') return Number.isNaN(Buffer.from(regs.flatMap((r) => [r >> 8, r & 0xff])).readFloatBE(0));
  if (type === 'float64') return Number.isNaN(Buffer.from(regs.flatMap((r) => [r >> 8, r & 0xff])).readDoubleBE(0));
  if (type.startsWith('acc') || type === 'string' || type === 'count' || type.startsWith('ip') || type === 'eui48') {
    return false;
  }
  const na = unimplementedRegisters(type, regs.length);
  return na.every((v, i) => regs[i] === v);
}

const INT_RANGES: Partial<Record<PointType, readonly [bigint, bigint]>> = {
  int16: [-0x7fffn, 0x7fffn],
  sunssf: [-10n, 10n],
  int32: [-0x7fffffffn, 0x7fffffffn],
  int64: [-0x7fffffffffffffffn, 0x7fffffffffffffffn],
  uint16: [0n, 0xfffen],
  enum16: [0n, 0xfffen],
  bitfield16: [0n, 0x7fffn],
  raw16: [0n, 0xffffn],
  count: [0n, 0xffffn],
  uint32: [0n, 0xfffffffen],
  enum32: [0n, 0xfffffffen],
  bitfield32: [0n, 0x7fffffffn],
  ipaddr: [0n, 0xffffffffn],
  uint64: [0n, 0xfffffffffffffffen],
  bitfield64: [0n, 0x7fffffffffffffffn],
};

/** Encodes a raw integer/float (already scaled) into the point's registers. Accumulators wrap. */
export function encodeRaw(type: PointType, size: number, raw: number | bigint | string): number[] {
  if (type === 'string') {
    const bytes = Buffer.alloc(size * 2);
    const text = Buffer.from(String(raw), 'ascii');
    if (text.length > bytes.length) throw new RangeError(`string "${raw}" longer than ${size * 2} bytes`);
    text.copy(bytes);
    return Array.from({ length: size }, (_, i) => bytes.readUInt16BE(i * 2));
  }
  if (typeof raw === 'string') throw new TypeError(`a ${type} point takes a number`);
  if (type === 'float32' || type === 'float64') {
    const b = Buffer.alloc(size * 2);
    if (type === 'float32') b.writeFloatBE(Number(raw));
    else b.writeDoubleBE(Number(raw));
    return Array.from({ length: size }, (_, i) => b.readUInt16BE(i * 2));
  }
  if (typeof raw === 'number' && !Number.isInteger(raw)) throw new RangeError(`${type} needs an integer, got ${raw}`);
  let value = BigInt(raw);
  const bits = BigInt(size * 16);
  if (type === 'acc16' || type === 'acc32' || type === 'acc64') {
    value = BigInt.asUintN(Number(bits), value);
  } else if (type !== 'pad') {
    const range = INT_RANGES[type];
    if (range && (value < range[0] || value > range[1])) {
      throw new RangeError(`${raw} does not fit ${type} (range ${range[0]}..${range[1]})`);
    }
    value = BigInt.asUintN(Number(bits), value);
  }
  const out: number[] = [];
  for (let i = size - 1; i >= 0; i--) out.push(Number((value >> BigInt(i * 16)) & 0xffffn));
  return out;
}

/** Decodes a point's registers to its raw number (bigint for 64-bit integers) or string; undefined when unimplemented. */
export function decodeRaw(type: PointType, regs: readonly number[]): number | bigint | string | undefined {
  if (type === 'string') {
    const b = Buffer.from(regs.flatMap((r) => [r >> 8, r & 0xff]));
    const end = b.indexOf(0);
    return b.subarray(0, end < 0 ? b.length : end).toString('ascii');
  }
  if (isUnimplemented(type, regs)) return undefined;
  const b = Buffer.from(regs.flatMap((r) => [r >> 8, r & 0xff]));
  if (type === 'float32') return b.readFloatBE(0);
  if (type === 'float64') return b.readDoubleBE(0);
  let value = 0n;
  for (const r of regs) value = (value << 16n) | BigInt(r);
  const signed = type === 'int16' || type === 'int32' || type === 'int64' || type === 'sunssf' || type === 'pad';
  if (signed) value = BigInt.asIntN(regs.length * 16, value);
  return regs.length >= 4 ? value : Number(value);
}

export interface PointChange {
  readonly modelId: number;
  readonly point: string;
  /** Decoded engineering value after the write (undefined when it reads unimplemented). */
  readonly value: number | string | undefined;
}

/** Refuses a bus write: return an exception code (normally 3, illegal data value) or undefined. */
export type PointValidator = (change: PointChange) => number | undefined;

/**
 * A device's SunSpec register map in a RegisterImage: "SunS", models (ID, L, body) and the end marker.
 * Every point starts unimplemented (or at its fixed value); RW points are writable from the bus.
 */
export class SunSpecDevice {
  readonly image: RegisterImage;
  readonly layout: SunSpecLayout;
  private readonly listeners: Array<(changes: readonly PointChange[]) => void> = [];
  private readonly validators: PointValidator[] = [];

  /**
   * `endMarker: false` (FOR BROKEN DEVICES) leaves out the 0xFFFF 0x0000 end marker: the image ends
   * with the last model, and reading past it is an illegal data address.
   */
  constructor(models: readonly (number | ModelSpec)[], options: { baseAddress?: number; image?: RegisterImage; endMarker?: boolean } = {}) {
    this.layout = buildLayout(models, options.baseAddress ?? 40000);
    this.image = options.image ?? new RegisterImage();
    const base = this.layout.baseAddress;
    const endMarker = options.endMarker ?? true;
    this.image.defineBlock(base, this.layout.totalRegisters - (endMarker ? 0 : END_MARKER.length));
    this.image.set(base, [...SUNS_MARKER]);
    for (const model of this.layout.models) {
      for (const p of model.points.values()) {
        if (p.name === 'L') this.image.set(p.address, [model.length]);
        else if (p.fixedValue !== undefined) this.image.set(p.address, encodeRaw(p.type, p.size, p.fixedValue));
        else this.image.set(p.address, unimplementedRegisters(p.type, p.size));
        if (p.writable) this.image.setWritable(p.address, p.size);
      }
    }
    if (endMarker) this.image.set(base + this.layout.totalRegisters - 2, [...END_MARKER]);
    this.image.addWriteHook({
      validate: (w) => this.validateWrite(w),
      apply: (w) => {
        const changes = this.changesOf(w, (p) => this.get(p.modelId, p.name));
        for (const l of this.listeners) l(changes);
      },
    });
  }

  model(modelId: number): ModelLayout {
    const m = this.layout.models.find((x) => x.id === modelId);
    if (!m) throw new Error(`device has no model ${modelId}`);
    return m;
  }

  point(modelId: number, name: string): PointLayout {
    const p = this.model(modelId).points.get(name);
    if (!p) throw new Error(`model ${modelId} has no point ${name}`);
    return p;
  }

  hasModel(modelId: number): boolean {
    return this.layout.models.some((m) => m.id === modelId);
  }

  /** The scale factor exponent in force for a point (0 when it has none or it is unimplemented). */
  scaleFactor(modelId: number, name: string): number {
    const p = this.point(modelId, name);
    if (p.sf === undefined) return 0;
    if (typeof p.sf === 'number') return p.sf;
    const sf = this.getRaw(modelId, p.sf);
    return typeof sf === 'number' ? sf : 0;
  }

  /** Writes raw register content (already scaled) of a point. */
  setRaw(modelId: number, name: string, raw: number | bigint | string): void {
    const p = this.point(modelId, name);
    this.image.set(p.address, encodeRaw(p.type, p.size, raw));
  }

  getRaw(modelId: number, name: string): number | bigint | string | undefined {
    const p = this.point(modelId, name);
    return decodeRaw(p.type, this.image.read(p.address, p.size));
  }

  /** Sets several scale factors (sunssf points) at once: `{ W_SF: 0, A_SF: -2 }`. */
  setScaleFactors(modelId: number, sfs: Record<string, number>): void {
    for (const [name, sf] of Object.entries(sfs)) this.setRaw(modelId, name, sf);
  }

  /**
   * Sets a point's engineering value: numbers are divided by 10^sf and rounded; strings are ASCII,
   * zero padded; undefined makes the point read unimplemented. Throws RangeError when it does not fit.
   */
  set(modelId: number, name: string, value: number | string | undefined): void {
    const p = this.point(modelId, name);
    if (value === undefined) {
      this.image.set(p.address, unimplementedRegisters(p.type, p.size));
      return;
    }
    if (typeof value === 'string' || p.type === 'float32' || p.type === 'float64') {
      this.image.set(p.address, encodeRaw(p.type, p.size, value));
      return;
    }
    const sf = this.scaleFactor(modelId, name);
    this.image.set(p.address, encodeRaw(p.type, p.size, Math.round(value / 10 ** sf)));
  }

  /** A point's engineering value (raw × 10^sf), or undefined when unimplemented. */
  get(modelId: number, name: string): number | string | undefined {
    const p = this.point(modelId, name);
    return this.decodeValue(p, this.image.read(p.address, p.size));
  }

  private decodeValue(p: PointLayout, regs: readonly number[]): number | string | undefined {
    const raw = decodeRaw(p.type, regs);
    if (raw === undefined || typeof raw === 'string') return raw;
    const n = Number(raw);
    const sf = this.scaleFactor(p.modelId, p.name);
    return sf === 0 ? n : Number((n * 10 ** sf).toFixed(Math.max(0, -sf)));
  }

  /** Called after every bus write with the points it touched (decoded). */
  onWrite(listener: (changes: readonly PointChange[]) => void): void {
    this.listeners.push(listener);
  }

  /** Lets the device refuse written values (e.g. a percentage above 100). */
  addValidator(validator: PointValidator): void {
    this.validators.push(validator);
  }

  private pointsTouched(w: RegisterWrite): PointLayout[] {
    const end = w.address + w.values.length;
    const out: PointLayout[] = [];
    for (const m of this.layout.models) {
      for (const p of m.points.values()) if (p.address < end && w.address < p.address + p.size) out.push(p);
    }
    return out;
  }

  private changesOf(w: RegisterWrite, valueOf: (p: PointLayout) => number | string | undefined): PointChange[] {
    return this.pointsTouched(w).map((p) => ({ modelId: p.modelId, point: p.name, value: valueOf(p) }));
  }

  private validateWrite(w: RegisterWrite): number | undefined {
    if (this.validators.length === 0) return undefined;
    const proposed = (p: PointLayout): number | string | undefined => {
      const regs = this.image.read(p.address, p.size);
      for (let i = 0; i < p.size; i++) {
        const k = p.address + i - w.address;
        if (k >= 0 && k < w.values.length) regs[i] = w.values[k]!;
      }
      return this.decodeValue(p, regs);
    };
    for (const change of this.changesOf(w, proposed)) {
      for (const v of this.validators) {
        const code = v(change);
        if (code !== undefined) return code;
      }
    }
    return undefined;
  }
}

export { ExceptionCode };
