/**
 * What every SunSpec device class shares: the discovered map, the identity from the common model,
 * polls planned over the models a class needs, required/optional values, and ordered writes.
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
import { decodeModelPrefix, encodePoint, isAllowedLength, type PointValue } from './codec.js';
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
  /** The last values read of each model, by model id (scale factors for writes come from here). */
  private readonly cache = new Map<number, ModelValues>();

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
      this.cache.set(m.def.id, values);
      out.set(m.def.id, values);
    });
    return out;
  }

  /** The last values read of a model, reading it now (write priority) when it was never read. */
  async current(used: UsedModel, points: readonly string[]): Promise<ModelValues> {
    const cached = this.cache.get(used.def.id);
    if (cached) return cached;
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
  async write(used: UsedModel, points: readonly (readonly [string, PointValue])[], scaleFactors: ModelValues): Promise<void> {
    const encoded = points.map(([name, value]) => encodePoint(used.def, name, value, scaleFactors, used.model.address));
    const writes: { address: number; values: number[] }[] = [];
    for (const e of encoded) {
      const last = writes[writes.length - 1];
      if (last && last.address + last.values.length === e.address && last.values.length + e.registers.length <= 123) last.values.push(...e.registers);
      else writes.push({ address: e.address, values: [...e.registers] });
    }
    for (const w of writes) {
      this.log.debug({ address: w.address, values: w.values }, 'write');
      try {
        await this.unit.writeRegisters(w.address, w.values);
      } catch (err) {
        const names = points.filter((_, i) => encoded[i]!.address >= w.address && encoded[i]!.address < w.address + w.values.length).map(([n]) => n);
        throw inContext(err, `${this.id}: writing SunSpec model ${used.def.id} ${names.join(', ')} (registers ${w.address}+${w.values.length})`);
      }
    }
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
