/**
 * What every SunSpec device class shares: the discovered map, the identity from the common model,
 * polls planned over the models a class needs, required/optional values, and ordered writes: point
 * by point in the order given (`write`), or a whole control sequence in one FC16 transaction that
 * keeps the points in between as the device last reported them (`writeSteps`).
 */
import {
  BackedOffError,
  BadDataError,
  DeviceError,
  DisconnectedError,
  ModbusExceptionError,
  NotSupportedError,
  StaleDataError,
  TimeoutError,
} from '../errors.js';
import type { Log } from '../log.js';
import type { ModbusUnit, RequestPriority } from '../modbus/types.js';
import { decodeModelPrefix, decodeRawValue, encodePoint, isAllowedLength, type PointValue } from './codec.js';
import { discoverSunSpec, type DiscoveredModel, type SunSpecDiscovery } from './discovery.js';
import type { ModelDef } from './model-def.js';
import { findModelDef } from './models/index.js';
import { BRIDGE_GAP_REGISTERS, planReads, type ModelNeed, type ReadPlan } from './read-plan.js';

export const COMMON_MODEL_ID = 1;

export interface SunSpecIdentity {
  manufacturer?: string;
  model?: string;
  serial?: string;
  version?: string;
}

export type ModelValues = Readonly<Record<string, PointValue | undefined>>;

/** A point to write: its name and its value in the point's units. */
export type PointWrite = readonly [string, PointValue];

/** Registers of one FC16 write (Modbus spec). */
const MAX_WRITE_REGISTERS = 123;

/** The last read of a model: its registers from the ID register on (the prefix a poll read) and their values. */
interface CachedModel {
  readonly registers: Uint16Array;
  readonly values: ModelValues;
}

/** A point's registers ready to go out. */
interface EncodedWrite {
  readonly name: string;
  readonly address: number;
  readonly registers: readonly number[];
}

/** A model the device has and this driver uses. */
export interface UsedModel {
  readonly model: DiscoveredModel;
  readonly def: ModelDef;
}

export interface SessionOptions {
  id: string;
  unit: ModbusUnit;
  log: Log;
  discovery?: SunSpecDiscovery;
  /** Skip the search and look only here (the config's sunspec.baseAddress). */
  baseAddress?: number;
}

/**
 * The same error (same class, kind, retryability and codes) with `context` (device id, what was being
 * read and where) in front of its message and the original as `cause`. Anything that is not a
 * DeviceError (a programming error, a RangeError) is returned unchanged.
 */
export function inContext(err: unknown, context: string): unknown {
  if (!(err instanceof DeviceError)) return err;
  const message = `${context}: ${err.message}`;
  let out: DeviceError;
  if (err instanceof TimeoutError) out = new TimeoutError(message, err.timeoutMs);
  else if (err instanceof ModbusExceptionError) out = new ModbusExceptionError(message, err.functionCode, err.exceptionCode);
  else if (err instanceof BackedOffError) out = new BackedOffError(message, err.retryAtMs);
  else if (err instanceof BadDataError) out = new BadDataError(message);
  else if (err instanceof DisconnectedError) out = new DisconnectedError(message);
  else if (err instanceof NotSupportedError) out = new NotSupportedError(message);
  else if (err instanceof StaleDataError) out = new StaleDataError(message);
  else return err;
  Object.defineProperty(out, 'cause', { value: err, enumerable: false, writable: true, configurable: true });
  return out;
}

/** "40070+55, 40200+10" */
function rangesText(ranges: readonly { address: number; count: number }[]): string {
  return ranges.map((r) => `${r.address}+${r.count}`).join(', ');
}

/** Reads the common model (if the device has one) into an identity. */
export async function readIdentity(unit: ModbusUnit, discovery: SunSpecDiscovery, priority: RequestPriority = 'poll'): Promise<SunSpecIdentity> {
  const common = discovery.models.find((m) => m.id === COMMON_MODEL_ID);
  const def = findModelDef(COMMON_MODEL_ID);
  if (!common || !def) return {};
  const count = Math.min(common.length + 2, 125);
  let regs: Uint16Array;
  try {
    regs = await unit.readRegisters('holding', common.address, count, { priority });
  } catch (err) {
    throw inContext(err, `reading SunSpec model ${COMMON_MODEL_ID} at address ${common.address} (registers ${common.address}+${count})`);
  }
  // The identity is descriptive: decode what is there rather than fail on an odd common model length.
  const values = decodeModelPrefix(def, regs, { address: common.address });
  const str = (name: string) => (typeof values[name] === 'string' ? (values[name] as string) : undefined);
  const identity: SunSpecIdentity = {};
  const manufacturer = str('Mn');
  const model = str('Md');
  const serial = str('SN');
  const version = str('Vr');
  if (manufacturer !== undefined) identity.manufacturer = manufacturer;
  if (model !== undefined) identity.model = model;
  if (serial !== undefined) identity.serial = serial;
  if (version !== undefined) identity.version = version;
  return identity;
}

export function describeSunSpec(identity: SunSpecIdentity, discovery: SunSpecDiscovery): string {
  const name = [identity.manufacturer, identity.model].filter((s) => s !== undefined).join(' ') || 'device';
  const extras = [
    identity.serial !== undefined ? `serial ${identity.serial}` : undefined,
    identity.version !== undefined ? `version ${identity.version}` : undefined,
  ].filter((s) => s !== undefined);
  return `SunSpec ${name} (models ${discovery.models.map((m) => m.id).join(',')})${extras.length ? `, ${extras.join(', ')}` : ''}`;
}

export class SunSpecSession {
  readonly id: string;
  readonly unit: ModbusUnit;
  readonly log: Log;
  readonly discovery: SunSpecDiscovery;
  readonly identity: SunSpecIdentity;
  /**
   * The last read of each model, by model id: scale factors for writes and the points a merged write
   * keeps as read come from here. Successful writes are applied to it (so it shows what the device
   * was last told, until the next poll); a failed write drops the model (the device may or may not
   * have taken it), so the next write reads it again.
   */
  private readonly cache = new Map<number, CachedModel>();
  /** Writes ended so far (successful or not), and per model the count when its last write ended: a
   * poll that a write to the model overlapped does not replace what the write left in the cache. */
  private writesEnded = 0;
  private readonly lastWriteEnded = new Map<number, number>();

  private constructor(options: SessionOptions, discovery: SunSpecDiscovery, identity: SunSpecIdentity) {
    this.id = options.id;
    this.unit = options.unit;
    this.log = options.log;
    this.discovery = discovery;
    this.identity = identity;
  }

  /** Errors (discovery's, the transport's) come with the device id in front of their message. */
  static async open(options: SessionOptions): Promise<SunSpecSession> {
    try {
      const discovery =
        options.discovery ?? (await discoverSunSpec(options.unit, options.baseAddress !== undefined ? { bases: [options.baseAddress] } : {}));
      const identity = await readIdentity(options.unit, discovery);
      return new SunSpecSession(options, discovery, identity);
    } catch (err) {
      throw inContext(err, options.id);
    }
  }

  describe(): string {
    return describeSunSpec(this.identity, this.discovery);
  }

  /** The first of `ids` (in preference order) the device has and this driver has a definition for.
   * Its length is checked against the definition: a wrong L is a BadDataError. */
  find(ids: readonly number[]): UsedModel | undefined {
    for (const id of ids) {
      const model = this.discovery.models.find((m) => m.id === id);
      const def = findModelDef(id);
      if (model && def) {
        if (isAllowedLength(def, model.length) === false) {
          throw new BadDataError(`${this.id}: SunSpec model ${id} at address ${model.address} has length L=${model.length}, which its definition does not allow`);
        }
        return { model, def };
      }
    }
    return undefined;
  }

  /** Like find(), but the device must have one of them. */
  require(ids: readonly number[], purpose: string): UsedModel {
    const used = this.find(ids);
    if (!used) {
      throw new NotSupportedError(
        `${this.id} (${this.unit.label}): no SunSpec model for ${purpose} (looked for ${ids.join(', ')}; the device has ${this.discovery.models.map((m) => m.id).join(', ')})`,
      );
    }
    return used;
  }

  plan(needs: readonly ModelNeed[]): ReadPlan {
    return planReads(needs);
  }

  /** Runs a plan in one readRanges call (one range per model; the transport merges them across the
   * models in between into the fewest reads, and splits what the device rejects) and returns the
   * values of each model, by model id. Checks each model's ID and L against discovery: a device
   * whose map changed is a BadDataError. */
  async poll(plan: ReadPlan, priority: RequestPriority = 'poll'): Promise<Map<number, ModelValues>> {
    const writesBefore = this.writesEnded;
    let data: Uint16Array[];
    try {
      data = await this.unit.readRanges('holding', plan.ranges, { priority, maxGapRegisters: BRIDGE_GAP_REGISTERS });
    } catch (err) {
      const models = plan.models.map((m) => `${m.def.id} at address ${m.model.address}`).join(', ');
      throw inContext(err, `${this.id}: reading SunSpec model${plan.models.length === 1 ? '' : 's'} ${models} (registers ${rangesText(plan.ranges)})`);
    }
    const out = new Map<number, ModelValues>();
    plan.models.forEach((m, i) => {
      const regs = data[i]!;
      if (regs[0] !== m.def.id || regs[1] !== m.model.length) {
        throw new BadDataError(
          `${this.id} (${this.unit.label}): SunSpec model ${m.def.id} at address ${m.model.address} now reads ID=${regs[0]} L=${regs[1]} (discovered L=${m.model.length}); the map changed`,
        );
      }
      const values = decodeModelPrefix(m.def, regs, { address: m.model.address });
      // A write to this model that ended while the read was under way may have reached the device
      // before or after it: the cache keeps what the write left until the next poll.
      if ((this.lastWriteEnded.get(m.def.id) ?? 0) <= writesBefore) this.cache.set(m.def.id, { registers: Uint16Array.from(regs), values });
      out.set(m.def.id, values);
    });
    return out;
  }

  /** The last values read of a model (with what was written since), reading it now (write priority)
   * when there are none. */
  async current(used: UsedModel, points: readonly string[]): Promise<ModelValues> {
    const cached = this.cache.get(used.def.id);
    if (cached) return cached.values;
    const values = await this.poll(this.plan([{ ...used, points }]), 'write');
    return values.get(used.def.id)!;
  }

  /** A value the class cannot do without: unimplemented → BadDataError naming device, model, point, address. */
  required(values: ModelValues, used: UsedModel, point: string): number {
    const v = values[point];
    if (typeof v === 'number') return v;
    const layout = used.def.points.get(point);
    const sf = layout && typeof layout.point.sf === 'string' ? ` or its scale factor ${layout.point.sf}` : '';
    throw new BadDataError(
      `${this.id}: SunSpec model ${used.def.id} point ${point} at address ${used.model.address + (layout?.offset ?? 0)} is not implemented${sf} (reads as "no value")`,
    );
  }

  /**
   * Writes points in the order given; points whose registers follow each other directly are sent in
   * one FC16 transaction. All values are encoded (and range-checked) before the first write.
   */
  async write(used: UsedModel, points: readonly PointWrite[], scaleFactors: ModelValues): Promise<void> {
    await this.writeInOrder(used, this.encode(used, points, scaleFactors));
  }

  /**
   * Writes a control sequence: `steps` are groups of points in the order the device must take them
   * (e.g. the value, then its revert timer, then the enable). When all their points lie in one span
   * of at most 123 registers it goes out as ONE FC16 transaction — which the device applies as a
   * whole — with every other point of the span kept as read: its registers exactly as the last poll
   * read them (`current`), so nothing else changes. That needs each such point to be a whole,
   * writable top-level point the device implements (its registers are not the type's "no value"
   * pattern) and within the registers last read. Otherwise (one of them unimplemented, read-only or
   * cut by the span, nothing read yet, or the span too long) each step goes out in turn as `write`
   * sends it. All values are encoded (and range-checked) before the first write either way.
   */
  async writeSteps(used: UsedModel, steps: readonly (readonly PointWrite[])[], scaleFactors: ModelValues): Promise<void> {
    const encoded = steps.map((step) => this.encode(used, step, scaleFactors));
    const span = this.spanKeepingTheRest(used, encoded.flat());
    if (typeof span === 'string') {
      this.log.debug({ model: used.def.id, reason: span }, 'control points not written as one span');
      for (const step of encoded) await this.writeInOrder(used, step);
      return;
    }
    const written = encoded.flat().map((e) => e.name);
    const kept = span.kept.length ? ` with ${span.kept.join(', ')} kept as read` : '';
    await this.send(used, span.address, span.values, () => `${written.join(', ')}${kept}`, { kept: span.kept });
  }

  private encode(used: UsedModel, points: readonly PointWrite[], scaleFactors: ModelValues): EncodedWrite[] {
    return points.map(([name, value]) => ({ name, ...encodePoint(used.def, name, value, scaleFactors, used.model.address) }));
  }

  /** `write`: in order, points whose registers follow each other in one FC16 transaction. */
  private async writeInOrder(used: UsedModel, encoded: readonly EncodedWrite[]): Promise<void> {
    const writes: { address: number; values: number[]; names: string[] }[] = [];
    for (const e of encoded) {
      const last = writes[writes.length - 1];
      if (last && last.address + last.values.length === e.address && last.values.length + e.registers.length <= MAX_WRITE_REGISTERS) {
        last.values.push(...e.registers);
        last.names.push(e.name);
      } else writes.push({ address: e.address, values: [...e.registers], names: [e.name] });
    }
    for (const w of writes) await this.send(used, w.address, w.values, () => w.names.join(', '));
  }

  /**
   * The one FC16 write covering `points` with the rest of its span kept as read, or why there is
   * none. Kept points are listed in register order.
   */
  private spanKeepingTheRest(used: UsedModel, points: readonly EncodedWrite[]): { address: number; values: number[]; kept: string[] } | string {
    if (points.length === 0) return 'nothing to write';
    const lo = Math.min(...points.map((p) => p.address));
    const hi = Math.max(...points.map((p) => p.address + p.registers.length));
    if (hi - lo > MAX_WRITE_REGISTERS) return `the span ${lo}+${hi - lo} is longer than one write`;
    const cached = this.cache.get(used.def.id);
    const base = used.model.address;
    if (!cached) return 'the model was not read';
    if (hi - base > cached.registers.length) return `the span ${lo}+${hi - lo} was not all read`;
    const values = Array.from(cached.registers.subarray(lo - base, hi - base));
    const covered = new Uint8Array(hi - lo);
    const written = new Set<string>();
    for (const p of points) {
      for (let k = 0; k < p.registers.length; k++) {
        const i = p.address - lo + k;
        if (covered[i]) return `${p.name} is written twice`;
        covered[i] = 1;
        values[i] = p.registers[k]!;
      }
      written.add(p.name);
    }
    const kept: string[] = [];
    for (const [name, { point, offset }] of used.def.points) {
      const address = base + offset;
      if (written.has(name) || address + point.size <= lo || address >= hi) continue;
      if (address < lo || address + point.size > hi) return `${name} would be cut by the span`;
      if (point.access !== 'RW') return `${name} in between is read-only`;
      if (decodeRawValue(point.type, cached.registers, offset, point.size) === undefined) return `${name} in between is not implemented`;
      kept.push(name);
      covered.fill(1, address - lo, address - lo + point.size);
    }
    if (!covered.every((c) => c === 1)) return `the span ${lo}+${hi - lo} has registers outside the model's points`;
    return { address: lo, values, kept };
  }

  /** One FC16 transaction; its registers go into the cache when it succeeds, the model leaves the cache when it fails. */
  private async send(used: UsedModel, address: number, values: readonly number[], names: () => string, extra: object = {}): Promise<void> {
    this.log.debug({ address, values, ...extra }, 'write');
    try {
      await this.unit.writeRegisters(address, values);
    } catch (err) {
      this.writeEnded(used, undefined);
      throw inContext(err, `${this.id}: writing SunSpec model ${used.def.id} ${names()} (registers ${address}+${values.length})`);
    }
    this.writeEnded(used, { address, values });
  }

  private writeEnded(used: UsedModel, write: { address: number; values: readonly number[] } | undefined): void {
    this.lastWriteEnded.set(used.def.id, ++this.writesEnded);
    const cached = this.cache.get(used.def.id);
    if (!cached) return;
    if (!write) {
      this.cache.delete(used.def.id);
      return;
    }
    const registers = Uint16Array.from(cached.registers);
    let changed = false;
    write.values.forEach((v, k) => {
      const i = write.address + k - used.model.address;
      if (i >= 0 && i < registers.length) {
        registers[i] = v;
        changed = true;
      }
    });
    if (changed) this.cache.set(used.def.id, { registers, values: decodeModelPrefix(used.def, registers, { address: used.model.address }) });
  }
}

/** Seconds for a revert timer register, rounded up (never 0, which means "no timeout"), capped at `maxS`. */
export function revertSeconds(revertAfterMs: number, maxS: number): number {
  if (!Number.isFinite(revertAfterMs) || revertAfterMs <= 0) {
    throw new RangeError(`revertAfterMs must be a positive number of milliseconds, got ${revertAfterMs}`);
  }
  return Math.min(Math.max(1, Math.ceil(revertAfterMs / 1000)), maxS);
}

export function optional(values: ModelValues | undefined, point: string): number | undefined {
  const v = values?.[point];
  return typeof v === 'number' ? v : undefined;
}
