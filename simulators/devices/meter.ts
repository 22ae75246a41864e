import type { Clock } from '../../drivers/clock.js';
import { hashNoise, smoothNoise } from '../rng.js';
import { SunSpecDevice } from '../sunspec/encoder.js';
import type { Stepper } from '../ticker.js';
import { setCommonModel, type Nameplate } from './common.js';

export interface SiteMeterOptions extends Nameplate {
  clock: Clock;
  /**
   * 'wye': models 1 + 203 (W positive = import, as 20x meters count); 'der': models 1 + 701, whose W
   * follows the DER convention of its definition (positive = injection/export, negative = absorption/
   * import; TotWhAbs = imported, TotWhInj = exported). Default 'wye'.
   */
  variant?: 'wye' | 'der';
  /** Household base load: fixed W, or a function of clock time. Default: householdLoadW with `seed`. */
  baseLoadW?: number | ((timeMs: number) => number);
  seed?: number;
  /** Local time = UTC + this many hours (for the daily profile). Default 0. */
  utcOffsetHours?: number;
  /** PV inverter behind the meter (its AC output is subtracted). */
  pv?: { readonly acPowerW: number };
  /** Battery behind the meter (its powerW, positive = charging, is added). */
  battery?: { readonly powerW: number };
  initialImportWh?: number;
  initialExportWh?: number;
  baseAddress?: number;
}

/**
 * A household's daily load profile in W: ~250 W base, a morning bump around 07:30, a midday bump and
 * an evening peak around 19:00, with seeded noise (deterministic for (seed, time)).
 */
export function householdLoadW(timeMs: number, seed = 1, utcOffsetHours = 0): number {
  const hour = (((timeMs / 3_600_000 + utcOffsetHours) % 24) + 24) % 24;
  const bump = (centre: number, width: number, heightW: number) => heightW * Math.exp(-(((hour - centre) / width) ** 2));
  const profileW = 250 + bump(7.5, 1, 700) + bump(12.5, 1.5, 400) + bump(19, 2, 1400);
  // Slow wander (±15 %) plus appliance spikes switching on for a minute now and then.
  const wander = 1 + 0.3 * (smoothNoise(seed, timeMs, 900_000) - 0.5);
  const spikeW = hashNoise(seed ^ 0x5bd1e995, Math.floor(timeMs / 60_000)) > 0.93 ? 1800 : 0;
  return Math.round(profileW * wander + spikeW);
}

const AC_VOLTAGE_V = 230;

/**
 * The site (grid connection) meter: powerW = base load + battery power − PV power + added loads,
 * positive = import. On the bus, 203 `W` is powerW (20x meters count import positive) and 701 `W` is
 * −powerW (model 701: positive for generation, i.e. export). Import and export Wh counters integrate
 * the power held over each tick.
 */
export class SiteMeter implements Stepper {
  readonly sunspec: SunSpecDevice;
  readonly variant: 'wye' | 'der';
  /** Grid power after the latest step, positive = import. */
  powerW = 0;
  /** Base (household) load after the latest step. */
  baseLoadW = 0;
  importWh: number;
  exportWh: number;
  private readonly options: SiteMeterOptions;
  private readonly extraLoads = new Set<() => number>();

  constructor(options: SiteMeterOptions) {
    this.options = options;
    this.variant = options.variant ?? 'wye';
    this.importWh = options.initialImportWh ?? 0;
    this.exportWh = options.initialExportWh ?? 0;
    this.sunspec = new SunSpecDevice(this.variant === 'wye' ? [1, 203] : [1, 701], { baseAddress: options.baseAddress ?? 40000 });
    setCommonModel(this.sunspec, {
      manufacturer: options.manufacturer ?? 'flexgate-sim',
      model: options.model ?? (this.variant === 'wye' ? 'METER-3P' : 'METER-DER'),
      version: options.version ?? '1.0.0',
      serialNumber: options.serialNumber ?? 'MTR0001',
    });
    const d = this.sunspec;
    if (this.variant === 'wye') {
      d.setScaleFactors(203, { A_SF: -2, V_SF: -1, Hz_SF: -2, W_SF: 0, VA_SF: 0, VAR_SF: 0, PF_SF: -2, TotWh_SF: 0 });
      d.set(203, 'Evt', 0);
    } else {
      d.setScaleFactors(701, { A_SF: -2, V_SF: -1, Hz_SF: -2, W_SF: 0, PF_SF: -2, VA_SF: 0, Var_SF: 0, TotWh_SF: 0, TotVarh_SF: 0, Tmp_SF: -1 });
      d.set(701, 'ACType', 2);
      d.set(701, 'St', 1);
      d.set(701, 'ConnSt', 1);
    }
    this.step(options.clock.now(), 0);
  }

  /** Adds a load (W, ≥ 0 consumes) seen by the meter from the next step; returns its removal. */
  addLoad(source: () => number): () => void {
    this.extraLoads.add(source);
    return () => this.extraLoads.delete(source);
  }

  /** Base load plus added loads now, without PV and battery (W). */
  loadW(timeMs: number): number {
    return this.baseLoadAt(timeMs) + [...this.extraLoads].reduce((sum, f) => sum + f(), 0);
  }

  private baseLoadAt(timeMs: number): number {
    const base = this.options.baseLoadW;
    if (typeof base === 'number') return base;
    if (typeof base === 'function') return base(timeMs);
    return householdLoadW(timeMs, this.options.seed ?? 1, this.options.utcOffsetHours ?? 0);
  }

  step(nowMs: number, dtMs: number): void {
    const energyWh = (this.powerW * dtMs) / 3_600_000;
    if (energyWh > 0) this.importWh += energyWh;
    else this.exportWh -= energyWh;
    this.baseLoadW = this.baseLoadAt(nowMs);
    const extraW = [...this.extraLoads].reduce((sum, f) => sum + f(), 0);
    this.powerW = Math.round(this.baseLoadW + extraW + (this.options.battery?.powerW ?? 0) - (this.options.pv?.acPowerW ?? 0));
    this.publish();
  }

  private publish(): void {
    const d = this.sunspec;
    const w = this.powerW;
    const phaseW = w / 3;
    const phaseA = Math.abs(phaseW) / AC_VOLTAGE_V;
    if (this.variant === 'wye') {
      d.set(203, 'W', w);
      for (const ph of ['WphA', 'WphB', 'WphC']) d.set(203, ph, phaseW);
      d.set(203, 'A', phaseA * 3);
      for (const ph of ['AphA', 'AphB', 'AphC']) d.set(203, ph, phaseA);
      d.set(203, 'PhV', AC_VOLTAGE_V);
      for (const ph of ['PhVphA', 'PhVphB', 'PhVphC']) d.set(203, ph, AC_VOLTAGE_V);
      d.set(203, 'PPV', 400);
      for (const ph of ['PhVphAB', 'PhVphBC', 'PhVphCA']) d.set(203, ph, 400);
      d.set(203, 'Hz', 50);
      d.set(203, 'TotWhImp', Math.floor(this.importWh));
      d.set(203, 'TotWhExp', Math.floor(this.exportWh));
    } else {
      // 701 counts W positive for injection into the grid: an importing site reads negative.
      d.set(701, 'W', 0 - w);
      d.set(701, 'A', phaseA * 3);
      d.set(701, 'LNV', AC_VOLTAGE_V);
      d.set(701, 'LLV', 400);
      d.set(701, 'Hz', 50);
      d.set(701, 'TotWhAbs', Math.floor(this.importWh));
      d.set(701, 'TotWhInj', Math.floor(this.exportWh));
    }
  }
}
