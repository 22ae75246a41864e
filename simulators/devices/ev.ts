/**
 * An EV charging session behind a charger: a vehicle arrives with a state of charge and an energy
 * need, charges at the current the charger offers (limited by its onboard charger), tapers above
 * 80 % state of charge, and leaves at its departure time. Shared by the charger front ends
 * (phoenix-ev.ts, …), which only encode it the way their vendor does.
 */
import type { Clock } from '../../drivers/clock.js';
import type { Stepper } from '../ticker.js';

export const NOMINAL_VOLTAGE_V = 230;

/** IEC 61851 control pilot states the simulator uses. */
export type PilotState = 'A' | 'B' | 'C';

export interface VehicleSession {
  /** Energy the driver wants before leaving. */
  energyWantedWh: number;
  departureMs: number;
  socPct: number;
  batteryWh: number;
  /** Onboard charger limit per phase. */
  maxCurrentA: number;
  phases: 1 | 3;
}

export interface EvChargingOptions {
  clock: Clock;
  /** Charger hardware limit per phase (cable / installation). */
  maxCurrentA?: number;
  phases?: 1 | 3;
  initialEnergyWh?: number;
}

export class EvCharging implements Stepper {
  /** Current the charger offers per phase (0 = none: paused). */
  offeredCurrentA: number;
  /** Charging is enabled by the charger's controller. */
  enabled = true;
  vehicle: VehicleSession | undefined;
  powerW = 0;
  sessionEnergyWh = 0;
  lifetimeEnergyWh: number;
  sessionStartedMs = 0;
  readonly maxCurrentA: number;
  readonly phases: 1 | 3;
  private readonly clock: Clock;

  constructor(options: EvChargingOptions) {
    this.clock = options.clock;
    this.maxCurrentA = options.maxCurrentA ?? 16;
    this.phases = options.phases ?? 3;
    this.offeredCurrentA = this.maxCurrentA;
    this.lifetimeEnergyWh = options.initialEnergyWh ?? 1_250_000;
  }

  get pilot(): PilotState {
    if (!this.vehicle) return 'A';
    return this.powerW > 0 ? 'C' : 'B';
  }

  plugIn(session: Partial<VehicleSession> & { energyWantedWh: number }): void {
    const now = this.clock.now();
    this.vehicle = {
      departureMs: now + 12 * 3_600_000,
      socPct: 30,
      batteryWh: 60_000,
      maxCurrentA: 16,
      phases: 3,
      ...session,
    };
    this.sessionEnergyWh = 0;
    this.sessionStartedMs = now;
    this.recompute();
  }

  unplug(): void {
    this.vehicle = undefined;
    this.recompute();
  }

  /** Power the vehicle would draw now at the offered current. */
  private targetPowerW(): number {
    const v = this.vehicle;
    if (!v || !this.enabled || this.offeredCurrentA < 6) return 0;
    if (this.sessionEnergyWh >= v.energyWantedWh || v.socPct >= 100) return 0;
    const currentA = Math.min(this.offeredCurrentA, v.maxCurrentA, this.maxCurrentA);
    const phases = Math.min(this.phases, v.phases);
    let powerW = phases * NOMINAL_VOLTAGE_V * currentA;
    // Constant current up to 80 %, then a linear taper to 10 % of it at 100 %.
    if (v.socPct > 80) powerW *= Math.max(0.1, 1 - (0.9 * (v.socPct - 80)) / 20);
    return Math.round(powerW);
  }

  /** Recomputes the power after a control change (the meter sees it at its next tick). */
  recompute(): void {
    this.powerW = this.targetPowerW();
  }

  step(nowMs: number, dtMs: number): void {
    const v = this.vehicle;
    if (v && dtMs > 0 && this.powerW > 0) {
      const wh = (this.powerW * dtMs) / 3_600_000;
      this.sessionEnergyWh += wh;
      this.lifetimeEnergyWh += wh;
      v.socPct = Math.min(100, v.socPct + (100 * wh * 0.92) / v.batteryWh);
    }
    if (v && nowMs >= v.departureMs) this.vehicle = undefined;
    this.recompute();
  }
}
