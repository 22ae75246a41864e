/**
 * SunSpec discovery: find the "SunS" marker at one of the usual base addresses, then walk the chain
 * of model headers (ID, L) up to the end marker 0xFFFF.
 */
import { BadDataError, ModbusExceptionError, NotSupportedError } from '../errors.js';
import type { ModbusUnit, RequestPriority } from '../modbus/types.js';

/** "SunS" as two registers. */
export const SUNS_MARKER = [0x5375, 0x6e53] as const;
/** The ID register value that ends the model chain. */
export const END_MODEL_ID = 0xffff;
export const DEFAULT_BASES: readonly number[] = [40000, 0, 50000];
/** A real device has a handful of models; a chain longer than this is broken. */
export const DEFAULT_MAX_MODELS = 128;

export interface DiscoveredModel {
  readonly id: number;
  /** Modbus address of the model's ID register. */
  readonly address: number;
  /** L: registers after ID and L. */
  readonly length: number;
}

export interface SunSpecDiscovery {
  /** Address of the "SunS" marker. */
  readonly baseAddress: number;
  /** In chain order, unknown ids included. */
  readonly models: readonly DiscoveredModel[];
}

export interface DiscoverOptions {
  bases?: readonly number[];
  maxModels?: number;
  priority?: RequestPriority;
  signal?: AbortSignal;
}

/**
 * Finds the SunSpec map of `unit`. A Modbus exception or a missing marker at one base means "try the
 * next one"; when every base fails: NotSupportedError naming the unit and the bases tried. Timeouts
 * and lost connections are not answers about SunSpec and propagate unchanged (they are retryable).
 * Neither are exceptions 4 and above (device failure, busy, gateway path unavailable, gateway target
 * failed to respond, e.g. a wrong unit id behind a gateway): the other bases are still tried, but
 * when none has the marker the (retryable) ModbusExceptionError is raised, listing every base, never
 * the permanent NotSupportedError. A broken chain (an address past 65535, more than `maxModels`
 * models, no end marker) is a BadDataError.
 */
export async function discoverSunSpec(unit: ModbusUnit, options: DiscoverOptions = {}): Promise<SunSpecDiscovery> {
  const bases = options.bases ?? DEFAULT_BASES;
  const maxModels = options.maxModels ?? DEFAULT_MAX_MODELS;
  const readOptions = { priority: options.priority ?? 'poll', ...(options.signal ? { signal: options.signal } : {}) } as const;
  const tried: string[] = [];
  let inconclusive: ModbusExceptionError | undefined;
  for (const base of bases) {
    if (!Number.isInteger(base) || base < 0 || base > 65535 - 3) {
      tried.push(`${base} (not a valid address)`);
      continue;
    }
    let marker: Uint16Array;
    try {
      marker = await unit.readRegisters('holding', base, 2, readOptions);
    } catch (err) {
      if (err instanceof ModbusExceptionError) {
        tried.push(`${base} (${err.message})`);
        if (err.retryable) inconclusive ??= err;
        continue;
      }
      throw err;
    }
    if (marker[0] !== SUNS_MARKER[0] || marker[1] !== SUNS_MARKER[1]) {
      tried.push(`${base} (read 0x${hex(marker[0])} 0x${hex(marker[1])}, not "SunS")`);
      continue;
    }
    return { baseAddress: base, models: await walkChain(unit, base, maxModels, readOptions) };
  }
  if (inconclusive) {
    throw new ModbusExceptionError(
      `${unit.label}: no conclusive answer about SunSpec (exception ${inconclusive.exceptionCode} is not "no such register"): ${tried.join(', ')}`,
      inconclusive.functionCode,
      inconclusive.exceptionCode,
    );
  }
  throw new NotSupportedError(`${unit.label}: no SunSpec marker "SunS" at ${tried.length ? tried.join(', ') : 'any base (none given)'}`);
}

function hex(v: number | undefined): string {
  return v === undefined ? '?' : v.toString(16).padStart(4, '0');
}

async function walkChain(
  unit: ModbusUnit,
  base: number,
  maxModels: number,
  readOptions: { priority: RequestPriority; signal?: AbortSignal },
): Promise<DiscoveredModel[]> {
  const models: DiscoveredModel[] = [];
  let address = base + 2;
  for (;;) {
    if (address > 65535) {
      throw new BadDataError(`${unit.label}: SunSpec model chain from ${base} runs past address 65535 without an end marker`);
    }
    const header = await readHeader(unit, address, readOptions);
    if (header === undefined || header.id === END_MODEL_ID) return models;
    if (header.length === undefined) {
      throw new BadDataError(`${unit.label}: SunSpec model ${header.id} at ${address} is cut off at the end of the address space`);
    }
    if (models.length >= maxModels) {
      throw new BadDataError(`${unit.label}: more than ${maxModels} SunSpec models from ${base}; the chain is broken (no end marker)`);
    }
    const next = address + 2 + header.length;
    if (next > 65536) {
      throw new BadDataError(`${unit.label}: SunSpec model ${header.id} at ${address} has L=${header.length}, which runs past address 65535`);
    }
    models.push({ id: header.id, address, length: header.length });
    address = next;
  }
}

/**
 * Reads ID and L at `address`. Some devices end their map with a single 0xFFFF register, so when the
 * two-register read is refused (exceptions 1–3) the ID alone is read. Returns undefined only for the
 * end marker read alone; a refusal that is not an end marker is a broken chain. Exceptions 4 and
 * above (busy, device failure, gateway) say nothing about the map and propagate unchanged.
 */
async function readHeader(
  unit: ModbusUnit,
  address: number,
  readOptions: { priority: RequestPriority; signal?: AbortSignal },
): Promise<{ id: number; length: number | undefined } | undefined> {
  if (address <= 65534) {
    try {
      const regs = await unit.readRegisters('holding', address, 2, readOptions);
      return { id: regs[0]!, length: regs[1]! };
    } catch (err) {
      if (!(err instanceof ModbusExceptionError) || err.retryable) throw err;
    }
  }
  let id: number;
  try {
    id = (await unit.readRegisters('holding', address, 1, readOptions))[0]!;
  } catch (err) {
    if (err instanceof ModbusExceptionError && !err.retryable) {
      throw new BadDataError(`${unit.label}: SunSpec model chain has no end marker: reading ${address} failed (${err.message})`, { cause: err });
    }
    throw err;
  }
  if (id === END_MODEL_ID) return undefined;
  return { id, length: undefined };
}
