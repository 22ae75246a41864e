/**
 * An EV charging session behind a charger, shared by the charger front ends (phoenix-ev.ts,
 * abl-ev.ts), which only encode it the way their vendor does.
 *
 * A vehicle arrives (seeded: around 17:30 local time every day, or `plugIn()` from a test) with a
 * state of charge and an energy need (8–30 kWh), and leaves at its departure time (around 07:00 the
 * next day) whether or not it got it. While plugged it draws, when the charger is enabled and offers
 * at least 6 A, phases × 230 V × min(offered current, onboard charger limit, charger limit), until it
 * has the energy it wanted or is full; above 80 % state of charge the power tapers linearly (to 10 %
 * of it at 100 %). IEC 61851 states: A no vehicle, B vehicle connected and not drawing, C charging.
 */
import type { Clock } from '../../drivers/clock.js';
import { hashNoise } from '../rng.js';
import type { Stepper } from '../ticker.js';

export const NOMINAL_VOLTAGE_V = 230;
/** The smallest current IEC 61851 lets a charger offer. */
export const MIN_CHARGE_CURRENT_A = 6;
const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;
/** Share of the energy drawn from the grid that ends up in the vehicle's battery. */
const CHARGE_EFFICIENCY = 0.92;

/** IEC 61851 control pilot states the simulator uses. */
export type PilotState = 'A' | 'B' | 'C';

export interface VehicleSession {
  /** Energy the driver wants charged (from the grid) before leaving. */
  energyWantedWh: number;
  departureMs: number;
  socPct: number;
  batteryWh: number;
  /** Onboard charger limit per phase. */
  maxCurrentA: number;
  phases: 1 | 3;
  arrivedMs: number;
}

/** A finished session (the vehicle left or was unplugged). */
export interface SessionRecord {
  arrivedMs: number;
  leftMs: number;
  departureMs: number;
  energyWantedWh: number;
  energyChargedWh: number;
  /** The vehicle left with at least the energy it wanted (or full). */
  satisfied: boolean;
}

export interface EvChargingOptions {
  clock: Clock;
  /** Seeds the daily arrivals. Default 1. */
  seed?: number;
  /** Charger hardware limit per phase (cable / installation). Default 16. */
  maxCurrentA?: number;
  /** Phases the charger supplies. Default 3. */
  phases?: 1 | 3;
  /** Lifetime energy counter at start. Default 1 250 000 Wh. */
  initialEnergyWh?: number;
  /** Seeded daily arrivals (around 17:30, leaving around 07:00). Default true. */
  arrivals?: boolean;
  /** Local time = UTC + this many hours (for arrival and departure times). Default 0. */
  utcOffsetHours?: number;
  /** The household's vehicle. Defaults: 60 kWh battery, 16 A onboard charger on 3 phases. */
  vehicle?: { batteryWh?: number; maxCurrentA?: number; phases?: 1 | 3 };
}

export interface PlugInOptions {
  energyWantedWh: number;
  /** Default: 07:00 local time after the next 07:00 that is at least 6 h away. */
  departureMs?: number;
  /** Default: 85 % minus what the wanted energy adds, at least 5 %. */
  socPct?: number;
  batteryWh?: number;
  maxCurrentA?: number;
  phases?: 1 | 3;
}

export class EvCharging implements Stepper {
  /** Current the charger offers per phase (below 6 A: none, paused). Set by the front end. */
  offeredCurrentA: number;
  /** Charging is allowed by the charger's controller. Set by the front end. */
  enabled = true;
  vehicle: VehicleSession | undefined;
  /** Power drawn now (W). */
  powerW = 0;
  /** Energy of the current (or last) session (Wh). */
  sessionEnergyWh = 0;
  lifetimeEnergyWh: number;
  /** When the current (or last) session began (epoch ms). */
  sessionStartedMs = 0;
  /** Finished sessions, oldest first. */
  readonly sessions: SessionRecord[] = [];
  readonly maxCurrentA: number;
  readonly phases: 1 | 3;
  readonly clock: Clock;
  private readonly seed: number;
  private readonly arrivals: boolean;
  private readonly utcOffsetMs: number;
  private readonly vehicleDefaults: { batteryWh: number; maxCurrentA: number; phases: 1 | 3 };
  /** The last local day whose arrival has happened (or was skipped). */
  private arrivalDayDone: number;

  constructor(options: EvChargingOptions) {
    this.clock = options.clock;
    this.seed = options.seed ?? 1;
    this.maxCurrentA = options.maxCurrentA ?? 16;
    this.phases = options.phases ?? 3;
    this.offeredCurrentA = this.maxCurrentA;
    this.lifetimeEnergyWh = options.initialEnergyWh ?? 1_250_000;
    this.arrivals = options.arrivals ?? true;
    this.utcOffsetMs = (options.utcOffsetHours ?? 0) * HOUR_MS;
    this.vehicleDefaults = { batteryWh: options.vehicle?.batteryWh ?? 60_000, maxCurrentA: options.vehicle?.maxCurrentA ?? 16, phases: options.vehicle?.phases ?? 3 };
    // An arrival that was due before the simulation started is not replayed.
    const now = this.clock.now();
    const today = this.localDay(now);
    this.arrivalDayDone = now >= this.arrivalMs(today) ? today : today - 1;
  }

  get pilot(): PilotState {
    if (!this.vehicle) return 'A';
    return this.powerW > 0 ? 'C' : 'B';
  }

  get plugged(): boolean {
    return this.vehicle !== undefined;
  }

  /** Phases the vehicle draws on now (0 when not charging). */
  get activePhases(): 0 | 1 | 3 {
    if (this.powerW <= 0 || !this.vehicle) return 0;
    return Math.min(this.phases, this.vehicle.phases) as 1 | 3;
  }

  /** Current per active phase now (A). */
  get currentA(): number {
    const phases = this.activePhases;
    return phases === 0 ? 0 : this.powerW / phases / NOMINAL_VOLTAGE_V;
  }

  /** The vehicle still wants energy (and is not full). */
  get wantsEnergy(): boolean {
    const v = this.vehicle;
    return v !== undefined && this.sessionEnergyWh < v.energyWantedWh && v.socPct < 100;
  }

  /** Seeded arrival time of a local day (epoch ms): 17:30 ± 1 h. */
  arrivalMs(localDay: number): number {
    const jitterMs = (hashNoise(this.seed ^ 0x3c6ef372, localDay * 3) - 0.5) * 2 * HOUR_MS;
    return localDay * DAY_MS + 17.5 * HOUR_MS + jitterMs - this.utcOffsetMs;
  }

  plugIn(session: PlugInOptions): void {
    const now = this.clock.now();
    if (this.vehicle) this.finishSession(now);
    const batteryWh = session.batteryWh ?? this.vehicleDefaults.batteryWh;
    const socPct = session.socPct ?? Math.max(5, 85 - (100 * session.energyWantedWh * CHARGE_EFFICIENCY) / batteryWh);
    this.vehicle = {
      energyWantedWh: session.energyWantedWh,
      departureMs: session.departureMs ?? this.defaultDepartureMs(now),
      socPct,
      batteryWh,
      maxCurrentA: session.maxCurrentA ?? this.vehicleDefaults.maxCurrentA,
      phases: session.phases ?? this.vehicleDefaults.phases,
      arrivedMs: now,
    };
    this.sessionEnergyWh = 0;
    this.sessionStartedMs = now;
    this.recompute();
  }

  unplug(): void {
    if (this.vehicle) this.finishSession(this.clock.now());
    this.recompute();
  }

  /** Recomputes the power after a control change (the site meter sees it at its next tick). */
  recompute(): void {
    this.powerW = this.targetPowerW();
  }

  step(nowMs: number, dtMs: number): void {
    const v = this.vehicle;
    if (v && dtMs > 0 && this.powerW > 0) {
      const wh = (this.powerW * dtMs) / HOUR_MS;
      this.sessionEnergyWh += wh;
      this.lifetimeEnergyWh += wh;
      v.socPct = Math.min(100, v.socPct + (100 * wh * CHARGE_EFFICIENCY) / v.batteryWh);
    }
    if (v && nowMs >= v.departureMs) this.finishSession(nowMs);
    if (this.arrivals) this.maybeArrive(nowMs);
    this.recompute();
  }

  private maybeArrive(nowMs: number): void {
    const day = this.localDay(nowMs);
    if (day <= this.arrivalDayDone || nowMs < this.arrivalMs(day)) return;
    this.arrivalDayDone = day;
    if (this.vehicle) return; // still plugged from before: no second car
    const energyWantedWh = Math.round(8000 + 22_000 * hashNoise(this.seed ^ 0x3c6ef372, day * 3 + 1));
    const departureJitterMs = (hashNoise(this.seed ^ 0x3c6ef372, day * 3 + 2) - 0.5) * HOUR_MS;
    const departureMs = (day + 1) * DAY_MS + 7 * HOUR_MS + departureJitterMs - this.utcOffsetMs;
    this.plugIn({ energyWantedWh, departureMs });
  }

  private finishSession(nowMs: number): void {
    const v = this.vehicle;
    if (!v) return;
    this.sessions.push({
      arrivedMs: v.arrivedMs,
      leftMs: nowMs,
      departureMs: v.departureMs,
      energyWantedWh: v.energyWantedWh,
      energyChargedWh: this.sessionEnergyWh,
      satisfied: this.sessionEnergyWh >= v.energyWantedWh - 1 || v.socPct >= 100,
    });
    this.vehicle = undefined;
  }

  private localDay(timeMs: number): number {
    return Math.floor((timeMs + this.utcOffsetMs) / DAY_MS);
  }

  private defaultDepartureMs(nowMs: number): number {
    let day = this.localDay(nowMs);
    let departureMs = day * DAY_MS + 7 * HOUR_MS - this.utcOffsetMs;
    while (departureMs < nowMs + 6 * HOUR_MS) departureMs = ++day * DAY_MS + 7 * HOUR_MS - this.utcOffsetMs;
    return departureMs;
  }

  /** Power the vehicle draws at the offered current. */
  private targetPowerW(): number {
    const v = this.vehicle;
    if (!v || !this.enabled || this.offeredCurrentA < MIN_CHARGE_CURRENT_A || !this.wantsEnergy) return 0;
    const currentA = Math.min(this.offeredCurrentA, v.maxCurrentA, this.maxCurrentA);
    const phases = Math.min(this.phases, v.phases);
    let powerW = phases * NOMINAL_VOLTAGE_V * currentA;
    // Constant current up to 80 %, then a linear taper to 10 % of it at 100 %.
    if (v.socPct > 80) powerW *= Math.max(0.1, 1 - (0.9 * (v.socPct - 80)) / 20);
    return Math.round(powerW);
  }
}
