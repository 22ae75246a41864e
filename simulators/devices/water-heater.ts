/**
 * An electric water heater: a 150 l tank with a 2 kW element under its own thermostat (switches on
 * below 55 °C, off at 60 °C), losing 1.5 W/K to a 20 °C room and heat to seeded hot-water draws (6 l
 * a minute of water replaced by 12 °C water, ~150 l a day, mostly in the morning and the evening). Its supply is
 * switched by a smart plug (`supplyOn`): with the supply off the element cannot heat, and the
 * thermostat keeps calling for heat until it gets it back.
 * Energy account: element energy in = tank energy change + standing losses + heat carried off by
 * draws (`energyWh`, `tankEnergyWh()`, `lossWh`, `drawWh`).
 */
import type { Clock } from '../../drivers/clock.js';
import { hashNoise } from '../rng.js';
import type { Stepper } from '../ticker.js';

export const WATER_J_PER_L_K = 4186;
const ROOM_C = 20;
const COLD_WATER_C = 12;
const LOSS_W_PER_K = 1.5;
const DRAW_L_PER_S = 0.1;
const HOUR_MS = 3_600_000;

export interface WaterHeaterOptions {
  clock: Clock;
  seed?: number;
  elementW?: number;
  tankL?: number;
  /** Tank temperature at start (°C). Default 54 (the thermostat is calling for heat). */
  initialC?: number;
  /** Thermostat: on below this (°C). Default 55. */
  thermostatOnBelowC?: number;
  /** Thermostat: off at this (°C). Default 60. */
  thermostatOffAtC?: number;
  /** Seeded hot water draws. Default true. */
  draws?: boolean;
  /** Local time = UTC + this many hours (for the draw profile). Default 0. */
  utcOffsetHours?: number;
}

/** Chance that hot water is drawn during a minute at this local hour. */
function drawProbability(hour: number): number {
  if (hour >= 6.5 && hour < 8) return 0.12;
  if (hour >= 18 && hour < 22) return 0.04;
  if (hour >= 8 && hour < 18) return 0.005;
  return 0.001;
}

export class WaterHeater implements Stepper {
  /** The supply (the smart plug's relay). */
  supplyOn = true;
  tankC: number;
  /** Electrical power now (W). */
  powerW = 0;
  /** Electrical energy, lifetime of the simulation (Wh). */
  energyWh = 0;
  /** Heat lost through the tank wall (Wh). */
  lossWh = 0;
  /** Heat carried off by hot water draws (Wh, relative to cold water). */
  drawWh = 0;
  /** Hot water drawn (l). */
  drawnL = 0;
  /** Hot water is being drawn in the current minute. */
  drawing = false;
  readonly elementW: number;
  readonly tankL: number;
  private thermostatCalling: boolean;
  private readonly seed: number;
  private readonly onBelowC: number;
  private readonly offAtC: number;
  private readonly draws: boolean;
  private readonly utcOffsetHours: number;

  constructor(options: WaterHeaterOptions) {
    this.elementW = options.elementW ?? 2000;
    this.tankL = options.tankL ?? 150;
    this.tankC = options.initialC ?? 54;
    this.seed = options.seed ?? 1;
    this.onBelowC = options.thermostatOnBelowC ?? 55;
    this.offAtC = options.thermostatOffAtC ?? 60;
    this.draws = options.draws ?? true;
    this.utcOffsetHours = options.utcOffsetHours ?? 0;
    this.thermostatCalling = this.tankC < this.onBelowC;
    this.recompute();
  }

  /** The thermostat calls for heat (whether or not the supply is on). */
  get heating(): boolean {
    return this.thermostatCalling;
  }

  /** Heat stored in the tank above cold water (Wh). */
  tankEnergyWh(): number {
    return (this.tankL * WATER_J_PER_L_K * (this.tankC - COLD_WATER_C)) / 3600;
  }

  recompute(): void {
    this.powerW = this.supplyOn && this.thermostatCalling ? this.elementW : 0;
  }

  private drawAt(nowMs: number): boolean {
    if (!this.draws) return false;
    const minute = Math.floor(nowMs / 60_000);
    const hour = ((((nowMs / HOUR_MS + this.utcOffsetHours) % 24) + 24) % 24);
    return hashNoise(this.seed ^ 0x2545f491, minute) < drawProbability(hour);
  }

  step(nowMs: number, dtMs: number): void {
    if (dtMs > 0) {
      const dtS = dtMs / 1000;
      const capacityJPerK = this.tankL * WATER_J_PER_L_K;
      const lossW = (this.tankC - ROOM_C) * LOSS_W_PER_K;
      const drawW = this.drawing ? DRAW_L_PER_S * WATER_J_PER_L_K * (this.tankC - COLD_WATER_C) : 0;
      this.tankC += ((this.powerW - lossW - drawW) * dtS) / capacityJPerK;
      this.energyWh += (this.powerW * dtMs) / HOUR_MS;
      this.lossWh += (lossW * dtMs) / HOUR_MS;
      this.drawWh += (drawW * dtMs) / HOUR_MS;
      if (this.drawing) this.drawnL += DRAW_L_PER_S * dtS;
    }
    this.drawing = this.drawAt(nowMs);
    if (this.tankC < this.onBelowC) this.thermostatCalling = true;
    if (this.tankC >= this.offAtC) this.thermostatCalling = false;
    this.recompute();
  }
}
