import type { Clock } from '../../drivers/clock.js';
import { SunSpecDevice } from '../sunspec/encoder.js';
import { RevertTimer, type Stepper } from '../ticker.js';
import { DISABLED, ENABLED, num, rangeValidator, setCommonModel, touches, type Nameplate } from './common.js';

export interface BatteryOptions extends Nameplate {
  clock: Clock;
  /** 'inverter': models 1 + 103 + 124; 'der': models 1 + 701 + 702 + 713 + 704 + 802. Default 'inverter'. */
  variant?: 'inverter' | 'der';
  capacityWh?: number;
  maxChargeW?: number;
  maxDischargeW?: number;
  minSocPct?: number;
  maxSocPct?: number;
  initialSocPct?: number;
  baseAddress?: number;
}

/** A power window in W, positive = charge: the battery's power is its own target clamped into it. */
export interface PowerWindowW {
  minW: number;
  maxW: number;
}

const AC_VOLTAGE_V = 230;
const BATTERY_VOLTAGE_V = 400;
const STOR_CTL_CHARGE = 1;
const STOR_CTL_DISCHARGE = 2;

/**
 * A home battery. powerW > 0 charges (draws from the site), < 0 discharges, as in drivers/classes.ts;
 * on the SunSpec AC side (103 W, 701 W, 802 W) the sign is the inverter's: positive = discharge.
 *
 * Left alone it does self-consumption: it charges from PV surplus and discharges to cover load, using
 * the site surplus given by `setSurplusSource` (PV minus load, without the battery).
 *
 * Control, model 124 (the Fronius-style reading of StorCtl_Mod): the battery's power is its
 * self-consumption target clamped into a window. StorCtl_Mod bit 0 (CHARGE) caps charging at
 * InWRte % of WChaMax; bit 1 (DISCHARGE) caps discharging at OutWRte % of the max discharge power. A
 * negative rate forces the other direction: InWRte = −40 with OutWRte = 40 holds 40 % discharge;
 * OutWRte = −60 with InWRte = 60 holds 60 % charge. After InOutWRte_RvrtTms seconds without a new
 * write of these points StorCtl_Mod returns to 0 (self-consumption). InOutWRte_WinTms and
 * InOutWRte_RmpTms read 0 and are kept as written (not modelled: rates apply at once).
 *
 * Control, model 704: WSetEna = 1 holds WSet (W, positive = discharge, as DER injection) or with
 * WSetMod = 0 (W_MAX_PCT) WSetPct % of WMax; after WSetRvrtTms seconds without a new write WSetEna
 * returns to WSetEnaRvrt (default disabled). WSetRvrt and WSetPctRvrt are kept as written.
 *
 * A bus write is taken as a whole (an FC16 is validated, then applied, then acted on once): one FC16
 * from WSetEna to WSetRvrtTms, or from OutWRte to InOutWRte_RvrtTms, is one control write.
 *
 * SoC integrates the power (no losses) and stays within [minSocPct, maxSocPct].
 */
export class HomeBattery implements Stepper {
  readonly sunspec: SunSpecDevice;
  readonly variant: 'inverter' | 'der';
  readonly capacityWh: number;
  readonly maxChargeW: number;
  readonly maxDischargeW: number;
  readonly minSocPct: number;
  readonly maxSocPct: number;
  socPct: number;
  /** Positive = charging. */
  powerW = 0;
  chargedWh = 0;
  dischargedWh = 0;
  private readonly clock: Clock;
  private readonly revert: RevertTimer;
  private surplusSource: () => number = () => 0;
  private lastDtMs = 1000;

  constructor(options: BatteryOptions) {
    this.clock = options.clock;
    this.variant = options.variant ?? 'inverter';
    this.capacityWh = options.capacityWh ?? 10_000;
    this.maxChargeW = options.maxChargeW ?? 5000;
    this.maxDischargeW = options.maxDischargeW ?? 5000;
    this.minSocPct = options.minSocPct ?? 5;
    this.maxSocPct = options.maxSocPct ?? 100;
    this.socPct = options.initialSocPct ?? 50;
    this.revert = new RevertTimer(this.clock);
    const models = this.variant === 'inverter' ? [1, 103, 124] : [1, 701, 702, 713, 704, 802];
    this.sunspec = new SunSpecDevice(models, { baseAddress: options.baseAddress ?? 40000 });
    setCommonModel(this.sunspec, {
      manufacturer: options.manufacturer ?? 'flexgate-sim',
      model: options.model ?? (this.variant === 'inverter' ? 'BAT-10K' : 'BAT-10K-DER'),
      version: options.version ?? '1.0.0',
      serialNumber: options.serialNumber ?? 'BAT0001',
    });
    if (this.variant === 'inverter') this.initInverterModels();
    else this.initDerModels();
    this.sunspec.onWrite((changes) => {
      const controlPoints =
        this.variant === 'inverter'
          ? touches(changes, 124, ['StorCtl_Mod', 'InWRte', 'OutWRte', 'InOutWRte_RvrtTms'])
          : touches(changes, 704, ['WSetEna', 'WSetMod', 'WSet', 'WSetPct', 'WSetRvrtTms']);
      if (controlPoints) this.onControlWritten();
    });
    this.step(this.clock.now(), 0);
  }

  /** Where self-consumption gets the site surplus (W, PV minus load without the battery; > 0 = surplus). */
  setSurplusSource(source: () => number): void {
    this.surplusSource = source;
  }

  /** The window the agent's control imposes, or undefined when the battery is on its own. */
  get controlWindowW(): PowerWindowW | undefined {
    const d = this.sunspec;
    if (this.variant === 'inverter') {
      const mod = num(d.get(124, 'StorCtl_Mod'), 0);
      if ((mod & (STOR_CTL_CHARGE | STOR_CTL_DISCHARGE)) === 0) return undefined;
      const window: PowerWindowW = { minW: -this.maxDischargeW, maxW: this.maxChargeW };
      if (mod & STOR_CTL_CHARGE) window.maxW = (num(d.get(124, 'InWRte'), 100) / 100) * this.maxChargeW;
      if (mod & STOR_CTL_DISCHARGE) window.minW = -(num(d.get(124, 'OutWRte'), 100) / 100) * this.maxDischargeW;
      return window;
    }
    if (d.get(704, 'WSetEna') !== ENABLED) return undefined;
    const injectW =
      d.get(704, 'WSetMod') === 0
        ? (num(d.get(704, 'WSetPct'), 0) / 100) * num(d.get(702, 'WMax'), this.maxDischargeW)
        : num(d.get(704, 'WSet'), 0);
    return { minW: -injectW, maxW: -injectW };
  }

  /** Clock ms left on the setpoint revert timer (0 when not running). */
  get revertRemainingMs(): number {
    return this.revert.remainingMs();
  }

  private initInverterModels(): void {
    const d = this.sunspec;
    d.setScaleFactors(103, { A_SF: -2, V_SF: -1, W_SF: 0, Hz_SF: -2, VA_SF: 0, VAr_SF: 0, PF_SF: -2, WH_SF: 0, Tmp_SF: -1 });
    d.set(103, 'TmpCab', 28);
    d.set(103, 'Evt1', 0);
    d.set(103, 'Evt2', 0);
    d.setScaleFactors(124, {
      WChaMax_SF: 0, WChaDisChaGra_SF: 0, VAChaMax_SF: 0, MinRsvPct_SF: -1, ChaState_SF: -1, StorAval_SF: -1,
      InBatV_SF: -1, InOutWRte_SF: -1,
    });
    d.set(124, 'WChaMax', this.maxChargeW);
    d.set(124, 'WChaGra', 100);
    d.set(124, 'WDisChaGra', 100);
    d.set(124, 'StorCtl_Mod', 0);
    d.set(124, 'MinRsvPct', this.minSocPct);
    d.set(124, 'InWRte', 100);
    d.set(124, 'OutWRte', 100);
    // Window and ramp times are implemented and read 0 (a new rate applies at once); they are kept
    // as written but not modelled. A client may write them with the rates and the revert timer in
    // one FC16 (offsets 12..16), as with a real 124 device.
    d.set(124, 'InOutWRte_WinTms', 0);
    d.set(124, 'InOutWRte_RvrtTms', 0);
    d.set(124, 'InOutWRte_RmpTms', 0);
    d.set(124, 'ChaGriSet', 1); // GRID
    d.addValidator(rangeValidator(124, { InWRte: [-100, 100], OutWRte: [-100, 100], StorCtl_Mod: [0, 3] }));
  }

  private initDerModels(): void {
    const d = this.sunspec;
    d.setScaleFactors(701, { A_SF: -2, V_SF: -1, Hz_SF: -2, W_SF: 0, PF_SF: -2, VA_SF: 0, Var_SF: 0, TotWh_SF: 0, TotVarh_SF: 0, Tmp_SF: -1 });
    d.set(701, 'ACType', 2);
    d.set(701, 'St', 1);
    d.set(701, 'ConnSt', 1);
    d.set(701, 'Alrm', 0);
    d.setScaleFactors(702, { W_SF: 0, PF_SF: -2, VA_SF: 0, Var_SF: 0, V_SF: -1, A_SF: -1, S_SF: 0 });
    d.set(702, 'WMaxRtg', this.maxDischargeW);
    d.set(702, 'VAMaxRtg', this.maxDischargeW);
    d.set(702, 'WChaRteMaxRtg', this.maxChargeW);
    d.set(702, 'WDisChaRteMaxRtg', this.maxDischargeW);
    d.set(702, 'VNomRtg', AC_VOLTAGE_V);
    d.set(702, 'WMax', this.maxDischargeW);
    d.set(702, 'WChaRteMax', this.maxChargeW);
    d.set(702, 'WDisChaRteMax', this.maxDischargeW);
    d.set(702, 'VNom', AC_VOLTAGE_V);
    d.setScaleFactors(713, { WH_SF: 0, Pct_SF: -1 });
    d.set(713, 'WHRtg', this.capacityWh);
    d.set(713, 'SoH', 100);
    d.setScaleFactors(704, { PF_SF: -2, WMaxLimPct_SF: -1, WSet_SF: 0, WSetPct_SF: -1, VarSet_SF: 0, VarSetPct_SF: -1 });
    d.set(704, 'WMaxLimPctEna', DISABLED);
    d.set(704, 'WSetEna', DISABLED);
    d.set(704, 'WSetMod', 1); // WATTS
    d.set(704, 'WSet', 0);
    d.set(704, 'WSetRvrt', 0);
    d.set(704, 'WSetPct', 0);
    d.set(704, 'WSetPctRvrt', 0);
    d.set(704, 'WSetEnaRvrt', DISABLED);
    d.set(704, 'WSetRvrtTms', 0);
    d.set(704, 'WSetRvrtRem', 0);
    d.setScaleFactors(802, {
      AHRtg_SF: 0, WHRtg_SF: 0, WChaDisChaMax_SF: 0, SoC_SF: -1, SoH_SF: 0, V_SF: -1, CellV_SF: -3, A_SF: -1, AMax_SF: 0, W_SF: 0,
    });
    d.set(802, 'AHRtg', Math.round(this.capacityWh / BATTERY_VOLTAGE_V));
    d.set(802, 'WHRtg', this.capacityWh);
    d.set(802, 'WChaRteMax', this.maxChargeW);
    d.set(802, 'WDisChaRteMax', this.maxDischargeW);
    d.set(802, 'SoCMax', this.maxSocPct);
    d.set(802, 'SoCMin', this.minSocPct);
    d.set(802, 'SoH', 100);
    d.set(802, 'LocRemCtl', 0); // REMOTE
    d.set(802, 'AlmRst', 0);
    d.set(802, 'Typ', 4); // LI_ION
    d.set(802, 'State', 3); // CONNECTED
    d.set(802, 'Evt1', 0);
    d.set(802, 'Evt2', 0);
    d.set(802, 'EvtVnd1', 0);
    d.set(802, 'EvtVnd2', 0);
    d.set(802, 'SetOp', 1); // CONNECT
    d.set(802, 'SetInvState', 3); // INVERTER_STARTED
    d.addValidator(
      rangeValidator(704, { WSetEna: [0, 1], WSetMod: [0, 1], WSetPct: [-100, 100], WSetPctRvrt: [-100, 100], WSetEnaRvrt: [0, 1] }),
    );
    d.addValidator(
      rangeValidator(704, { WSet: [-Math.max(this.maxChargeW, this.maxDischargeW), Math.max(this.maxChargeW, this.maxDischargeW)] }),
    );
  }

  private onControlWritten(): void {
    const d = this.sunspec;
    const active = this.controlWindowW !== undefined;
    const revertS =
      this.variant === 'inverter' ? num(d.get(124, 'InOutWRte_RvrtTms'), 0) : num(d.get(704, 'WSetRvrtTms'), 0);
    if (active && revertS > 0) {
      this.revert.arm(revertS * 1000, () => {
        if (this.variant === 'inverter') d.set(124, 'StorCtl_Mod', 0);
        else d.set(704, 'WSetEna', num(d.get(704, 'WSetEnaRvrt'), DISABLED));
        this.refresh();
      });
    } else if (!active) {
      this.revert.cancel();
    }
    this.refresh();
  }

  /** Recomputes power for the current controls without integrating. */
  refresh(): void {
    this.decide(this.lastDtMs);
    this.publish();
  }

  step(_nowMs: number, dtMs: number): void {
    // SoC over the past interval at the power held during it.
    const energyWh = (this.powerW * dtMs) / 3_600_000;
    if (energyWh > 0) this.chargedWh += energyWh;
    else this.dischargedWh -= energyWh;
    this.socPct = Math.min(this.maxSocPct, Math.max(this.minSocPct, this.socPct + (100 * energyWh) / this.capacityWh));
    // Snap float dust at the limits so "full" and "empty" are exact.
    if (this.maxSocPct - this.socPct < 1e-9) this.socPct = this.maxSocPct;
    if (this.socPct - this.minSocPct < 1e-9) this.socPct = this.minSocPct;
    if (dtMs > 0) this.lastDtMs = dtMs;
    this.decide(this.lastDtMs);
    this.publish();
  }

  /** Picks the power for the next interval: own target (self-consumption) clamped by control, ratings and SoC room. */
  private decide(intervalMs: number): void {
    const window = this.controlWindowW;
    let targetW = this.surplusSource();
    if (window) targetW = Math.min(window.maxW, Math.max(window.minW, targetW));
    const hours = intervalMs / 3_600_000;
    const roomToChargeW = (((this.maxSocPct - this.socPct) / 100) * this.capacityWh) / hours;
    const roomToDischargeW = (((this.socPct - this.minSocPct) / 100) * this.capacityWh) / hours;
    const maxW = Math.min(this.maxChargeW, roomToChargeW);
    const minW = -Math.min(this.maxDischargeW, roomToDischargeW);
    this.powerW = Math.round(Math.min(maxW, Math.max(minW, targetW)));
    if (this.powerW > maxW) this.powerW = Math.floor(maxW);
    if (this.powerW < minW) this.powerW = Math.ceil(minW);
    if (this.powerW === 0) this.powerW = 0; // no −0
  }

  private chargeStatus(): number {
    if (this.powerW > 0) return 4; // CHARGING
    if (this.powerW < 0) return 3; // DISCHARGING
    if (this.socPct >= this.maxSocPct) return 5; // FULL
    if (this.socPct <= this.minSocPct) return 2; // EMPTY
    return 6; // HOLDING
  }

  private publish(): void {
    const d = this.sunspec;
    const acW = -this.powerW; // inverter sign: positive = AC output (discharge)
    const phaseA = Math.abs(acW) / 3 / AC_VOLTAGE_V;
    if (this.variant === 'inverter') {
      d.set(103, 'W', acW);
      d.set(103, 'VA', Math.abs(acW));
      d.set(103, 'A', phaseA * 3);
      for (const ph of ['AphA', 'AphB', 'AphC']) d.set(103, ph, phaseA);
      for (const ph of ['PhVphA', 'PhVphB', 'PhVphC']) d.set(103, ph, AC_VOLTAGE_V);
      d.set(103, 'Hz', 50);
      d.set(103, 'WH', Math.floor(this.dischargedWh));
      d.set(103, 'DCW', acW);
      d.set(103, 'DCV', BATTERY_VOLTAGE_V);
      d.set(103, 'St', this.powerW === 0 ? 8 : 4); // STANDBY / MPPT (operating)
      d.set(124, 'ChaState', this.socPct);
      d.set(124, 'StorAval', (((this.socPct - this.minSocPct) / 100) * this.capacityWh) / BATTERY_VOLTAGE_V);
      d.set(124, 'InBatV', BATTERY_VOLTAGE_V);
      d.set(124, 'ChaSt', this.chargeStatus());
    } else {
      d.set(701, 'W', acW);
      d.set(701, 'VA', Math.abs(acW));
      d.set(701, 'A', phaseA * 3);
      d.set(701, 'LNV', AC_VOLTAGE_V);
      d.set(701, 'LLV', 400);
      d.set(701, 'Hz', 50);
      d.set(701, 'TotWhInj', Math.floor(this.dischargedWh));
      d.set(701, 'TotWhAbs', Math.floor(this.chargedWh));
      d.set(701, 'InvSt', this.powerW === 0 ? 7 : 3); // STANDBY / RUNNING
      d.set(713, 'SoC', this.socPct);
      d.set(713, 'WHAvail', Math.round(((this.socPct - this.minSocPct) / 100) * this.capacityWh));
      d.set(713, 'Sta', 0); // OK
      d.set(704, 'WSetRvrtRem', Math.ceil(this.revert.remainingMs() / 1000));
      d.set(802, 'SoC', this.socPct);
      d.set(802, 'ChaSt', this.chargeStatus());
      d.set(802, 'V', BATTERY_VOLTAGE_V);
      d.set(802, 'A', this.powerW / BATTERY_VOLTAGE_V);
      d.set(802, 'W', acW);
    }
  }

  stop(): void {
    this.revert.cancel();
  }
}
