import type { Clock } from '../../drivers/clock.js';
import { smoothNoise } from '../rng.js';
import { SunSpecDevice } from '../sunspec/encoder.js';
import { RevertTimer, type Stepper } from '../ticker.js';
import { DISABLED, ENABLED, num, rangeValidator, setCommonModel, touches, type Nameplate } from './common.js';

export interface SolarCurve {
  /** Local hour of day when output starts. Default 6. */
  sunriseHour?: number;
  /** Local hour of day when output ends. Default 20. */
  sunsetHour?: number;
  /** Local time = UTC + this many hours. Default 0. */
  utcOffsetHours?: number;
}

export interface PvInverterOptions extends SolarCurve, Nameplate {
  clock: Clock;
  /** 'inverter': models 1 + 103 + 120 + 123; 'der': models 1 + 701 + 702 + 704. Default 'inverter'. */
  variant?: 'inverter' | 'der';
  /** Peak AC power of the clear-sky curve and nameplate rating. Default 8000. */
  ratedPowerW?: number;
  /** Seed of the cloud noise. Default 1. */
  seed?: number;
  /** 0 = clear sky; 1 = clouds may take all output. Default 0.3. */
  cloudiness?: number;
  /** Register address of "SunS". Default 40000. */
  baseAddress?: number;
  /** Lifetime energy at start. Default 0. */
  initialEnergyWh?: number;
}

/** Clear-sky fraction of peak output at `timeMs`: a sine-shaped day from sunrise to sunset, 0 at night. */
export function clearSkyFraction(timeMs: number, curve: SolarCurve = {}): number {
  const sunrise = curve.sunriseHour ?? 6;
  const sunset = curve.sunsetHour ?? 20;
  const hour = (((timeMs / 3_600_000 + (curve.utcOffsetHours ?? 0)) % 24) + 24) % 24;
  if (hour <= sunrise || hour >= sunset) return 0;
  return Math.sin((Math.PI * (hour - sunrise)) / (sunset - sunrise)) ** 1.5;
}

/** Fraction of clear-sky output the clouds let through: deterministic for (seed, time), moves over 10-minute slots. */
export function cloudFactor(timeMs: number, seed: number, cloudiness: number): number {
  if (cloudiness <= 0) return 1;
  return 1 - cloudiness * smoothNoise(seed, timeMs, 600_000) ** 2;
}

const AC_VOLTAGE_V = 230;
const FREQUENCY_HZ = 50;

/**
 * A PV inverter with a clear-sky curve, seeded clouds, curtailment by WMaxLimPct (model 123
 * WMaxLim_Ena / 704 WMaxLimPctEna) and the revert timer: when WMaxLimPct_RvrtTms (704:
 * WMaxLimPctRvrtTms) seconds pass without a new write of the limit, the limit is disabled (704: the
 * *Rvrt values are restored). Limits above 100 % are refused with exception 3.
 */
export class PvInverter implements Stepper {
  readonly sunspec: SunSpecDevice;
  readonly variant: 'inverter' | 'der';
  readonly ratedPowerW: number;
  /** AC output now (what the registers show after the latest step). */
  acPowerW = 0;
  /** What the panels could give now without a limit. */
  availablePowerW = 0;
  /** Lifetime AC energy. */
  energyWh: number;
  private readonly clock: Clock;
  private readonly seed: number;
  private readonly cloudiness: number;
  private readonly curve: SolarCurve;
  private readonly revert: RevertTimer;

  constructor(options: PvInverterOptions) {
    this.clock = options.clock;
    this.variant = options.variant ?? 'inverter';
    this.ratedPowerW = options.ratedPowerW ?? 8000;
    this.seed = options.seed ?? 1;
    this.cloudiness = options.cloudiness ?? 0.3;
    this.curve = options;
    this.energyWh = options.initialEnergyWh ?? 0;
    this.revert = new RevertTimer(this.clock);
    const models = this.variant === 'inverter' ? [1, 103, 120, 123] : [1, 701, 702, 704];
    this.sunspec = new SunSpecDevice(models, { baseAddress: options.baseAddress ?? 40000 });
    setCommonModel(this.sunspec, {
      manufacturer: options.manufacturer ?? 'flexgate-sim',
      model: options.model ?? (this.variant === 'inverter' ? 'PV-8K-3P' : 'PV-8K-DER'),
      version: options.version ?? '1.0.0',
      serialNumber: options.serialNumber ?? 'PV0001',
    });
    if (this.variant === 'inverter') this.initInverterModels();
    else this.initDerModels();
    this.sunspec.onWrite((changes) => {
      const model = this.variant === 'inverter' ? 123 : 704;
      const names =
        this.variant === 'inverter'
          ? ['WMaxLimPct', 'WMaxLim_Ena', 'WMaxLimPct_RvrtTms']
          : ['WMaxLimPct', 'WMaxLimPctEna', 'WMaxLimPctRvrtTms'];
      if (touches(changes, model, names)) this.onLimitWritten();
    });
    this.step(this.clock.now(), 0);
  }

  /** The active limit in % of rated power, or undefined when no limit is enabled. */
  get limitPct(): number | undefined {
    const d = this.sunspec;
    const enabled = this.variant === 'inverter' ? d.get(123, 'WMaxLim_Ena') : d.get(704, 'WMaxLimPctEna');
    if (enabled !== ENABLED) return undefined;
    return num(d.get(this.variant === 'inverter' ? 123 : 704, 'WMaxLimPct'), 100);
  }

  /** Clock ms left on the curtailment revert timer (0 when not running). */
  get revertRemainingMs(): number {
    return this.revert.remainingMs();
  }

  private initInverterModels(): void {
    const d = this.sunspec;
    d.setScaleFactors(103, { A_SF: -2, V_SF: -1, W_SF: 0, Hz_SF: -2, VA_SF: 0, VAr_SF: 0, PF_SF: -2, WH_SF: 0, Tmp_SF: -1 });
    d.set(103, 'TmpCab', 35);
    d.set(103, 'Evt1', 0);
    d.set(103, 'Evt2', 0);
    d.setScaleFactors(120, { WRtg_SF: 0, VARtg_SF: 0, VArRtg_SF: 0, ARtg_SF: -1, PFRtg_SF: -2 });
    d.set(120, 'DERTyp', 4); // PV
    d.set(120, 'WRtg', this.ratedPowerW);
    d.set(120, 'VARtg', this.ratedPowerW);
    d.set(120, 'VArRtgQ1', this.ratedPowerW / 2);
    d.set(120, 'VArRtgQ2', this.ratedPowerW / 2);
    d.set(120, 'VArRtgQ3', -this.ratedPowerW / 2);
    d.set(120, 'VArRtgQ4', -this.ratedPowerW / 2);
    d.set(120, 'ARtg', Math.round((this.ratedPowerW / 3 / AC_VOLTAGE_V) * 10) / 10);
    d.set(120, 'PFRtgQ1', 0.8);
    d.set(120, 'PFRtgQ2', 0.8);
    d.set(120, 'PFRtgQ3', -0.8);
    d.set(120, 'PFRtgQ4', -0.8);
    d.setScaleFactors(123, { WMaxLimPct_SF: -1, OutPFSet_SF: -3, VArPct_SF: 0 });
    d.set(123, 'Conn', 1);
    d.set(123, 'Conn_WinTms', 0);
    d.set(123, 'Conn_RvrtTms', 0);
    d.set(123, 'WMaxLimPct', 100);
    d.set(123, 'WMaxLimPct_WinTms', 0);
    d.set(123, 'WMaxLimPct_RvrtTms', 0);
    d.set(123, 'WMaxLimPct_RmpTms', 0);
    d.set(123, 'WMaxLim_Ena', DISABLED);
    d.set(123, 'OutPFSet', 1);
    d.set(123, 'OutPFSet_Ena', DISABLED);
    d.set(123, 'VArPct_Ena', DISABLED);
    d.addValidator(rangeValidator(123, { WMaxLimPct: [0, 100], WMaxLim_Ena: [0, 1], Conn: [0, 1] }));
  }

  private initDerModels(): void {
    const d = this.sunspec;
    d.setScaleFactors(701, { A_SF: -2, V_SF: -1, Hz_SF: -2, W_SF: 0, PF_SF: -2, VA_SF: 0, Var_SF: 0, TotWh_SF: 0, TotVarh_SF: 0, Tmp_SF: -1 });
    d.set(701, 'ACType', 2); // three phase
    d.set(701, 'St', 1);
    d.set(701, 'ConnSt', 1);
    d.set(701, 'Alrm', 0);
    d.setScaleFactors(702, { W_SF: 0, PF_SF: -2, VA_SF: 0, Var_SF: 0, V_SF: -1, A_SF: -1, S_SF: 0 });
    d.set(702, 'WMaxRtg', this.ratedPowerW);
    d.set(702, 'VAMaxRtg', this.ratedPowerW);
    d.set(702, 'VNomRtg', AC_VOLTAGE_V);
    d.set(702, 'WMax', this.ratedPowerW);
    d.set(702, 'VAMax', this.ratedPowerW);
    d.set(702, 'VNom', AC_VOLTAGE_V);
    d.setScaleFactors(704, { PF_SF: -2, WMaxLimPct_SF: -1, WSet_SF: 0, WSetPct_SF: -1, VarSet_SF: 0, VarSetPct_SF: -1 });
    d.set(704, 'WMaxLimPctEna', DISABLED);
    d.set(704, 'WMaxLimPct', 100);
    d.set(704, 'WMaxLimPctRvrt', 100);
    d.set(704, 'WMaxLimPctEnaRvrt', DISABLED);
    d.set(704, 'WMaxLimPctRvrtTms', 0);
    d.set(704, 'WMaxLimPctRvrtRem', 0);
    d.set(704, 'WSetEna', DISABLED);
    d.addValidator(
      rangeValidator(704, { WMaxLimPct: [0, 100], WMaxLimPctRvrt: [0, 100], WMaxLimPctEna: [0, 1], WMaxLimPctEnaRvrt: [0, 1] }),
    );
  }

  private onLimitWritten(): void {
    const d = this.sunspec;
    const enabled = this.limitPct !== undefined;
    const revertS =
      this.variant === 'inverter' ? num(d.get(123, 'WMaxLimPct_RvrtTms'), 0) : num(d.get(704, 'WMaxLimPctRvrtTms'), 0);
    if (enabled && revertS > 0) {
      this.revert.arm(revertS * 1000, () => {
        if (this.variant === 'inverter') {
          d.set(123, 'WMaxLim_Ena', DISABLED);
        } else {
          d.set(704, 'WMaxLimPct', num(d.get(704, 'WMaxLimPctRvrt'), 100));
          d.set(704, 'WMaxLimPctEna', num(d.get(704, 'WMaxLimPctEnaRvrt'), DISABLED));
        }
        this.refresh();
      });
    } else if (!enabled) {
      this.revert.cancel();
    }
    this.refresh();
  }

  /** Recomputes output for the current time and controls without integrating energy. */
  refresh(): void {
    this.step(this.clock.now(), 0);
  }

  step(nowMs: number, dtMs: number): void {
    // Energy over the past interval at the power held during it.
    this.energyWh += (this.acPowerW * dtMs) / 3_600_000;
    this.availablePowerW = this.ratedPowerW * clearSkyFraction(nowMs, this.curve) * cloudFactor(nowMs, this.seed, this.cloudiness);
    const limitPct = this.limitPct;
    const capW = limitPct === undefined ? this.ratedPowerW : (this.ratedPowerW * limitPct) / 100;
    this.acPowerW = Math.round(Math.min(this.availablePowerW, capW));
    this.publish(limitPct !== undefined && this.availablePowerW > capW);
  }

  private publish(throttled: boolean): void {
    const d = this.sunspec;
    const w = this.acPowerW;
    const phaseA = w / 3 / AC_VOLTAGE_V;
    const producing = w > 0;
    if (this.variant === 'inverter') {
      d.set(103, 'W', w);
      d.set(103, 'VA', w);
      d.set(103, 'VAr', 0);
      d.set(103, 'PF', producing ? 1 : undefined);
      d.set(103, 'A', phaseA * 3);
      for (const ph of ['AphA', 'AphB', 'AphC']) d.set(103, ph, phaseA);
      for (const ph of ['PhVphA', 'PhVphB', 'PhVphC']) d.set(103, ph, AC_VOLTAGE_V);
      for (const ph of ['PPVphAB', 'PPVphBC', 'PPVphCA']) d.set(103, ph, 400);
      d.set(103, 'Hz', FREQUENCY_HZ);
      d.set(103, 'WH', Math.floor(this.energyWh));
      d.set(103, 'St', !producing ? 2 : throttled ? 5 : 4); // SLEEPING / THROTTLED / MPPT
    } else {
      d.set(701, 'W', w);
      d.set(701, 'VA', w);
      d.set(701, 'Var', 0);
      d.set(701, 'A', phaseA * 3);
      d.set(701, 'LLV', 400);
      d.set(701, 'LNV', AC_VOLTAGE_V);
      d.set(701, 'Hz', FREQUENCY_HZ);
      d.set(701, 'TotWhInj', Math.floor(this.energyWh));
      d.set(701, 'TotWhAbs', 0);
      d.set(701, 'InvSt', !producing ? 1 : throttled ? 4 : 3); // SLEEPING / THROTTLED / RUNNING
      d.set(701, 'ThrotPct', throttled ? Math.round((100 * w) / Math.max(1, this.availablePowerW)) : 100);
      d.set(704, 'WMaxLimPctRvrtRem', Math.ceil(this.revert.remainingMs() / 1000));
    }
  }

  /** Cancels the revert timer (the ticker is owned by whoever steps this device). */
  stop(): void {
    this.revert.cancel();
  }
}
