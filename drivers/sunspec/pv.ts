/**
 * A SunSpec PV inverter as a `Pv` (drivers/classes.ts).
 *
 * Measurement: 101/102/103 (integer + scale factors), 111/112/113 (float) or 701 (DER).
 * Rating: 121 WMax, else 120 WRtg; or 702 WMax, else WMaxRtg.
 * Curtailment: 123 (WMaxLimPct, WMaxLimPct_RvrtTms, WMaxLim_Ena) or 704 (WMaxLimPct,
 * WMaxLimPctEnaRvrt, WMaxLimPctRvrtTms, WMaxLimPctEna): the percentage, the revert timer and the
 * enable in ONE FC16 transaction, which the device applies as a whole, so it never runs an enabled
 * limit with a stale value or without its timer. The points in between are kept as the device last
 * reported them (123: WMaxLimPct_WinTms and WMaxLimPct_RmpTms, registers 5..9; 704:
 * WMaxLimPctRvrt, registers 14..19, where the enable comes first). When one of them is not
 * implemented, the sequence goes out as before: the percentage (and 704 WMaxLimPctEnaRvrt), then
 * the revert timer, then the enable.
 */
import type { Pv, PvReading } from '../classes.js';
import { NotSupportedError } from '../errors.js';
import type { ReadPlan } from './read-plan.js';
import { optional, revertSeconds, type ModelValues, type PointWrite, type SunSpecSession, type UsedModel } from './session.js';

export const PV_MEASUREMENT_MODELS = [103, 102, 101, 113, 112, 111, 701] as const;
const ENABLED = 1;
const DISABLED = 0;

export class SunSpecPv implements Pv {
  readonly deviceClass = 'pv';
  readonly id: string;
  private readonly measurement: UsedModel;
  private readonly der: boolean;
  private readonly nameplate: UsedModel | undefined;
  private readonly settings: UsedModel | undefined;
  private readonly control: UsedModel | undefined;
  private readonly readPlan: ReadPlan;
  private warnedNoRevert = false;

  constructor(private readonly session: SunSpecSession) {
    this.id = session.id;
    this.measurement = session.require(PV_MEASUREMENT_MODELS, 'PV AC measurement');
    this.der = this.measurement.def.id === 701;
    this.nameplate = session.find(this.der ? [702] : [120]) ?? session.find(this.der ? [120] : [702]);
    this.settings = this.nameplate?.def.id === 120 ? session.find([121]) : undefined;
    this.control = session.find(this.der ? [704, 123] : [123, 704]);
    const energy = this.der ? 'TotWhInj' : 'WH';
    this.readPlan = session.plan([
      { ...this.measurement, points: ['W', energy] },
      ...(this.nameplate ? [{ ...this.nameplate, points: this.nameplate.def.id === 120 ? ['WRtg'] : ['WMax', 'WMaxRtg'] }] : []),
      ...(this.settings ? [{ ...this.settings, points: ['WMax'] }] : []),
      ...(this.control ? [{ ...this.control, points: this.controlPoints(this.control) }] : []),
    ]);
  }

  private controlPoints(control: UsedModel): string[] {
    return control.def.id === 123
      ? ['WMaxLimPct', 'WMaxLimPct_RvrtTms', 'WMaxLim_Ena']
      : ['WMaxLimPctEna', 'WMaxLimPct', 'WMaxLimPctEnaRvrt', 'WMaxLimPctRvrtTms'];
  }

  describe(): string {
    return this.session.describe();
  }

  async read(): Promise<PvReading> {
    const values = await this.session.poll(this.readPlan);
    const m = values.get(this.measurement.def.id)!;
    const watts = this.session.required(m, this.measurement, 'W');
    // A PV inverter's powerW is its output (≥ 0); a few watts of night-time consumption read as 0.
    const reading: PvReading = { powerW: Math.max(0, watts) };
    const energyWh = optional(m, this.der ? 'TotWhInj' : 'WH');
    if (energyWh !== undefined) reading.energyWh = energyWh;
    const ratedPowerW = this.ratedPowerW(values);
    if (ratedPowerW !== undefined) reading.ratedPowerW = ratedPowerW;
    if (this.control) {
      const c = values.get(this.control.def.id);
      const enabled = optional(c, this.control.def.id === 123 ? 'WMaxLim_Ena' : 'WMaxLimPctEna') === ENABLED;
      const pct = optional(c, 'WMaxLimPct');
      if (enabled && pct !== undefined) reading.limitPct = pct;
    }
    return reading;
  }

  private ratedPowerW(values: Map<number, ModelValues>): number | undefined {
    if (this.settings) {
      const wmax = optional(values.get(121), 'WMax');
      if (wmax !== undefined) return wmax;
    }
    if (!this.nameplate) return undefined;
    const n = values.get(this.nameplate.def.id);
    return this.nameplate.def.id === 120 ? optional(n, 'WRtg') : (optional(n, 'WMax') ?? optional(n, 'WMaxRtg'));
  }

  private requireControl(): UsedModel {
    if (!this.control) {
      throw new NotSupportedError(`${this.id}: the inverter has no SunSpec curtailment model (123 or 704); it cannot be limited`);
    }
    return this.control;
  }

  async setLimitPct(limitPct: number, revertAfterMs: number): Promise<void> {
    if (!Number.isFinite(limitPct) || limitPct < 0 || limitPct > 100) {
      throw new RangeError(`${this.id}: limitPct must be within 0..100, got ${limitPct}`);
    }
    const control = this.requireControl();
    const is123 = control.def.id === 123;
    const revertS = revertSeconds(revertAfterMs, is123 ? 0xfffe : 0xffff_fffe);
    const current = await this.session.current(control, this.controlPoints(control));
    const revertPoint = is123 ? 'WMaxLimPct_RvrtTms' : 'WMaxLimPctRvrtTms';
    const hasRevert = current[revertPoint] !== undefined;
    if (!hasRevert && !this.warnedNoRevert) {
      this.warnedNoRevert = true;
      this.session.log.warn({ model: control.def.id, point: revertPoint }, 'inverter has no revert timer: a limit stays until cleared');
    }
    const value: PointWrite[] = [['WMaxLimPct', limitPct]];
    // After the timer runs out the limit reverts to disabled.
    if (!is123 && current['WMaxLimPctEnaRvrt'] !== undefined) value.push(['WMaxLimPctEnaRvrt', DISABLED]);
    if (hasRevert) value.push([revertPoint, revertS]);
    // One transaction when the points in between can be kept as read, else value and timer, then enable.
    await this.session.writeSteps(control, [value, [[is123 ? 'WMaxLim_Ena' : 'WMaxLimPctEna', ENABLED]]], current);
  }

  async clearLimit(): Promise<void> {
    const control = this.requireControl();
    await this.session.write(control, [[control.def.id === 123 ? 'WMaxLim_Ena' : 'WMaxLimPctEna', DISABLED]], {});
  }
}
