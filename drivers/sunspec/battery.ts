/**
 * A SunSpec storage system as a `Battery` (drivers/classes.ts). powerW is positive while charging.
 *
 * DER style (802 and/or 713 for the battery, 701 for AC power, 704 for control, 702 for ratings):
 *   socPct = 802 SoC, else 713 SoC; capacityWh = 802 WHRtg, else 713 WHRtg;
 *   powerW = -(701 W) (DER power is positive for generation = discharge);
 *   maxChargeW = 702 WChaRteMax, else WChaRteMaxRtg, else 802 WChaRteMax (same for discharge);
 *   setPowerW: 704 WSetMod = WATTS, WSet = -powerW, WSetEnaRvrt = DISABLED, WSetRvrtTms and
 *   WSetEna = ENABLED in ONE FC16 transaction (registers 22..32, applied by the device as a whole;
 *   WSetRvrt, WSetPct and WSetPctRvrt in between kept as last read). When one of those is not
 *   implemented: WSetMod + WSet, then WSetEnaRvrt + WSetRvrtTms, then WSetEna — the enable never
 *   before the value and the timer. clearSetpoint: WSetEna = DISABLED.
 * Basic storage (124 with the 10x/11x inverter model, or 701, for AC power, 120 for ratings):
 *   socPct = ChaState; capacityWh = 120 WHRtg, else 120 AhrRtg × nominalVoltageV (when configured);
 *   powerW = -(inverter W); maxChargeW = WChaMax; maxDischargeW = 120 MaxDisChaRte;
 *   setPowerW holds a window of one value: charging P → InWRte = P/WChaMax %, OutWRte = -that %;
 *   discharging → OutWRte = P/WChaMax %, InWRte = -that %; with InOutWRte_RvrtTms in the same FC16
 *   transaction (OutWRte, InWRte, InOutWRte_WinTms kept as last read, InOutWRte_RvrtTms: registers
 *   12..15; when WinTms is not implemented, the rates and then the timer); then StorCtl_Mod =
 *   CHARGE|DISCHARGE (3), left out when the last values read or written show 3 (a device that changed
 *   it since is put right by the next setpoint after the next poll). clearSetpoint: StorCtl_Mod = 0
 *   (no limits).
 */
import type { Battery, BatteryReading } from '../classes.js';
import { BadDataError, NotSupportedError } from '../errors.js';
import type { ModelNeed, ReadPlan } from './read-plan.js';
import { optional, revertSeconds, type ModelValues, type PointWrite, type SunSpecSession, type UsedModel } from './session.js';

const ENABLED = 1;
const DISABLED = 0;
const WSET_MODE_WATTS = 1;
/** StorCtl_Mod bits: 0 = CHARGE (charge limit InWRte active), 1 = DISCHARGE (OutWRte active). */
const STORCTL_CHARGE_AND_DISCHARGE = 0b11;

export const AC_POWER_MODELS_124 = [103, 102, 101, 113, 112, 111, 701] as const;

export interface BatteryOptions {
  /** Nominal battery voltage, to turn an Ah rating (120 AhrRtg) into Wh when no Wh rating exists. */
  nominalVoltageV?: number;
}

export class SunSpecBattery implements Battery {
  readonly deviceClass = 'battery';
  readonly id: string;
  private readonly style: 'der' | 'basic';
  private readonly ac: UsedModel;
  private readonly battery802: UsedModel | undefined;
  private readonly storage713: UsedModel | undefined;
  private readonly capacity702: UsedModel | undefined;
  private readonly control704: UsedModel | undefined;
  private readonly storage124: UsedModel | undefined;
  private readonly nameplate120: UsedModel | undefined;
  private readonly readPlan: ReadPlan;
  private warnedNoRevert = false;

  constructor(
    private readonly session: SunSpecSession,
    private readonly options: BatteryOptions = {},
  ) {
    this.id = session.id;
    this.battery802 = session.find([802]);
    this.storage713 = session.find([713]);
    this.control704 = session.find([704]);
    this.storage124 = session.find([124]);
    const derBattery = this.battery802 ?? this.storage713;
    if (derBattery && (this.control704 || !this.storage124)) {
      this.style = 'der';
      this.ac = session.require([701], 'battery AC power');
      this.capacity702 = session.find([702]);
    } else if (this.storage124) {
      this.style = 'basic';
      this.ac = session.require(AC_POWER_MODELS_124, 'battery AC power');
      this.nameplate120 = session.find([120]);
    } else {
      throw new NotSupportedError(
        `${this.id} (${session.unit.label}): no SunSpec storage model (124, 802 or 713); the device has ${session.discovery.models.map((m) => m.id).join(', ')}`,
      );
    }
    const needs: ModelNeed[] = [{ ...this.ac, points: ['W'] }];
    if (this.style === 'der') {
      if (this.battery802) needs.push({ ...this.battery802, points: ['SoC', 'WHRtg', 'WChaRteMax', 'WDisChaRteMax'] });
      if (this.storage713) needs.push({ ...this.storage713, points: ['SoC', 'WHRtg'] });
      if (this.capacity702) needs.push({ ...this.capacity702, points: ['WChaRteMax', 'WDisChaRteMax', 'WChaRteMaxRtg', 'WDisChaRteMaxRtg'] });
      if (this.control704) needs.push({ ...this.control704, points: this.derControlPoints() });
    } else {
      needs.push({ ...this.storage124!, points: this.basicControlPoints() });
      if (this.nameplate120) needs.push({ ...this.nameplate120, points: ['WHRtg', 'AhrRtg', 'MaxDisChaRte'] });
    }
    this.readPlan = session.plan(needs);
  }

  private derControlPoints(): string[] {
    return ['WSetEna', 'WSetMod', 'WSet', 'WSetEnaRvrt', 'WSetRvrtTms'];
  }

  private basicControlPoints(): string[] {
    return ['WChaMax', 'StorCtl_Mod', 'ChaState', 'OutWRte', 'InWRte', 'InOutWRte_RvrtTms'];
  }

  describe(): string {
    return this.session.describe();
  }

  async read(): Promise<BatteryReading> {
    const values = await this.session.poll(this.readPlan);
    const acW = this.session.required(values.get(this.ac.def.id)!, this.ac, 'W');
    return this.style === 'der' ? this.readDer(values, 0 - acW) : this.readBasic(values, 0 - acW);
  }

  private readDer(values: Map<number, ModelValues>, powerW: number): BatteryReading {
    const b802 = values.get(802);
    const s713 = values.get(713);
    const c702 = values.get(702);
    const socPct =
      optional(b802, 'SoC') ??
      optional(s713, 'SoC') ??
      (this.battery802 ? this.session.required(b802!, this.battery802, 'SoC') : this.session.required(s713!, this.storage713!, 'SoC'));
    const reading: BatteryReading = { powerW, socPct };
    const capacityWh = optional(b802, 'WHRtg') ?? optional(s713, 'WHRtg');
    const maxChargeW = optional(c702, 'WChaRteMax') ?? optional(c702, 'WChaRteMaxRtg') ?? optional(b802, 'WChaRteMax');
    const maxDischargeW = optional(c702, 'WDisChaRteMax') ?? optional(c702, 'WDisChaRteMaxRtg') ?? optional(b802, 'WDisChaRteMax');
    if (capacityWh !== undefined) reading.capacityWh = capacityWh;
    if (maxChargeW !== undefined) reading.maxChargeW = maxChargeW;
    if (maxDischargeW !== undefined) reading.maxDischargeW = maxDischargeW;
    const c = values.get(704);
    const wset = optional(c, 'WSet');
    if (optional(c, 'WSetEna') === ENABLED && (optional(c, 'WSetMod') ?? WSET_MODE_WATTS) === WSET_MODE_WATTS && wset !== undefined) {
      reading.setpointW = 0 - wset;
    }
    return reading;
  }

  private readBasic(values: Map<number, ModelValues>, powerW: number): BatteryReading {
    const s = values.get(124)!;
    const n = values.get(120);
    const reading: BatteryReading = { powerW, socPct: this.session.required(s, this.storage124!, 'ChaState') };
    const ah = optional(n, 'AhrRtg');
    const capacityWh = optional(n, 'WHRtg') ?? (ah !== undefined && this.options.nominalVoltageV !== undefined ? ah * this.options.nominalVoltageV : undefined);
    const maxChargeW = optional(s, 'WChaMax');
    const maxDischargeW = optional(n, 'MaxDisChaRte');
    if (capacityWh !== undefined) reading.capacityWh = capacityWh;
    if (maxChargeW !== undefined) reading.maxChargeW = maxChargeW;
    if (maxDischargeW !== undefined) reading.maxDischargeW = maxDischargeW;
    const mode = optional(s, 'StorCtl_Mod');
    const inPct = optional(s, 'InWRte');
    const outPct = optional(s, 'OutWRte');
    if (mode === STORCTL_CHARGE_AND_DISCHARGE && inPct !== undefined && outPct !== undefined && maxChargeW !== undefined && inPct === 0 - outPct) {
      reading.setpointW = (inPct / 100) * maxChargeW;
    }
    return reading;
  }

  async setPowerW(powerW: number, revertAfterMs: number): Promise<void> {
    if (!Number.isFinite(powerW)) throw new RangeError(`${this.id}: powerW must be a finite number, got ${powerW}`);
    if (this.style === 'der') await this.setDer(powerW, revertAfterMs);
    else await this.setBasic(powerW, revertAfterMs);
  }

  private async setDer(powerW: number, revertAfterMs: number): Promise<void> {
    const control = this.control704;
    if (!control) throw new NotSupportedError(`${this.id}: the battery has no SunSpec DER control model (704); it cannot be given a setpoint`);
    const revertS = revertSeconds(revertAfterMs, 0xffff_fffe);
    const current = await this.session.current(control, this.derControlPoints());
    const limit = await this.derLimitW(powerW >= 0 ? 'charge' : 'discharge');
    const clamped = limit === undefined ? powerW : Math.max(-limit, Math.min(limit, powerW));
    if (clamped !== powerW) this.session.log.debug({ powerW, clampedW: clamped }, 'setpoint clamped to the battery limit');
    const value: PointWrite[] = [];
    if (current['WSetMod'] !== undefined) value.push(['WSetMod', WSET_MODE_WATTS]);
    value.push(['WSet', 0 - clamped]);
    const revert: PointWrite[] = [];
    if (current['WSetEnaRvrt'] !== undefined) revert.push(['WSetEnaRvrt', DISABLED]);
    if (current['WSetRvrtTms'] !== undefined) revert.push(['WSetRvrtTms', revertS]);
    else this.warnNoRevert(704, 'WSetRvrtTms');
    // One transaction when the points in between can be kept as read, else value, timer, enable.
    const steps = revert.length ? [value, revert] : [value];
    await this.session.writeSteps(control, [...steps, [['WSetEna', ENABLED]]], current);
  }

  private async derLimitW(direction: 'charge' | 'discharge'): Promise<number | undefined> {
    const names = direction === 'charge' ? ['WChaRteMax', 'WChaRteMaxRtg'] : ['WDisChaRteMax', 'WDisChaRteMaxRtg'];
    const from702 = this.capacity702 ? await this.session.current(this.capacity702, ['WChaRteMax', 'WDisChaRteMax', 'WChaRteMaxRtg', 'WDisChaRteMaxRtg']) : undefined;
    for (const name of names) {
      const v = optional(from702, name);
      if (v !== undefined && v > 0) return v;
    }
    if (this.battery802) {
      const b = await this.session.current(this.battery802, ['SoC', 'WHRtg', 'WChaRteMax', 'WDisChaRteMax']);
      const v = optional(b, direction === 'charge' ? 'WChaRteMax' : 'WDisChaRteMax');
      if (v !== undefined && v > 0) return v;
    }
    return undefined;
  }

  private async setBasic(powerW: number, revertAfterMs: number): Promise<void> {
    const storage = this.storage124!;
    const revertS = revertSeconds(revertAfterMs, 0xfffe);
    const current = await this.session.current(storage, this.basicControlPoints());
    const maxW = optional(current, 'WChaMax');
    if (maxW === undefined || maxW <= 0) {
      throw new BadDataError(`${this.id}: SunSpec model 124 WChaMax is not implemented (or 0); the charge rate percentages have no base`);
    }
    const pct = Math.min(100, (Math.abs(powerW) / maxW) * 100);
    const charging = powerW >= 0;
    const inPct = charging ? pct : 0 - pct;
    const outPct = 0 - inPct;
    const steps: PointWrite[][] = [
      [
        ['OutWRte', outPct],
        ['InWRte', inPct],
      ],
    ];
    if (current['InOutWRte_RvrtTms'] !== undefined) steps.push([['InOutWRte_RvrtTms', revertS]]);
    else this.warnNoRevert(124, 'InOutWRte_RvrtTms');
    // Rates and timer in one transaction when InOutWRte_WinTms can be kept as read.
    await this.session.writeSteps(storage, steps, current);
    // The device applies the rates while both limits are active: no need to say so again.
    if (optional(current, 'StorCtl_Mod') !== STORCTL_CHARGE_AND_DISCHARGE) {
      await this.session.write(storage, [['StorCtl_Mod', STORCTL_CHARGE_AND_DISCHARGE]], current);
    }
  }

  private warnNoRevert(model: number, point: string): void {
    if (this.warnedNoRevert) return;
    this.warnedNoRevert = true;
    this.session.log.warn({ model, point }, 'battery has no revert timer: a setpoint stays until cleared');
  }

  async clearSetpoint(): Promise<void> {
    if (this.style === 'der') {
      if (!this.control704) throw new NotSupportedError(`${this.id}: the battery has no SunSpec DER control model (704)`);
      await this.session.write(this.control704, [['WSetEna', DISABLED]], {});
    } else {
      await this.session.write(this.storage124!, [['StorCtl_Mod', 0]], {});
    }
  }
}
