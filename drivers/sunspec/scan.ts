/**
 * Scan support for the CLI: what each unit on a bus is, and the config an installer pastes.
 */
import { isDeviceError, type DeviceErrorKind } from '../errors.js';
import type { Log } from '../log.js';
import type { BusConnection, ModbusUnit } from '../modbus/types.js';
import type { SunSpecDeviceClass } from './device.js';
import { discoverSunSpec, type DiscoveredModel, type DiscoverOptions } from './discovery.js';
import { findModelDef } from './models/index.js';
import { describeSunSpec, readIdentity, type SunSpecIdentity } from './session.js';

export interface ScanResult {
  unitId: number;
  /** The unit's label, e.g. "tcp 192.168.1.50:502 unit 1". */
  label: string;
  found: boolean;
  /** Why nothing was found (no marker, timeout, ...). */
  reason?: string;
  errorKind?: DeviceErrorKind;
  baseAddress?: number;
  models?: readonly DiscoveredModel[];
  modelIds?: readonly number[];
  /** Model ids this driver has no definition for (listed, not used). */
  unknownModelIds?: readonly number[];
  identity?: SunSpecIdentity;
  /** e.g. "SunSpec Fronius Symo 8.2 (models 1,103,120,123), serial 123". */
  description?: string;
  suggestedClasses: SunSpecDeviceClass[];
}

const has = (ids: readonly number[], ...wanted: number[]) => wanted.some((w) => ids.includes(w));
const inRange = (ids: readonly number[], from: number, to: number) => ids.some((id) => id >= from && id <= to);

/**
 * The classes a set of models suggests: meter for 201-204/211-214; battery for 124, 802 (or 713);
 * pv for an inverter model 101-103/111-113 with a nameplate/settings/status/controls model
 * (120-123), or for DER models 701-7xx without storage.
 */
export function suggestClasses(modelIds: readonly number[]): SunSpecDeviceClass[] {
  const out: SunSpecDeviceClass[] = [];
  const storage = has(modelIds, 124, 802, 713);
  if (inRange(modelIds, 201, 204) || inRange(modelIds, 211, 214)) out.push('meter');
  const inverter = has(modelIds, 101, 102, 103, 111, 112, 113) && has(modelIds, 120, 121, 122, 123);
  const der = has(modelIds, 701) && !storage;
  if (inverter || der) out.push('pv');
  if (storage) out.push('battery');
  return out;
}

export type ScanOptions = DiscoverOptions;

/** Scans units one after the other (they usually share a bus). Never throws for a unit's failure. */
export async function scanUnits(units: readonly ModbusUnit[], log: Log, options: ScanOptions = {}): Promise<ScanResult[]> {
  const results: ScanResult[] = [];
  for (const unit of units) {
    results.push(await scanUnit(unit, log, options));
  }
  return results;
}

export async function scanUnit(unit: ModbusUnit, log: Log, options: ScanOptions = {}): Promise<ScanResult> {
  const base = { unitId: unit.unitId, label: unit.label };
  try {
    const discovery = await discoverSunSpec(unit, { priority: 'interactive', ...options });
    const identity = await readIdentity(unit, discovery, 'interactive');
    const modelIds = discovery.models.map((m) => m.id);
    const result: ScanResult = {
      ...base,
      found: true,
      baseAddress: discovery.baseAddress,
      models: discovery.models,
      modelIds,
      unknownModelIds: modelIds.filter((id) => !findModelDef(id)),
      identity,
      description: describeSunSpec(identity, discovery),
      suggestedClasses: suggestClasses(modelIds),
    };
    log.info({ unit: unit.label, baseAddress: discovery.baseAddress, modelIds }, 'SunSpec device found');
    return result;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    log.debug({ unit: unit.label, reason }, 'no SunSpec device');
    return { ...base, found: false, reason, ...(isDeviceError(err) ? { errorKind: err.kind } : {}), suggestedClasses: [] };
  }
}

/** One entry of the config's `devices:` list, as the installer pastes it. */
export interface SuggestedDevice {
  id: string;
  class: SunSpecDeviceClass;
  driver: 'sunspec';
  connection: BusConnection;
  unitId: number;
  sunspec?: { baseAddress: number };
}

/** The config's id rule: 1-32 of a-z 0-9 - _, starting with a letter or digit. */
function slug(text: string | undefined): string {
  return (text ?? '')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 16)
    .replace(/-+$/g, '');
}

/** The config entries for a scanned unit, one per suggested class (none when nothing was found).
 * Ids are "<manufacturer>-<class>-<unit id>", e.g. "fronius-pv-1". */
export function suggestConfig(result: ScanResult, connection: BusConnection): SuggestedDevice[] {
  if (!result.found) return [];
  const maker = slug(result.identity?.manufacturer);
  return result.suggestedClasses.map((deviceClass) => ({
    id: [maker, deviceClass, String(result.unitId)].filter((s) => s !== '').join('-'),
    class: deviceClass,
    driver: 'sunspec' as const,
    connection,
    unitId: result.unitId,
    ...(result.baseAddress !== undefined && [0, 40000, 50000].includes(result.baseAddress) ? { sunspec: { baseAddress: result.baseAddress } } : {}),
  }));
}
