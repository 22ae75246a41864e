/**
 * The site snapshot: one per control cycle, taken before anything decides. Nothing in it changes
 * during the cycle.
 */
import {
  SG_READY_STATES,
  type BatteryReading,
  type DeviceClass,
  type EvChargerReading,
  type HvacReading,
  type LoadReading,
  type MeterReading,
  type PvReading,
} from '../drivers/classes.js';

export type Reading = MeterReading | PvReading | BatteryReading | EvChargerReading | HvacReading | LoadReading;

export type Availability =
  | { state: 'unknown' }
  | { state: 'online'; sinceMs: number }
  | { state: 'offline'; sinceMs: number; reason: string };

export interface DeviceState {
  id: string;
  deviceClass: DeviceClass;
  availability: Availability;
  /** The last good reading, if any (possibly from an earlier cycle: see readAtMs). */
  reading?: Reading;
  readAtMs?: number;
  /** True when the reading was taken in this cycle. */
  fresh: boolean;
  /** What the device is, once discovered (e.g. "Fronius Symo 8.2-3-M SN 1234 (SunSpec 1,103,120,123)"). */
  description?: string;
}

export interface SiteSummary {
  /** Net power at the grid connection (site meter), positive = import. */
  gridPowerW?: number;
  /** Sum of PV AC output. */
  pvPowerW?: number;
  /** Sum of battery power, positive = charging. */
  batteryPowerW?: number;
  /** Capacity-weighted state of charge of all batteries. */
  batterySocPct?: number;
  gridImportWh?: number;
  gridExportWh?: number;
  /** Sum of EV charging power. */
  evPowerW?: number;
  /** Sum of the electrical power of heat pumps / HVAC that measure it. */
  hvacPowerW?: number;
  /** Sum of the power of switchable loads that measure it. */
  loadPowerW?: number;
}

export interface SiteSnapshot {
  cycle: number;
  tsMs: number;
  devices: DeviceState[];
  site: SiteSummary;
}

/** Numeric values of a reading, for the store: booleans as 0/1, the SG Ready state as 1-4 (its
 * standard number); other strings are not stored. */
export function readingValues(reading: Reading): Record<string, number> {
  const values: Record<string, number> = {};
  for (const [key, value] of Object.entries(reading)) {
    if (typeof value === 'number' && Number.isFinite(value)) values[key] = value;
    else if (typeof value === 'boolean') values[key] = value ? 1 : 0;
    else if (key === 'sgReady' && typeof value === 'string') {
      const index = (SG_READY_STATES as readonly string[]).indexOf(value);
      if (index >= 0) values[key] = index + 1;
    }
  }
  return values;
}

function sumPower(devices: readonly DeviceState[], deviceClass: DeviceClass): number | undefined {
  const powers = devices
    .filter((d) => d.deviceClass === deviceClass)
    .map((d) => (d.reading as { powerW?: number }).powerW)
    .filter((p): p is number => typeof p === 'number');
  return powers.length > 0 ? powers.reduce((a, b) => a + b, 0) : undefined;
}

export function summarize(devices: readonly DeviceState[], siteMeterId: string | undefined): SiteSummary {
  const site: SiteSummary = {};
  const usable = devices.filter((d) => d.reading !== undefined && d.availability.state === 'online');
  const meter = usable.find((d) => d.id === siteMeterId);
  if (meter?.reading) {
    const r = meter.reading as MeterReading;
    site.gridPowerW = r.powerW;
    if (r.importWh !== undefined) site.gridImportWh = r.importWh;
    if (r.exportWh !== undefined) site.gridExportWh = r.exportWh;
  }
  const pvs = usable.filter((d) => d.deviceClass === 'pv');
  if (pvs.length > 0) site.pvPowerW = pvs.reduce((sum, d) => sum + (d.reading as PvReading).powerW, 0);
  const batteries = usable.filter((d) => d.deviceClass === 'battery').map((d) => d.reading as BatteryReading);
  if (batteries.length > 0) {
    site.batteryPowerW = batteries.reduce((sum, b) => sum + b.powerW, 0);
    const weights = batteries.map((b) => b.capacityWh ?? 1);
    const total = weights.reduce((a, b) => a + b, 0);
    site.batterySocPct = batteries.reduce((sum, b, i) => sum + b.socPct * weights[i]!, 0) / total;
  }
  const evPowerW = sumPower(usable, 'ev-charger');
  if (evPowerW !== undefined) site.evPowerW = evPowerW;
  const hvacPowerW = sumPower(usable, 'hvac');
  if (hvacPowerW !== undefined) site.hvacPowerW = hvacPowerW;
  const loadPowerW = sumPower(usable, 'load');
  if (loadPowerW !== undefined) site.loadPowerW = loadPowerW;
  return site;
}
