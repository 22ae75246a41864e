/**
 * The generic class layer: any profile over any ProfileTransport becomes a device of its class
 * (Meter, EvCharger, SgReadyHvac / SetpointHvac, Load of drivers/classes.ts).
 *
 * Readings are made from the transport's sources (scale, offset, map, in, sum) and checked against
 * the class field's type; a field whose source is unknown is absent, and the read fails (BadDataError,
 * with the reasons) only when a field the class requires is unknown.
 *
 * Controls are checked before anything is written, and a refused control writes nothing
 * (RefusedError): against the profile's limits and the installer's settings (evCharger: current
 * range; hvac: largest offset, comfort band, SG Ready minimum switching time — never below the
 * profile's; load: minimum on/off times), and the comfort band against the last indoor temperature
 * read (flexgate never pushes a room further outside it). `restore()` returns the device to its
 * class's normal state (EV: enabled at the highest allowed current; SG Ready normal; offset 0; load
 * on) and is always allowed. With a device-timer revert that has an action, the timer is armed before
 * every control write.
 */
import {
  SG_READY_STATES,
  type Device,
  type EvCharger,
  type EvChargerLimits,
  type EvChargerReading,
  type Hvac,
  type HvacReading,
  type Load,
  type LoadReading,
  type Meter,
  type MeterReading,
  type RevertBehaviour,
  type SetpointHvac,
  type SgReadyState,
} from '../classes.js';
import type { Clock } from '../clock.js';
import { BadDataError, NotSupportedError, RefusedError } from '../errors.js';
import type { Log } from '../log.js';
import { CLASS_VOCABULARY, isSequenceAction, roundRaw, type FieldType, type Profile, type ReadingSpec } from './schema.js';
import type { ProfileTransport, SourceSnapshot, SourceValue } from './transport.js';

/** The installer's settings of an EV charger (structurally the config's `evCharger` section). */
export interface EvChargerSettings {
  phases: 1 | 3;
  minCurrentA: number;
  maxCurrentA: number;
  voltageV: number;
}

/** The installer's settings of an HVAC device (structurally the config's `hvac` section). */
export interface HvacSettings {
  ratedPowerW: number;
  comfortMinC: number;
  comfortMaxC: number;
  /** Setpoint-offset devices: the largest offset flexgate uses, K. */
  maxOffsetC: number;
  /** SG Ready devices: at least this long between changes (never below the profile's minimum). */
  minSwitchIntervalMs?: number | undefined;
}

/** The installer's settings of a switchable load (structurally the config's `load` section). */
export interface LoadSettings {
  ratedPowerW: number;
  minOnMs: number;
  minOffMs: number;
}

/** What the installer sets per device (the config's evCharger / hvac / load sections). */
export interface ProfileDeviceSettings {
  evCharger?: EvChargerSettings | undefined;
  hvac?: HvacSettings | undefined;
  load?: LoadSettings | undefined;
}

/** Used when a device has no settings section: the config schema's defaults (agent/config/schema.ts). */
export const DEFAULT_EV_CHARGER_SETTINGS: Readonly<EvChargerSettings> = { phases: 3, minCurrentA: 6, maxCurrentA: 16, voltageV: 230 };
export const DEFAULT_HVAC_SETTINGS: Readonly<HvacSettings> = { ratedPowerW: 2000, comfortMinC: 19, comfortMaxC: 23, maxOffsetC: 3 };
export const DEFAULT_LOAD_MIN_MS = 300_000;

export interface ProfileDeviceOptions {
  id: string;
  profile: Profile;
  transport: ProfileTransport;
  settings?: ProfileDeviceSettings | undefined;
  clock: Clock;
  log: Log;
}

type FieldValue = number | boolean | string;
type Reading = Record<string, FieldValue>;

/** One reading field from a poll: its value, or why it is unknown. */
export function evaluateReading(spec: ReadingSpec, snapshot: SourceSnapshot, type: FieldType): { value: FieldValue } | { problem: string } {
  const unknown = (s: string) => ({ problem: snapshot.problems[s] ?? `source ${s} has no value` });
  let raw: SourceValue;
  if (spec.source !== undefined) {
    const v = snapshot.values[spec.source];
    if (v === undefined) return unknown(spec.source);
    raw = v;
  } else {
    let sum = 0;
    for (const s of spec.sum ?? []) {
      const v = snapshot.values[s];
      if (v === undefined) return unknown(s);
      if (typeof v !== 'number') return { problem: `source ${s} is ${JSON.stringify(v)}, not a number to add` };
      sum += v;
    }
    raw = sum;
  }
  let value: FieldValue;
  if (spec.in) value = spec.in.some((x) => String(x) === String(raw));
  else if (spec.map) {
    const mapped = Object.hasOwn(spec.map, String(raw)) ? spec.map[String(raw)] : undefined;
    if (mapped === undefined) return { problem: `${JSON.stringify(raw)} is not one of the values the profile maps (${Object.keys(spec.map).join(', ')})` };
    value = mapped;
  } else if (typeof raw === 'number' && (spec.scale !== 1 || spec.offset !== 0)) {
    // 12 significant digits: no binary noise (23.1, not 23.100000000000001), far below any sensor's resolution.
    value = Number((raw * spec.scale + spec.offset).toPrecision(12));
  } else value = raw;
  switch (type) {
    case 'number':
      return typeof value === 'number' && Number.isFinite(value) ? { value } : { problem: `${JSON.stringify(value)} is not a number` };
    case 'boolean':
      return typeof value === 'boolean' ? { value } : { problem: `${JSON.stringify(value)} is not true or false` };
    case 'sg-ready':
      return (SG_READY_STATES as readonly unknown[]).includes(value) ? { value } : { problem: `${JSON.stringify(value)} is not an SG Ready state` };
    case 'string':
      return typeof value === 'string' ? { value } : { problem: `${JSON.stringify(value)} is not a string` };
  }
}

abstract class ProfileDeviceBase {
  readonly revert: RevertBehaviour;
  protected lastReading: Reading | undefined;
  protected readonly profile: Profile;
  protected readonly transport: ProfileTransport;
  protected readonly clock: Clock;
  protected readonly log: Log;

  constructor(protected readonly options: ProfileDeviceOptions) {
    this.profile = options.profile;
    this.transport = options.transport;
    this.clock = options.clock;
    this.log = options.log;
    const r = options.profile.revert;
    this.revert = r.kind === 'none' ? { kind: 'none' } : { kind: 'device-timer', description: r.description, minMs: r.minMs, maxMs: r.maxMs };
  }

  get id(): string {
    return this.options.id;
  }

  describe(): string {
    return `${this.profile.vendor} ${this.profile.model} (profile ${this.profile.profile}) on ${this.transport.describe()}`;
  }

  protected refuse(message: string): RefusedError {
    return new RefusedError(`${this.id}: ${message}`);
  }

  protected async readFields(): Promise<Reading> {
    const snapshot = await this.transport.read();
    const vocabulary = CLASS_VOCABULARY[this.profile.class];
    const reading: Reading = {};
    const missing: string[] = [];
    for (const [field, spec] of Object.entries(this.profile.readings)) {
      const type = vocabulary.readings[field];
      if (type === undefined) continue; // rejected at load; never reached for a checked profile
      const result = evaluateReading(spec, snapshot, type);
      if ('value' in result) reading[field] = result.value;
      else if (vocabulary.requiredReadings.includes(field)) missing.push(`${field} (${result.problem})`);
    }
    if (missing.length > 0) throw new BadDataError(`${this.id}: ${this.describe()}: no usable ${missing.join(', ')}`);
    this.lastReading = reading;
    return reading;
  }

  /** The action and raw value that carry `value` for control `name`. */
  private encode(name: string, value: FieldValue): { action: string; raw: SourceValue } {
    const spec = this.profile.controls[name];
    if (!spec) throw new NotSupportedError(`${this.id}: profile ${this.profile.profile} has no control "${name}"`);
    if (spec.actions) {
      const action = Object.hasOwn(spec.actions, String(value)) ? spec.actions[String(value)] : undefined;
      if (action === undefined) throw this.refuse(`${name} ${String(value)}: the profile has no action for it`);
      return { action, raw: 0 };
    }
    const action = spec.action!;
    if (spec.map) {
      const mapped = Object.hasOwn(spec.map, String(value)) ? spec.map[String(value)] : undefined;
      if (mapped === undefined) throw this.refuse(`${name} ${String(value)}: the profile cannot encode it`);
      return { action, raw: mapped };
    }
    if (typeof value !== 'number') return { action, raw: value };
    const modbusAction = this.profile.modbus?.actions[action];
    const integer = modbusAction !== undefined && !isSequenceAction(modbusAction) && modbusAction.type === 'holding' && modbusAction.encoding !== 'float32';
    return { action, raw: integer ? roundRaw(value * spec.scale, spec.round) : value * spec.scale };
  }

  /** Writes control `name` (arming a device revert timer first, when the profile has one). */
  protected async control(name: string, value: FieldValue, options: { arm?: boolean } = {}): Promise<void> {
    const { action, raw } = this.encode(name, value);
    const revert = this.profile.revert;
    if ((options.arm ?? true) && revert.kind === 'device-timer' && revert.action !== undefined && revert.armMs !== undefined) {
      await this.transport.act(revert.action, Math.round(revert.armMs * revert.scale));
    }
    await this.transport.act(action, raw);
    this.log.debug({ device: this.id, control: name, value, action, raw }, 'control written');
  }
}

class ProfileMeter extends ProfileDeviceBase implements Meter {
  readonly deviceClass = 'meter';

  async read(): Promise<MeterReading> {
    // The reading's fields and types were checked against the class at load and at this read.
    return (await this.readFields()) as unknown as MeterReading;
  }
}

class ProfileEvCharger extends ProfileDeviceBase implements EvCharger {
  readonly deviceClass = 'ev-charger';
  readonly limits: EvChargerLimits;
  /** Whether charging is enabled, as last read or written (undefined: not known). */
  private enabled: boolean | undefined;

  constructor(options: ProfileDeviceOptions) {
    super(options);
    const range = options.profile.limits.currentA!; // required for ev-charger profiles (checkProfile)
    const s = options.settings?.evCharger ?? DEFAULT_EV_CHARGER_SETTINGS;
    const minCurrentA = Math.max(range.min, s.minCurrentA);
    const maxCurrentA = Math.min(range.max, s.maxCurrentA);
    if (minCurrentA > maxCurrentA) {
      throw new NotSupportedError(
        `${options.id}: the installer's current range ${s.minCurrentA}..${s.maxCurrentA} A does not overlap what ${options.profile.profile} accepts (${range.min}..${range.max} A)`,
      );
    }
    this.limits = { minCurrentA, maxCurrentA, phases: s.phases, voltageV: s.voltageV };
  }

  async read(): Promise<EvChargerReading> {
    const r = await this.readFields();
    if (typeof r['enabled'] === 'boolean') this.enabled = r['enabled'];
    return r as unknown as EvChargerReading;
  }

  async setCurrentA(currentA: number): Promise<void> {
    const { minCurrentA, maxCurrentA } = this.limits;
    if (!Number.isFinite(currentA) || currentA < minCurrentA || currentA > maxCurrentA) {
      throw this.refuse(`${currentA} A is outside ${minCurrentA}..${maxCurrentA} A`);
    }
    await this.control('currentA', currentA);
    if (this.enabled !== true) {
      await this.control('enabled', true, { arm: false });
      this.enabled = true;
    }
  }

  async pause(): Promise<void> {
    await this.control('enabled', false);
    this.enabled = false;
  }

  async restore(): Promise<void> {
    await this.control('currentA', this.limits.maxCurrentA, { arm: false });
    await this.control('enabled', true, { arm: false });
    this.enabled = true;
  }
}

/** An HVAC device; it has the SG Ready and/or the setpoint-offset capability as its profile's controls say. */
class ProfileHvac extends ProfileDeviceBase implements Hvac {
  readonly deviceClass = 'hvac';
  readonly ratedPowerW: number;
  readonly minSwitchIntervalMs?: number;
  readonly setSgReady?: (state: SgReadyState) => Promise<void>;
  readonly setpointOffsetRangeC?: SetpointHvac['setpointOffsetRangeC'];
  readonly comfortBandC?: SetpointHvac['comfortBandC'];
  readonly setSetpointOffsetC?: (offsetC: number) => Promise<void>;
  private readonly comfort: { minC: number; maxC: number };
  /** The SG Ready state flexgate last set, and when it changed it (clock ms). */
  private sgState: SgReadyState | undefined;
  private sgChangedAtMs: number | undefined;
  private offsetC: number | undefined;

  constructor(options: ProfileDeviceOptions) {
    super(options);
    const { profile } = options;
    const s = options.settings?.hvac ?? DEFAULT_HVAC_SETTINGS;
    this.ratedPowerW = options.settings?.hvac?.ratedPowerW ?? profile.limits.ratedPowerW ?? DEFAULT_HVAC_SETTINGS.ratedPowerW;
    this.comfort = { minC: s.comfortMinC, maxC: s.comfortMaxC };
    if (profile.controls['sgReady']) {
      this.minSwitchIntervalMs = Math.max(profile.limits.sgReadyMinSwitchMs ?? 0, s.minSwitchIntervalMs ?? 0);
      this.setSgReady = (state) => this.changeSgReady(state);
    }
    if (profile.controls['setpointOffsetC']) {
      const range = profile.limits.setpointOffsetC!; // required with the control (checkProfile)
      this.setpointOffsetRangeC = { minC: Math.max(range.min, -s.maxOffsetC), maxC: Math.min(range.max, s.maxOffsetC) };
      this.comfortBandC = { ...this.comfort };
      this.setSetpointOffsetC = (offsetC) => this.changeOffset(offsetC);
    }
  }

  async read(): Promise<HvacReading> {
    return (await this.readFields()) as unknown as HvacReading;
  }

  private indoorC(): number | undefined {
    const v = this.lastReading?.['indoorC'];
    return typeof v === 'number' ? v : undefined;
  }

  private async changeSgReady(state: SgReadyState): Promise<void> {
    if (!(SG_READY_STATES as readonly unknown[]).includes(state)) throw this.refuse(`${JSON.stringify(state)} is not an SG Ready state`);
    const current = this.sgState ?? (this.lastReading?.['sgReady'] as SgReadyState | undefined);
    if (current === state) {
      // No change: nothing to check. A device timer is re-armed by writing the state again.
      if (this.profile.revert.kind === 'device-timer') await this.control('sgReady', state);
      return;
    }
    const indoorC = this.indoorC();
    if (indoorC !== undefined && state === 'blocked' && indoorC <= this.comfort.minC) {
      throw this.refuse(`SG Ready blocked refused: the room is at ${indoorC} °C, at or below the comfort minimum ${this.comfort.minC} °C`);
    }
    if (indoorC !== undefined && (state === 'encouraged' || state === 'forced') && indoorC >= this.comfort.maxC) {
      throw this.refuse(`SG Ready ${state} refused: the room is at ${indoorC} °C, at or above the comfort maximum ${this.comfort.maxC} °C`);
    }
    const now = this.clock.now();
    const minMs = this.minSwitchIntervalMs ?? 0;
    if (this.sgChangedAtMs !== undefined && now - this.sgChangedAtMs < minMs) {
      throw this.refuse(
        `SG Ready ${state} refused: at least ${Math.round(minMs / 1000)} s between changes, the last was ${Math.round((now - this.sgChangedAtMs) / 1000)} s ago (to ${this.sgState ?? 'unknown'})`,
      );
    }
    try {
      await this.control('sgReady', state);
    } catch (err) {
      this.sgState = undefined; // a sequence may have stopped half-way
      throw err;
    }
    this.sgState = state;
    this.sgChangedAtMs = now;
  }

  private async changeOffset(offsetC: number): Promise<void> {
    const range = this.setpointOffsetRangeC!;
    if (!Number.isFinite(offsetC) || offsetC < range.minC || offsetC > range.maxC) {
      throw this.refuse(`setpoint offset ${offsetC} K is outside ${range.minC}..${range.maxC} K`);
    }
    const indoorC = this.indoorC();
    const lastRead = this.lastReading?.['setpointOffsetC'];
    const previous = this.offsetC ?? (typeof lastRead === 'number' ? lastRead : 0);
    if (indoorC !== undefined && offsetC < 0 && offsetC < previous && indoorC <= this.comfort.minC) {
      throw this.refuse(`setpoint offset ${offsetC} K refused: the room is at ${indoorC} °C, at or below the comfort minimum ${this.comfort.minC} °C`);
    }
    if (indoorC !== undefined && offsetC > 0 && offsetC > previous && indoorC >= this.comfort.maxC) {
      throw this.refuse(`setpoint offset ${offsetC} K refused: the room is at ${indoorC} °C, at or above the comfort maximum ${this.comfort.maxC} °C`);
    }
    await this.control('setpointOffsetC', offsetC);
    this.offsetC = offsetC;
  }

  async restore(): Promise<void> {
    // Back to normal is always allowed: it is what the limits protect.
    if (this.profile.controls['sgReady']) {
      const before = this.sgState ?? this.lastReading?.['sgReady'];
      this.sgState = undefined;
      await this.control('sgReady', 'normal', { arm: false });
      if (before !== 'normal') this.sgChangedAtMs = this.clock.now();
      this.sgState = 'normal';
    }
    if (this.profile.controls['setpointOffsetC']) {
      await this.control('setpointOffsetC', 0, { arm: false });
      this.offsetC = 0;
    }
  }
}

class ProfileLoad extends ProfileDeviceBase implements Load {
  readonly deviceClass = 'load';
  readonly ratedPowerW: number;
  readonly minOnMs: number;
  readonly minOffMs: number;
  /** The state flexgate last switched to, and when (clock ms). */
  private on: boolean | undefined;
  private switchedAtMs: number | undefined;

  constructor(options: ProfileDeviceOptions) {
    super(options);
    const s = options.settings?.load;
    const limits = options.profile.limits;
    this.ratedPowerW = s?.ratedPowerW ?? limits.ratedPowerW ?? 1000;
    this.minOnMs = Math.max(s?.minOnMs ?? DEFAULT_LOAD_MIN_MS, limits.minOnMs ?? 0);
    this.minOffMs = Math.max(s?.minOffMs ?? DEFAULT_LOAD_MIN_MS, limits.minOffMs ?? 0);
  }

  async read(): Promise<LoadReading> {
    return (await this.readFields()) as unknown as LoadReading;
  }

  async setOn(on: boolean): Promise<void> {
    if (typeof on !== 'boolean') throw this.refuse(`${JSON.stringify(on)} is not on/off`);
    const lastRead = this.lastReading?.['on'];
    const current = this.on ?? (typeof lastRead === 'boolean' ? lastRead : undefined);
    if (current === on) {
      if (this.profile.revert.kind === 'device-timer') await this.control('on', on);
      return;
    }
    const now = this.clock.now();
    if (this.switchedAtMs !== undefined && current !== undefined) {
      const minMs = current ? this.minOnMs : this.minOffMs;
      if (now - this.switchedAtMs < minMs) {
        throw this.refuse(`switching ${on ? 'on' : 'off'} refused: it stays ${current ? 'on' : 'off'} at least ${Math.round(minMs / 1000)} s, switched ${Math.round((now - this.switchedAtMs) / 1000)} s ago`);
      }
    }
    try {
      await this.control('on', on);
    } catch (err) {
      this.on = undefined;
      throw err;
    }
    this.on = on;
    this.switchedAtMs = now;
  }

  async restore(): Promise<void> {
    const lastRead = this.lastReading?.['on'];
    const before = this.on ?? (typeof lastRead === 'boolean' ? lastRead : undefined);
    this.on = undefined;
    await this.control('on', true, { arm: false });
    if (before !== true) this.switchedAtMs = this.clock.now();
    this.on = true;
  }
}

/**
 * The device of the profile's class, with exactly the capabilities its controls give. The profile
 * must have passed `checkProfile` (loadProfile and parseProfileText ensure it). Throws
 * NotSupportedError when the installer's settings cannot be met by the device (an EV current range
 * that does not overlap the charger's).
 */
export function createProfileDevice(options: ProfileDeviceOptions): Device {
  switch (options.profile.class) {
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
