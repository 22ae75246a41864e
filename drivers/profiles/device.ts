/**
 * The generic class layer: any profile over any transport becomes a device of its class (Meter,
 * EvCharger, SgReadyHvac / SetpointHvac, Load of drivers/classes.ts). Readings are made from sources
 * (absent when unknown); controls are checked against the profile's limits and the installer's
 * settings before anything is written, and the device's own rules (SG Ready minimum switching time,
 * minimum on/off times) refuse a change that comes too soon with a RefusedError.
 */
import {
  SG_READY_STATES,
  type Device,
  type EvCharger,
  type EvChargerReading,
  type Hvac,
  type HvacReading,
  type Load,
  type LoadReading,
  type Meter,
  type MeterReading,
  type RevertBehaviour,
  type SgReadyState,
  type SetpointHvac,
} from '../classes.js';
import type { Clock } from '../clock.js';
import { BadDataError, RefusedError } from '../errors.js';
import type { Log } from '../log.js';
import { CLASS_VOCABULARY, type Profile, type ReadingSpec } from './schema.js';
import type { ProfileTransport, SourceSnapshot, SourceValue } from './transport.js';

/** What the installer sets per device (the config's evCharger / hvac / load sections). */
export interface ProfileDeviceSettings {
  evCharger?: { phases: 1 | 3; minCurrentA: number; maxCurrentA: number; voltageV: number } | undefined;
  hvac?: { ratedPowerW: number; comfortMinC: number; comfortMaxC: number; maxOffsetC: number; minSwitchIntervalMs?: number | undefined } | undefined;
  load?: { ratedPowerW: number; minOnMs: number; minOffMs: number } | undefined;
}

export interface ProfileDeviceOptions {
  id: string;
  profile: Profile;
  transport: ProfileTransport;
  settings?: ProfileDeviceSettings;
  clock: Clock;
  log: Log;
}

type Reading = Record<string, number | boolean | string>;

/** One reading field from the sources: undefined when a source is unknown or the value is unmapped. */
export function evaluateReading(spec: ReadingSpec, values: SourceSnapshot['values']): number | boolean | string | undefined {
  let raw: SourceValue | undefined;
  if (spec.source !== undefined) raw = values[spec.source];
  else {
    let sum = 0;
    for (const s of spec.sum ?? []) {
      const v = values[s];
      if (typeof v !== 'number') return undefined;
      sum += v;
    }
    raw = sum;
  }
  if (raw === undefined) return undefined;
  if (spec.in) return spec.in.some((x) => String(x) === String(raw));
  if (spec.map) {
    const key = typeof raw === 'number' && Number.isInteger(raw) ? String(raw) : String(raw);
    return spec.map[key];
  }
  if (typeof raw === 'number') return raw * spec.scale + spec.offset;
  return raw;
}

class ProfileDeviceBase {
  readonly revert: RevertBehaviour;
  protected lastReading: Reading | undefined;

  constructor(protected readonly options: ProfileDeviceOptions) {
    const r = options.profile.revert;
    this.revert = r.kind === 'none' ? { kind: 'none' } : { kind: 'device-timer', description: r.description, minMs: r.minMs, maxMs: r.maxMs };
  }

  get id(): string {
    return this.options.id;
  }

  describe(): string {
    return this.options.transport.describe();
  }

  protected async readFields(): Promise<Reading> {
    const { profile, transport } = this.options;
    const snapshot = await transport.read();
    const reading: Reading = {};
    const missing: string[] = [];
    for (const [field, spec] of Object.entries(profile.readings)) {
      const value = evaluateReading(spec, snapshot.values);
      if (value !== undefined) reading[field] = value;
      else if (CLASS_VOCABULARY[profile.class].requiredReadings.includes(field)) {
        const why = [spec.source, ...(spec.sum ?? [])].map((s) => (s ? snapshot.problems[s] : undefined)).find((p) => p !== undefined);
        missing.push(`${field}${why ? ` (${why})` : ''}`);
      }
    }
    if (missing.length > 0) throw new BadDataError(`${this.describe()}: no usable ${missing.join(', ')}`);
    this.lastReading = reading;
    return reading;
  }

  /** Runs a control: a fixed action per value, or one action carrying the encoded value. */
  protected async control(name: string, value: number | boolean | string): Promise<void> {
    const spec = this.options.profile.controls[name];
    if (!spec) throw new RefusedError(`${this.describe()}: the profile has no control "${name}"`);
    if (spec.actions) {
      const action = spec.actions[String(value)];
      if (!action) throw new RefusedError(`${this.describe()}: control ${name} has no action for ${String(value)}`);
      await this.options.transport.act(action, 0);
      return;
    }
    let raw: SourceValue;
    if (spec.map) {
      const mapped = spec.map[String(value)];
      if (mapped === undefined) throw new RefusedError(`${this.describe()}: control ${name} cannot encode ${String(value)}`);
      raw = mapped;
    } else if (typeof value === 'number') {
      raw = value * spec.scale;
    } else raw = value;
    await this.options.transport.act(spec.action!, raw);
  }
}

class ProfileMeter extends ProfileDeviceBase implements Meter {
  readonly deviceClass = 'meter';

  async read(): Promise<MeterReading> {
    return (await this.readFields()) as unknown as MeterReading;
  }
}

class ProfileEvCharger extends ProfileDeviceBase implements EvCharger {
  readonly deviceClass = 'ev-charger';
  readonly limits: EvCharger['limits'];

  constructor(options: ProfileDeviceOptions) {
    super(options);
    const range = options.profile.limits.currentA ?? { min: 6, max: 32 };
    const s = options.settings?.evCharger;
    const minCurrentA = Math.max(range.min, s?.minCurrentA ?? range.min);
    const maxCurrentA = Math.min(range.max, s?.maxCurrentA ?? range.max);
    if (minCurrentA > maxCurrentA) throw new RefusedError(`${options.id}: current range ${minCurrentA}..${maxCurrentA} A is empty (profile ${range.min}..${range.max} A)`);
    this.limits = { minCurrentA, maxCurrentA, phases: s?.phases ?? 3, voltageV: s?.voltageV ?? 230 };
  }

  async read(): Promise<EvChargerReading> {
    return (await this.readFields()) as unknown as EvChargerReading;
  }

  async setCurrentA(currentA: number): Promise<void> {
    const { minCurrentA, maxCurrentA } = this.limits;
    if (!Number.isFinite(currentA) || currentA < minCurrentA || currentA > maxCurrentA) {
      throw new RefusedError(`${this.describe()}: ${currentA} A is outside ${minCurrentA}..${maxCurrentA} A`);
    }
    await this.control('currentA', Math.round(currentA));
    if (this.lastReading?.['enabled'] !== true && this.options.profile.controls['enabled']) {
      await this.control('enabled', true);
      if (this.lastReading) this.lastReading['enabled'] = true;
    }
  }

  async pause(): Promise<void> {
    await this.control('enabled', false);
    if (this.lastReading) this.lastReading['enabled'] = false;
  }

  async restore(): Promise<void> {
    await this.control('currentA', this.limits.maxCurrentA);
    await this.control('enabled', true);
    if (this.lastReading) this.lastReading['enabled'] = true;
  }
}

class ProfileHvac extends ProfileDeviceBase implements Hvac {
  readonly deviceClass = 'hvac';
  readonly ratedPowerW: number;
  /** SG Ready capability (present only when the profile has the control). */
  readonly minSwitchIntervalMs?: number;
  readonly setSgReady?: (state: SgReadyState) => Promise<void>;
  /** Setpoint-offset capability (present only when the profile has the control). */
  readonly setpointOffsetRangeC?: SetpointHvac['setpointOffsetRangeC'];
  readonly comfortBandC?: SetpointHvac['comfortBandC'];
  readonly setSetpointOffsetC?: (offsetC: number) => Promise<void>;
  private lastSwitchMs: number | undefined;
  private lastState: SgReadyState | undefined;

  constructor(options: ProfileDeviceOptions) {
    super(options);
    const { profile, settings, clock } = options;
    this.ratedPowerW = settings?.hvac?.ratedPowerW ?? profile.limits.ratedPowerW ?? 2000;
    if (profile.controls['sgReady']) {
      const minSwitchIntervalMs = Math.max(profile.limits.sgReadyMinSwitchMs ?? 0, settings?.hvac?.minSwitchIntervalMs ?? 0);
      this.minSwitchIntervalMs = minSwitchIntervalMs;
      this.setSgReady = async (state: SgReadyState): Promise<void> => {
        if (!(SG_READY_STATES as readonly string[]).includes(state)) throw new RefusedError(`${this.describe()}: "${String(state)}" is not an SG Ready state`);
        const now = clock.now();
        const current = this.lastState ?? this.lastReading?.['sgReady'];
        if (current === state) return;
        if (this.lastSwitchMs !== undefined && now - this.lastSwitchMs < minSwitchIntervalMs) {
          throw new RefusedError(
            `${this.describe()}: SG Ready may change only every ${Math.round(minSwitchIntervalMs / 1000)} s; the last change was ${Math.round((now - this.lastSwitchMs) / 1000)} s ago`,
          );
        }
        await this.control('sgReady', state);
        this.lastSwitchMs = now;
        this.lastState = state;
      };
    }
    if (profile.controls['setpointOffsetC']) {
      const range = profile.limits.setpointOffsetC ?? { min: 0, max: 0 };
      const maxOffsetC = settings?.hvac?.maxOffsetC ?? 3;
      const offsetRange = { minC: Math.max(range.min, -maxOffsetC), maxC: Math.min(range.max, maxOffsetC) };
      this.setpointOffsetRangeC = offsetRange;
      this.comfortBandC = { minC: settings?.hvac?.comfortMinC ?? 19, maxC: settings?.hvac?.comfortMaxC ?? 23 };
      this.setSetpointOffsetC = async (offsetC: number): Promise<void> => {
        if (!Number.isFinite(offsetC) || offsetC < offsetRange.minC || offsetC > offsetRange.maxC) {
          throw new RefusedError(`${this.describe()}: offset ${offsetC} K is outside ${offsetRange.minC}..${offsetRange.maxC} K`);
        }
        await this.control('setpointOffsetC', offsetC);
      };
    }
  }

  async read(): Promise<HvacReading> {
    return (await this.readFields()) as unknown as HvacReading;
  }

  async restore(): Promise<void> {
    const controls = this.options.profile.controls;
    if (controls['sgReady']) {
      // Back to normal is always allowed: it is what the minimum switching time protects.
      await this.control('sgReady', 'normal');
      this.lastState = 'normal';
      this.lastSwitchMs = this.options.clock.now();
    }
    if (controls['setpointOffsetC']) await this.control('setpointOffsetC', 0);
  }
}

class ProfileLoad extends ProfileDeviceBase implements Load {
  readonly deviceClass = 'load';
  readonly ratedPowerW: number;
  readonly minOnMs: number;
  readonly minOffMs: number;
  private lastSwitchMs: number | undefined;
  private lastOn: boolean | undefined;

  constructor(options: ProfileDeviceOptions) {
    super(options);
    const s = options.settings?.load;
    this.ratedPowerW = s?.ratedPowerW ?? options.profile.limits.ratedPowerW ?? 1000;
    this.minOnMs = s?.minOnMs ?? 0;
    this.minOffMs = s?.minOffMs ?? 0;
  }

  async read(): Promise<LoadReading> {
    return (await this.readFields()) as unknown as LoadReading;
  }

  async setOn(on: boolean): Promise<void> {
    const now = this.options.clock.now();
    const current = this.lastOn ?? (this.lastReading?.['on'] as boolean | undefined);
    if (current === on) return;
    if (this.lastSwitchMs !== undefined && current !== undefined) {
      const minMs = current ? this.minOnMs : this.minOffMs;
      if (now - this.lastSwitchMs < minMs) {
        throw new RefusedError(`${this.describe()}: must stay ${current ? 'on' : 'off'} at least ${Math.round(minMs / 1000)} s; switched ${Math.round((now - this.lastSwitchMs) / 1000)} s ago`);
      }
    }
    await this.control('on', on);
    this.lastSwitchMs = now;
    this.lastOn = on;
  }

  async restore(): Promise<void> {
    await this.control('on', true);
    this.lastOn = true;
    this.lastSwitchMs = this.options.clock.now();
  }
}

/** The device of the profile's class, with exactly the capabilities its controls give. */
export function createProfileDevice(options: ProfileDeviceOptions): Device {
  const { profile } = options;
  switch (profile.class) {
    case 'meter':
      return new ProfileMeter(options);
    case 'ev-charger':
      return new ProfileEvCharger(options);
    case 'load':
      return new ProfileLoad(options);
    case 'hvac':
      return new ProfileHvac(options);
  }
}
