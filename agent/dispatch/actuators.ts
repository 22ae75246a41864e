/**
 * One actuator per controllable device: what the device can give the dispatcher now (an allocation
 * `Unit`, built from the device's reading and its limits) and how a chosen flex becomes a device
 * command. Actuators keep the little state the closed loop needs: the device's power when flexgate
 * took it over ("natural"), the last command, when it was written (for the dead-man refresh).
 *
 * Flex = change of site power against the device's natural behaviour, W, positive = the site
 * consumes more (docs/dispatch.md). Everything that protects a device (battery reserve and power,
 * EV minimum current and departure need, comfort band and switching times, PV range) is applied
 * here, when the unit is built, so the allocation can never ask for more.
 */
import {
  isBattery,
  isEvCharger,
  isLoad,
  isPv,
  isSetpointHvac,
  isSgReadyHvac,
  type Battery,
  type BatteryReading,
  type Device,
  type EvCharger,
  type EvChargerReading,
  type Hvac,
  type HvacReading,
  type Load,
  type LoadReading,
  type Pv,
  type PvReading,
} from '../../drivers/classes.js';
import type { DeviceState } from '../snapshot.js';
import type { ContinuousUnit, DiscreteUnit, Engagement, Unit, UnitKind } from './dispatcher-allocation.js';
import { departureMinPowerW, nextLocalTimeMs } from './dispatcher-targets.js';

/** What an actuator needs to know about the step. */
export interface StepContext {
  nowMs: number;
  cycleMs: number;
  /** Revert timer written with every PV / battery command (the dead-man switch). */
  deadManMs: number;
  /** When the running orders end (the horizon for the EV departure rule). */
  horizonEndMs: number;
}

/** One device command the dispatcher will send. */
export interface Command {
  /** For the audit log: the device method and its argument. */
  what: string;
  value: number;
  run(): Promise<void>;
  /** Called after the device confirmed the command. */
  confirmed(): void;
}

/** The installer's limits for a device (from its config section). */
export interface ActuatorSettings {
  batteryReserveSocPct?: number;
  evDeparture?: { time: string; energyWh: number };
  hvacComfort?: { minC: number; maxC: number };
}

export interface Actuator {
  readonly id: string;
  readonly kind: UnitKind;
  /** The driver object it commands. */
  readonly device: Device;
  /** The device has no revert timer of its own: the restore ledger must know before it is changed. */
  readonly needsLedger: boolean;
  /** flexgate has changed the device and not restored it. */
  readonly active: boolean;
  /** The allocation unit now; undefined when the device cannot take part (offline, nothing to give). */
  unit(state: DeviceState | undefined, ctx: StepContext): Unit | undefined;
  /** The command that puts the device at `flexW` / `engaged`, or undefined when none is needed now. */
  command(flexW: number, engaged: Engagement, ctx: StepContext): Command | undefined;
  /** Back to normal (the device's own control): the command, or undefined when it is not changed. */
  release(ctx: StepContext): Command | undefined;
  /** The device refused a command (its own rules): don't engage it for a while. */
  refused(ctx: StepContext): void;
}

const clamp = (x: number, lo: number, hi: number): number => (x < lo ? lo : x > hi ? hi : x);

/** A reading taken after the last command was written (so it shows the command's effect). */
function measuredAfter(state: DeviceState | undefined, commandAtMs: number): boolean {
  return state !== undefined && state.availability.state === 'online' && state.reading !== undefined && (state.readAtMs ?? 0) > commandAtMs;
}

function online(state: DeviceState | undefined): state is DeviceState & { reading: NonNullable<DeviceState['reading']> } {
  return state !== undefined && state.availability.state === 'online' && state.reading !== undefined;
}

/** How long a device that refused a change is left alone. */
const REFUSAL_BACKOFF_MS = 60_000;

abstract class ActuatorBase {
  active = false;
  /** The device's power when flexgate took it over (PV: its output). */
  protected naturalW = 0;
  protected commandedFlexW = 0;
  protected commandAtMs = 0;
  protected lastWriteAtMs = Number.NEGATIVE_INFINITY;
  protected refusedUntilMs = Number.NEGATIVE_INFINITY;

  constructor(readonly id: string) {}

  refused(ctx: StepContext): void {
    this.refusedUntilMs = ctx.nowMs + REFUSAL_BACKOFF_MS;
  }

  /** An offline device flexgate has changed: it keeps what it was last given. */
  protected frozenContinuous(kind: ContinuousUnit['kind']): ContinuousUnit {
    const flexW = this.commandedFlexW;
    return { id: this.id, kind, discrete: false, frozen: true, flexNowW: flexW, minFlexW: flexW, maxFlexW: flexW };
  }

  protected frozenDiscrete(kind: DiscreteUnit['kind'], engaged: Engagement): DiscreteUnit {
    return { id: this.id, kind, discrete: true, frozen: true, engaged, flexNowW: this.commandedFlexW, downFlexW: 0, upFlexW: 0, canEngageDown: false, canEngageUp: false, canRelease: true, mustRelease: false };
  }

  protected wrote(ctx: StepContext, flexW: number): void {
    this.active = true;
    this.commandedFlexW = flexW;
    this.commandAtMs = ctx.nowMs;
    this.lastWriteAtMs = ctx.nowMs;
  }

  protected released(): void {
    this.active = false;
    this.commandedFlexW = 0;
    this.lastWriteAtMs = Number.NEGATIVE_INFINITY;
  }
}

// ---- battery ------------------------------------------------------------------------------------

class BatteryActuator extends ActuatorBase implements Actuator {
  readonly kind = 'battery' as const;
  readonly needsLedger: boolean;
  private lastSetpointW: number | undefined;
  private rangeW = { minW: 0, maxW: 0 };

  constructor(
    readonly device: Battery,
    private readonly reserveSocPct: number,
  ) {
    super(device.id);
    this.needsLedger = device.revert?.kind === 'none';
  }

  unit(state: DeviceState | undefined, ctx: StepContext): ContinuousUnit | undefined {
    if (!online(state)) return this.active ? this.frozenContinuous('battery') : undefined;
    const r = state.reading as BatteryReading;
    if (!this.active) this.naturalW = r.powerW;
    const maxChargeW = r.maxChargeW ?? 0;
    // SunSpec model 124 has one rating for both directions (OutWRte is a percentage of WChaMax).
    const maxDischargeW = r.maxDischargeW ?? maxChargeW;
    // Never charge a full battery, never discharge below the reserve.
    const maxW = r.socPct >= 99.5 ? 0 : maxChargeW;
    const minW = r.socPct <= this.reserveSocPct ? 0 : -maxDischargeW;
    this.rangeW = { minW, maxW };
    const minFlexW = minW - this.naturalW;
    const maxFlexW = maxW - this.naturalW;
    // Taking it over would force a change against the limits (e.g. it discharges below the reserve
    // on its own): leave it to its own control.
    if (!this.active && (minFlexW > 0 || maxFlexW < 0)) return undefined;
    const flexNowW = measuredAfter(state, this.commandAtMs) || !this.active ? r.powerW - this.naturalW : this.commandedFlexW;
    void ctx;
    return { id: this.id, kind: 'battery', discrete: false, frozen: false, flexNowW, minFlexW: Math.min(minFlexW, 0), maxFlexW: Math.max(maxFlexW, 0) };
  }

  command(flexW: number, _engaged: Engagement, ctx: StepContext): Command | undefined {
    const setpointW = Math.round(clamp(this.naturalW + flexW, this.rangeW.minW, this.rangeW.maxW));
    const changed = this.lastSetpointW === undefined || Math.abs(setpointW - this.lastSetpointW) >= 20;
    const refresh = this.active && ctx.nowMs - this.lastWriteAtMs >= ctx.deadManMs / 3;
    if (!this.active && Math.abs(flexW) < 20) return undefined;
    if (!changed && !refresh) return undefined;
    return {
      what: 'setPowerW',
      value: setpointW,
      run: () => this.device.setPowerW(setpointW, ctx.deadManMs),
      confirmed: () => {
        this.lastSetpointW = setpointW;
        this.wrote(ctx, setpointW - this.naturalW);
      },
    };
  }

  release(ctx: StepContext): Command | undefined {
    if (!this.active) return undefined;
    return {
      what: 'clearSetpoint',
      value: 0,
      run: () => this.device.clearSetpoint(),
      confirmed: () => {
        this.lastSetpointW = undefined;
        this.released();
      },
    };
  }
}

// ---- PV curtailment -----------------------------------------------------------------------------

class PvActuator extends ActuatorBase implements Actuator {
  readonly kind = 'pv' as const;
  readonly needsLedger: boolean;
  private ratedW = 0;
  private lastLimitPct: number | undefined;

  constructor(readonly device: Pv) {
    super(device.id);
    this.needsLedger = device.revert?.kind === 'none';
  }

  unit(state: DeviceState | undefined): ContinuousUnit | undefined {
    if (!online(state)) return this.active ? this.frozenContinuous('pv') : undefined;
    const r = state.reading as PvReading;
    if (r.ratedPowerW === undefined || r.ratedPowerW <= 0) return undefined;
    this.ratedW = r.ratedPowerW;
    // While no limit acts, the output is the natural output.
    if (!this.active || r.limitPct === undefined || r.powerW > this.naturalW) this.naturalW = r.powerW;
    const flexNowW = this.active ? clamp(this.commandedFlexW, 0, this.naturalW) : 0;
    return { id: this.id, kind: 'pv', discrete: false, frozen: false, flexNowW, minFlexW: 0, maxFlexW: Math.max(0, this.naturalW) };
  }

  command(flexW: number, _engaged: Engagement, ctx: StepContext): Command | undefined {
    if (flexW < 20) return this.active ? this.release(ctx) : undefined;
    const limitW = Math.max(0, this.naturalW - flexW);
    const limitPct = Math.round(clamp((limitW / this.ratedW) * 100, 0, 100) * 10) / 10;
    const changed = this.lastLimitPct === undefined || Math.abs(limitPct - this.lastLimitPct) >= 0.5;
    const refresh = ctx.nowMs - this.lastWriteAtMs >= ctx.deadManMs / 3;
    if (!changed && !refresh) return undefined;
    return {
      what: 'setLimitPct',
      value: limitPct,
      run: () => this.device.setLimitPct(limitPct, ctx.deadManMs),
      confirmed: () => {
        this.lastLimitPct = limitPct;
        this.wrote(ctx, flexW);
      },
    };
  }

  release(ctx: StepContext): Command | undefined {
    if (!this.active) return undefined;
    return {
      what: 'clearLimit',
      value: 0,
      run: () => this.device.clearLimit(),
      confirmed: () => {
        this.lastLimitPct = undefined;
        this.released();
      },
    };
  }
}

// ---- EV charger ---------------------------------------------------------------------------------

class EvActuator extends ActuatorBase implements Actuator {
  readonly kind = 'ev' as const;
  readonly needsLedger: boolean;
  /** Per-phase current flexgate set (0 = paused). */
  private currentA: number | undefined;
  private maxPowerW = 0;
  private minPowerW = 0;

  constructor(
    readonly device: EvCharger,
    private readonly departure: ActuatorSettings['evDeparture'],
  ) {
    super(device.id);
    this.needsLedger = device.revert.kind === 'none';
  }

  private get wPerA(): number {
    return this.device.limits.voltageV * this.device.limits.phases;
  }

  unit(state: DeviceState | undefined, ctx: StepContext): ContinuousUnit | undefined {
    if (!online(state)) return this.active ? this.frozenContinuous('ev') : undefined;
    const r = state.reading as EvChargerReading;
    if (!r.plugged && !this.active) return undefined;
    const { minCurrentA, maxCurrentA } = this.device.limits;
    if (!this.active) this.naturalW = r.powerW;
    // A vehicle that draws nothing on its own (full, or not there) cannot be made to draw more.
    const drawing = r.charging || this.naturalW > 100;
    this.maxPowerW = r.plugged && drawing ? Math.max(this.naturalW, maxCurrentA * this.wPerA) : this.naturalW;
    let minPowerW = 0;
    if (this.departure && r.plugged) {
      const remainingWh = this.departure.energyWh - (r.sessionEnergyWh ?? 0);
      const needW = departureMinPowerW({
        remainingWh,
        nowMs: ctx.nowMs,
        departureMs: nextLocalTimeMs(ctx.nowMs, this.departure.time),
        horizonMs: Math.max(ctx.cycleMs, ctx.horizonEndMs - ctx.nowMs),
        maxPowerW: maxCurrentA * this.wPerA,
        marginMs: ctx.cycleMs,
      });
      // Never cut back below what the departure needs (and never below the vehicle's own draw when
      // even full power would not do).
      minPowerW = Number.isFinite(needW) ? Math.min(this.naturalW, needW > 0 ? Math.max(needW, minCurrentA * this.wPerA) : 0) : this.naturalW;
    }
    this.minPowerW = minPowerW;
    const flexNowW = measuredAfter(state, this.commandAtMs) || !this.active ? r.powerW - this.naturalW : this.commandedFlexW;
    const unit: ContinuousUnit = {
      id: this.id,
      kind: 'ev',
      discrete: false,
      frozen: ctx.nowMs < this.refusedUntilMs,
      flexNowW,
      minFlexW: Math.min(0, minPowerW - this.naturalW),
      maxFlexW: Math.max(0, this.maxPowerW - this.naturalW),
      quantize: (wantW, cover) => this.quantize(wantW, cover),
    };
    return unit;
  }

  /** The powers the charger can be set to: paused, or each whole ampere from min to max. */
  private steps(): number[] {
    const { minCurrentA, maxCurrentA } = this.device.limits;
    const out: number[] = [];
    if (this.minPowerW <= 0) out.push(0);
    for (let a = minCurrentA; a <= maxCurrentA; a++) {
      const p = a * this.wPerA;
      if (p >= this.minPowerW - 1 && p <= this.maxPowerW + 1) out.push(p);
    }
    if (out.length === 0) out.push(this.naturalW);
    return out;
  }

  private quantize(wantW: number, cover: boolean): number {
    const targetW = this.naturalW + wantW;
    const steps = this.steps();
    let best = steps[0]!;
    if (cover && wantW < 0) {
      // The highest step at or below the target (consume at least as much less as wanted).
      best = steps.filter((p) => p <= targetW + 1).pop() ?? steps[0]!;
    } else if (cover && wantW > 0) {
      best = steps.find((p) => p >= targetW - 1) ?? steps[steps.length - 1]!;
    } else {
      for (const p of steps) if (Math.abs(p - targetW) < Math.abs(best - targetW)) best = p;
    }
    return best - this.naturalW;
  }

  command(flexW: number, _engaged: Engagement, ctx: StepContext): Command | undefined {
    const powerW = this.naturalW + flexW;
    const { minCurrentA, maxCurrentA } = this.device.limits;
    const currentA = powerW < (minCurrentA * this.wPerA) / 2 ? 0 : clamp(Math.round(powerW / this.wPerA), minCurrentA, maxCurrentA);
    if (!this.active && Math.abs(flexW) < 1) return undefined;
    if (this.currentA === currentA) return undefined;
    const flexAfterW = currentA === 0 ? -this.naturalW : Math.min(currentA * this.wPerA, this.maxPowerW) - this.naturalW;
    return {
      what: currentA === 0 ? 'pause' : 'setCurrentA',
      value: currentA,
      run: () => (currentA === 0 ? this.device.pause() : this.device.setCurrentA(currentA)),
      confirmed: () => {
        this.currentA = currentA;
        this.wrote(ctx, flexAfterW);
      },
    };
  }

  release(ctx: StepContext): Command | undefined {
    if (!this.active) return undefined;
    return {
      what: 'restore',
      value: this.device.limits.maxCurrentA,
      run: () => this.device.restore(),
      confirmed: () => {
        this.currentA = undefined;
        this.released();
      },
    };
  }
}

// ---- discrete: heat pump, switchable load ---------------------------------------------------------

/** How far inside the comfort band a heat pump must be to be engaged (K). */
const COMFORT_MARGIN_C = 0.3;

class HvacActuator extends ActuatorBase implements Actuator {
  readonly kind = 'hvac' as const;
  readonly needsLedger: boolean;
  private engaged: Engagement = 0;
  private engagedAtMs = Number.NEGATIVE_INFINITY;
  private releasedAtMs = Number.NEGATIVE_INFINITY;
  private readonly comfort: { minC: number; maxC: number };
  private readonly minSwitchMs: number;

  constructor(
    readonly device: Hvac,
    comfort: { minC: number; maxC: number } | undefined,
  ) {
    super(device.id);
    this.needsLedger = device.revert.kind === 'none';
    this.comfort = isSetpointHvac(device) ? device.comfortBandC : (comfort ?? { minC: 19, maxC: 23 });
    this.minSwitchMs = isSgReadyHvac(device) ? device.minSwitchIntervalMs : 0;
  }

  unit(state: DeviceState | undefined, ctx: StepContext): DiscreteUnit | undefined {
    const base = { id: this.id, kind: 'hvac' as const, discrete: true as const };
    if (!online(state)) return this.active ? this.frozenDiscrete('hvac', this.engaged) : undefined;
    const r = state.reading as HvacReading;
    const powerW = r.powerW;
    if (powerW === undefined) return undefined;
    if (this.engaged === 0) this.naturalW = powerW;
    const rated = this.device.ratedPowerW;
    const indoorC = r.indoorC;
    const switchOk = ctx.nowMs - Math.max(this.engagedAtMs, this.releasedAtMs) >= this.minSwitchMs && ctx.nowMs >= this.refusedUntilMs;
    const warmEnough = indoorC === undefined || indoorC > this.comfort.minC + COMFORT_MARGIN_C;
    const coolEnough = indoorC === undefined || indoorC < this.comfort.maxC - COMFORT_MARGIN_C;
    const running = this.naturalW > 0.1 * rated;
    const mustRelease = indoorC !== undefined && ((this.engaged < 0 && indoorC <= this.comfort.minC) || (this.engaged > 0 && indoorC >= this.comfort.maxC));
    const flexNowW = this.engaged === 0 ? 0 : measuredAfter(state, this.commandAtMs) ? powerW - this.naturalW : this.commandedFlexW;
    return {
      ...base,
      frozen: false,
      engaged: this.engaged,
      flexNowW,
      downFlexW: running ? -this.naturalW : 0,
      upFlexW: running ? 0 : rated - this.naturalW,
      canEngageDown: running && warmEnough && switchOk,
      canEngageUp: !running && coolEnough && switchOk,
      canRelease: true,
      mustRelease,
    };
  }

  command(flexW: number, engaged: Engagement, ctx: StepContext): Command | undefined {
    if (engaged === this.engaged) return undefined;
    if (engaged === 0) return this.release(ctx);
    const d = this.device;
    const estimateW = engaged < 0 ? -this.naturalW : Math.max(flexW, 0);
    const confirmed = () => {
      this.engaged = engaged;
      this.engagedAtMs = ctx.nowMs;
      this.wrote(ctx, estimateW);
    };
    if (isSgReadyHvac(d)) {
      const state = engaged < 0 ? 'blocked' : 'forced';
      return { what: `setSgReady ${state}`, value: engaged < 0 ? 1 : 4, run: () => d.setSgReady(state), confirmed };
    }
    if (isSetpointHvac(d)) {
      const offsetC = engaged < 0 ? d.setpointOffsetRangeC.minC : d.setpointOffsetRangeC.maxC;
      return { what: 'setSetpointOffsetC', value: offsetC, run: () => d.setSetpointOffsetC(offsetC), confirmed };
    }
    return undefined;
  }

  release(ctx: StepContext): Command | undefined {
    if (!this.active) return undefined;
    return {
      what: 'restore',
      value: 0,
      run: () => this.device.restore(),
      confirmed: () => {
        this.engaged = 0;
        this.releasedAtMs = ctx.nowMs;
        this.released();
      },
    };
  }
}

class LoadActuator extends ActuatorBase implements Actuator {
  readonly kind = 'load' as const;
  readonly needsLedger: boolean;
  private engaged: Engagement = 0;
  private switchedAtMs = Number.NEGATIVE_INFINITY;
  private switchedOn = true;

  constructor(readonly device: Load) {
    super(device.id);
    this.needsLedger = device.revert.kind === 'none';
  }

  unit(state: DeviceState | undefined, ctx: StepContext): DiscreteUnit | undefined {
    const base = { id: this.id, kind: 'load' as const, discrete: true as const };
    if (!online(state)) return this.active ? this.frozenDiscrete('load', this.engaged) : undefined;
    const r = state.reading as LoadReading;
    const powerW = r.powerW ?? (r.on ? this.device.ratedPowerW : 0);
    if (this.engaged === 0) this.naturalW = powerW;
    const sinceSwitchMs = ctx.nowMs - this.switchedAtMs;
    const mayTurnOff = (!this.switchedOn || sinceSwitchMs >= this.device.minOnMs) && ctx.nowMs >= this.refusedUntilMs;
    const mayTurnOn = (this.switchedOn || sinceSwitchMs >= this.device.minOffMs) && ctx.nowMs >= this.refusedUntilMs;
    const flexNowW = this.engaged === 0 ? 0 : measuredAfter(state, this.commandAtMs) ? powerW - this.naturalW : this.commandedFlexW;
    return {
      ...base,
      frozen: false,
      engaged: this.engaged,
      flexNowW,
      downFlexW: r.on && this.naturalW > 20 ? -this.naturalW : 0,
      upFlexW: !r.on ? this.device.ratedPowerW : 0,
      canEngageDown: r.on && mayTurnOff,
      canEngageUp: !r.on && mayTurnOn,
      // Switching back is held to the device's minimum on / off time too (it would refuse).
      canRelease: this.engaged < 0 ? mayTurnOn : this.engaged > 0 ? mayTurnOff : true,
      mustRelease: false,
    };
  }

  command(flexW: number, engaged: Engagement, ctx: StepContext): Command | undefined {
    if (engaged === this.engaged) return undefined;
    if (engaged === 0) return this.release(ctx);
    const on = engaged > 0;
    return {
      what: 'setOn',
      value: on ? 1 : 0,
      run: () => this.device.setOn(on),
      confirmed: () => {
        this.engaged = engaged;
        this.switchedAtMs = ctx.nowMs;
        this.switchedOn = on;
        this.wrote(ctx, engaged < 0 ? -this.naturalW : flexW);
      },
    };
  }

  release(ctx: StepContext): Command | undefined {
    if (!this.active) return undefined;
    const wasOn = this.switchedOn;
    return {
      what: 'restore',
      value: 1,
      run: () => this.device.restore(),
      confirmed: () => {
        this.engaged = 0;
        if (!wasOn) this.switchedAtMs = ctx.nowMs;
        this.switchedOn = true;
        this.released();
      },
    };
  }
}

/** The actuator for a device, or undefined when flexgate cannot move it (a meter, a read-only device). */
export function createActuator(device: Device, settings: ActuatorSettings): Actuator | undefined {
  if (isBattery(device)) return new BatteryActuator(device, settings.batteryReserveSocPct ?? 10);
  if (isPv(device)) return new PvActuator(device);
  if (isEvCharger(device)) return new EvActuator(device, settings.evDeparture);
  if (isSgReadyHvac(device) || isSetpointHvac(device)) return new HvacActuator(device, settings.hvacComfort);
  if (isLoad(device)) return new LoadActuator(device);
  return undefined;
}
