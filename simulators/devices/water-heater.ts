/**
 * An electric water heater: a 150 l tank with a 2 kW element under its own thermostat (heats below
 * 55 °C until 60 °C), losing heat to the room and to seeded hot-water draws. Its supply is switched
 * by a smart plug (`supplyOn`): with the supply off the element cannot heat.
 */
import type { Clock } from '../../drivers/clock.js';
import { hashNoise } from '../rng.js';
import type { Stepper } from '../ticker.js';

const WATER_J_PER_L_K = 4186;

export interface WaterHeaterOptions {
  clock: Clock;
  seed?: number;
  elementW?: number;
  tankL?: number;
  initialC?: number;
}

export class WaterHeater implements Stepper {
  supplyOn = true;
  tankC: number;
  powerW = 0;
  energyWh = 0;
  readonly elementW: number;
  private heating = false;
  private readonly tankL: number;
  private readonly seed: number;

  constructor(options: WaterHeaterOptions) {
    this.elementW = options.elementW ?? 2000;
    this.tankL = options.tankL ?? 150;
    this.tankC = options.initialC ?? 54;
    this.seed = options.seed ?? 1;
    this.heating = this.tankC < 55;
    this.recompute();
  }

  recompute(): void {
    this.powerW = this.supplyOn && this.heating ? this.elementW : 0;
  }

  step(nowMs: number, dtMs: number): void {
    if (dtMs > 0) {
      const dtS = dtMs / 1000;
      const capacityJPerK = this.tankL * WATER_J_PER_L_K;
      const lossW = (this.tankC - 20) * 1.5;
      // A draw of hot water now and then (seeded per minute): ~10 l replaced by 12 °C water.
      const minute = Math.floor(nowMs / 60_000);
      const drawLPerS = hashNoise(this.seed ^ 0x2545f491, minute) > 0.97 ? 0.1 : 0;
      const drawW = drawLPerS * WATER_J_PER_L_K * (this.tankC - 12);
      this.tankC += ((this.powerW - lossW - drawW) * dtS) / capacityJPerK;
      this.energyWh += (this.powerW * dtMs) / 3_600_000;
    }
    if (this.tankC < 55) this.heating = true;
    if (this.tankC >= 60) this.heating = false;
    this.recompute();
  }
}
