/**
 * Device classes: small capability interfaces with units in the names. A driver implements one
 * class; the agent checks capabilities with the type guards below, never by vendor.
 *
 * Sign conventions (the same as the wire protocol's site power): a meter's powerW is positive when
 * the site imports; a battery's powerW is positive while it charges (draws from the site) and
 * negative while it discharges; a PV inverter's powerW is its AC output (≥ 0).
 * A field that the device does not implement is absent (undefined), never a made-up number.
 */
export type DeviceClass = 'meter' | 'pv' | 'battery' | 'ev-charger' | 'hvac' | 'load';

export interface MeterReading {
  powerW: number;
  /** Cumulative import counter. */
  importWh?: number;
  /** Cumulative export counter. */
  exportWh?: number;
  voltageV?: number;
  frequencyHz?: number;
}

export interface PvReading {
  powerW: number;
  /** Lifetime AC energy produced. */
  energyWh?: number;
  /** Nameplate AC power (WMax / WRtg). */
  ratedPowerW?: number;
  /** Active power limit in % of WMax, present only while a limit is enabled. */
  limitPct?: number;
}

export interface BatteryReading {
  powerW: number;
  socPct: number;
  capacityWh?: number;
  maxChargeW?: number;
  maxDischargeW?: number;
  /** Active setpoint in W (positive charge), present only while one is enabled. */
  setpointW?: number;
}

export interface DeviceBase<R> {
  readonly id: string;
  readonly deviceClass: DeviceClass;
  /** One poll of the device. Rejects with a DeviceError (drivers/errors.ts) on failure. */
  read(): Promise<R>;
  /** A short description of what was found, e.g. "SunSpec Fronius Symo 8.2 (models 1,103,120,123)". */
  describe(): string;
}

export interface Meter extends DeviceBase<MeterReading> {
  readonly deviceClass: 'meter';
}

export interface Pv extends DeviceBase<PvReading> {
  readonly deviceClass: 'pv';
  /** Curtails AC output to `limitPct` of rated power; the device reverts by itself after `revertAfterMs`
   * unless the limit is written again (dead-man switch). */
  setLimitPct(limitPct: number, revertAfterMs: number): Promise<void>;
  /** Removes the limit now. */
  clearLimit(): Promise<void>;
}

export interface Battery extends DeviceBase<BatteryReading> {
  readonly deviceClass: 'battery';
  /** Holds `powerW` (positive charge, negative discharge) within the device's limits; reverts to the
   * device's own control after `revertAfterMs` unless written again. */
  setPowerW(powerW: number, revertAfterMs: number): Promise<void>;
  /** Returns the battery to its own control now. */
  clearSetpoint(): Promise<void>;
}

export type Device = Meter | Pv | Battery;

export type ReadingOf<D> = D extends DeviceBase<infer R> ? R : never;

export const isMeter = (d: Device): d is Meter => d.deviceClass === 'meter';
export const isPv = (d: Device): d is Pv => d.deviceClass === 'pv' && typeof (d as Pv).setLimitPct === 'function';
export const isBattery = (d: Device): d is Battery =>
  d.deviceClass === 'battery' && typeof (d as Battery).setPowerW === 'function';
