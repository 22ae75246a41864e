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

export interface EvChargerReading {
  /** Charging power drawn from the site. */
  powerW: number;
  /** A vehicle is connected (IEC 61851 state B, C or D). */
  plugged: boolean;
  /** Energy is flowing to the vehicle (state C or D). */
  charging: boolean;
  /** Charging is allowed by the charger (not paused by flexgate or anyone else). */
  enabled?: boolean;
  /** Current limit per phase the charger applies now. */
  currentLimitA?: number;
  /** Energy of the current (or last) session. */
  sessionEnergyWh?: number;
  /** Lifetime energy counter. */
  energyWh?: number;
}

/** SG Ready states (BWP / SG Ready label): 1 blocked, 2 normal, 3 encouraged, 4 forced on. */
export const SG_READY_STATES = ['blocked', 'normal', 'encouraged', 'forced'] as const;
export type SgReadyState = (typeof SG_READY_STATES)[number];

export interface HvacReading {
  /** Electrical power drawn, when the device measures it. */
  powerW?: number;
  /** Lifetime electrical energy. */
  energyWh?: number;
  indoorC?: number;
  outdoorC?: number;
  /** Offset of the device's temperature setpoint that flexgate controls (0 = normal). */
  setpointOffsetC?: number;
  /** The occupant's setpoint as the device reports it. */
  setpointC?: number;
  sgReady?: SgReadyState;
  /** The device's own operating mode, as it names it (e.g. "heating", "off"). */
  mode?: string;
}

export interface LoadReading {
  /** Power drawn, when the device measures it. */
  powerW?: number;
  /** The load is switched on. */
  on: boolean;
  /** Lifetime energy. */
  energyWh?: number;
  /** A temperature the device reports (e.g. the plug's own), informational. */
  temperatureC?: number;
}

/** How a device returns to normal if flexgate stops talking to it (a dead-man switch, or none). */
export type RevertBehaviour =
  | {
      kind: 'device-timer';
      /** What arms it, e.g. "holding 1208 (s)". */
      description: string;
      minMs: number;
      maxMs: number;
    }
  | { kind: 'none' };

/**
 * A device flexgate can change. `restore()` returns it to normal now (no limit, SG Ready normal,
 * setpoint offset 0, full charging current, plug on). Devices whose revert is 'none' stay as
 * flexgate left them until it restores them: the agent does that when an order ends and, after a
 * crash, at its next start.
 */
export interface Controllable {
  readonly revert: RevertBehaviour;
  restore(): Promise<void>;
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

export interface Pv extends DeviceBase<PvReading>, Partial<Controllable> {
  readonly deviceClass: 'pv';
  /** Curtails AC output to `limitPct` of rated power; the device reverts by itself after `revertAfterMs`
   * unless the limit is written again (dead-man switch). */
  setLimitPct(limitPct: number, revertAfterMs: number): Promise<void>;
  /** Removes the limit now. */
  clearLimit(): Promise<void>;
}

export interface Battery extends DeviceBase<BatteryReading>, Partial<Controllable> {
  readonly deviceClass: 'battery';
  /** Holds `powerW` (positive charge, negative discharge) within the device's limits; reverts to the
   * device's own control after `revertAfterMs` unless written again. */
  setPowerW(powerW: number, revertAfterMs: number): Promise<void>;
  /** Returns the battery to its own control now. */
  clearSetpoint(): Promise<void>;
}

export interface EvChargerLimits {
  /** Lowest current a vehicle accepts (IEC 61851: 6 A); below it the charger pauses instead. */
  minCurrentA: number;
  /** Highest current the installation allows (installer config within the charger's range). */
  maxCurrentA: number;
  phases: 1 | 3;
  /** Nominal phase voltage used to turn current into power. */
  voltageV: number;
}

export interface EvCharger extends DeviceBase<EvChargerReading>, Controllable {
  readonly deviceClass: 'ev-charger';
  readonly limits: EvChargerLimits;
  /** Allows charging at `currentA` per phase (minCurrentA..maxCurrentA; rejects outside). */
  setCurrentA(currentA: number): Promise<void>;
  /** Stops charging (the vehicle stays connected). restore() resumes at maxCurrentA. */
  pause(): Promise<void>;
}

export interface Hvac extends DeviceBase<HvacReading>, Controllable {
  readonly deviceClass: 'hvac';
  /** Typical electrical power while running, for planning (W). */
  readonly ratedPowerW: number;
}

/** An HVAC device controlled by SG Ready. */
export interface SgReadyHvac extends Hvac {
  /** Changes closer together than this are refused (RefusedError), as the manufacturer asks. */
  readonly minSwitchIntervalMs: number;
  setSgReady(state: SgReadyState): Promise<void>;
}

/** An HVAC device controlled by an offset of its temperature setpoint. */
export interface SetpointHvac extends Hvac {
  /** The offsets the device accepts and the installer allows, in K. */
  readonly setpointOffsetRangeC: { minC: number; maxC: number };
  /** The occupant's comfort band for the indoor temperature: flexgate never pushes it outside. */
  readonly comfortBandC: { minC: number; maxC: number };
  setSetpointOffsetC(offsetC: number): Promise<void>;
}

/** A switchable flexible load (a water heater on a smart plug). */
export interface Load extends DeviceBase<LoadReading>, Controllable {
  readonly deviceClass: 'load';
  /** Power while on, for planning (W). */
  readonly ratedPowerW: number;
  /** Switching sooner than these after the last change is refused (RefusedError). */
  readonly minOnMs: number;
  readonly minOffMs: number;
  setOn(on: boolean): Promise<void>;
}

export type Device = Meter | Pv | Battery | EvCharger | Hvac | Load;

export type ReadingOf<D> = D extends DeviceBase<infer R> ? R : never;

export const isMeter = (d: Device): d is Meter => d.deviceClass === 'meter';
export const isPv = (d: Device): d is Pv => d.deviceClass === 'pv' && typeof (d as Pv).setLimitPct === 'function';
export const isBattery = (d: Device): d is Battery =>
  d.deviceClass === 'battery' && typeof (d as Battery).setPowerW === 'function';
export const isEvCharger = (d: Device): d is EvCharger =>
  d.deviceClass === 'ev-charger' && typeof (d as EvCharger).setCurrentA === 'function';
export const isHvac = (d: Device): d is Hvac => d.deviceClass === 'hvac';
export const isSgReadyHvac = (d: Device): d is SgReadyHvac => isHvac(d) && typeof (d as SgReadyHvac).setSgReady === 'function';
export const isSetpointHvac = (d: Device): d is SetpointHvac =>
  isHvac(d) && typeof (d as SetpointHvac).setSetpointOffsetC === 'function';
export const isLoad = (d: Device): d is Load => d.deviceClass === 'load' && typeof (d as Load).setOn === 'function';
export const isControllable = (d: Device): d is Device & Controllable => typeof (d as Partial<Controllable>).restore === 'function';
