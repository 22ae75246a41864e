/**
 * A heat pump heating a house: the house is one thermal resistance and one capacitance (1R1C), the
 * outdoor temperature follows a seeded daily profile, the heat pump follows a heating curve (flow
 * temperature from the outdoor temperature, the room setpoint and an offset) and its electrical power
 * is the heat it delivers over a COP that falls as the lift (flow − outdoor) grows. SG Ready states
 * act on it as the label defines: blocked = compressor off, encouraged = room target +1 K, forced =
 * full power. The register front ends (lambda-heat-pump.ts, stiebel-wpm.ts) encode it.
 */
import type { Clock } from '../../drivers/clock.js';
import { smoothNoise } from '../rng.js';
import type { Stepper } from '../ticker.js';

export type SgReadySimState = 1 | 2 | 3 | 4;

export interface HeatPumpOptions {
  clock: Clock;
  seed?: number;
  /** House thermal resistance to outdoors (K/W). Default 0.005 (4 kW loss at 20 K). */
  resistanceKPerW?: number;
  /** House heat capacity (J/K). Default 2e7 (~0.7 K/h cooling at 20 K when off). */
  capacitanceJPerK?: number;
  /** Daily outdoor temperature: mean and amplitude (°C). Default 2 ± 4. */
  outdoorMeanC?: number;
  outdoorAmplitudeC?: number;
  initialIndoorC?: number;
  roomSetpointC?: number;
  /** Largest electrical power (W). Default 3000. */
  maxElectricalPowerW?: number;
  initialEnergyWh?: number;
}

/** Heat emitter conductance (W/K between flow temperature and room). */
const EMITTER_W_PER_K = 300;

export class HeatPump implements Stepper {
  indoorC: number;
  outdoorC = 0;
  roomSetpointC: number;
  /** Offset of the flow temperature setpoint (K). */
  flowOffsetC = 0;
  sgReady: SgReadySimState = 2;
  electricalPowerW = 0;
  heatW = 0;
  flowC = 0;
  energyWh: number;
  /** Electrical energy split by use, for vendors that count it that way. */
  readonly maxElectricalPowerW: number;
  private readonly options: HeatPumpOptions;
  private readonly resistanceKPerW: number;
  private readonly capacitanceJPerK: number;

  constructor(options: HeatPumpOptions) {
    this.options = options;
    this.resistanceKPerW = options.resistanceKPerW ?? 0.005;
    this.capacitanceJPerK = options.capacitanceJPerK ?? 2e7;
    this.indoorC = options.initialIndoorC ?? 21;
    this.roomSetpointC = options.roomSetpointC ?? 21;
    this.maxElectricalPowerW = options.maxElectricalPowerW ?? 3000;
    this.energyWh = options.initialEnergyWh ?? 4_800_000;
    this.outdoorC = this.outdoorAt(options.clock.now());
    this.recompute();
  }

  outdoorAt(timeMs: number): number {
    const mean = this.options.outdoorMeanC ?? 2;
    const amplitude = this.options.outdoorAmplitudeC ?? 4;
    const hour = (((timeMs / 3_600_000) % 24) + 24) % 24;
    // Coldest around 05:00, warmest around 17:00, with a slow seeded wander of ±1 K.
    const daily = -Math.cos((2 * Math.PI * (hour - 5)) / 24);
    const wander = 2 * (smoothNoise(this.options.seed ?? 1, timeMs, 3 * 3_600_000) - 0.5);
    return mean + amplitude * daily + wander;
  }

  private cop(flowC: number): number {
    const liftK = Math.max(5, flowC - this.outdoorC);
    return Math.max(1.5, Math.min(6, (0.45 * (flowC + 273.15)) / liftK));
  }

  /** Recomputes power after a control change or a step. */
  recompute(): void {
    const targetC = this.roomSetpointC + (this.sgReady === 3 ? 1 : 0);
    // Heating curve: the flow temperature at which the emitters balance the house's loss at the target.
    const ratio = 1 / (this.resistanceKPerW * EMITTER_W_PER_K);
    this.flowC = targetC + ratio * Math.max(0, targetC - this.outdoorC) + this.flowOffsetC;
    const cop = this.cop(this.flowC);
    let heatW = Math.max(0, EMITTER_W_PER_K * (this.flowC - this.indoorC));
    if (this.sgReady === 4) heatW = this.maxElectricalPowerW * cop;
    if (this.sgReady === 1) heatW = 0;
    heatW = Math.min(heatW, this.maxElectricalPowerW * cop);
    this.heatW = heatW;
    this.electricalPowerW = Math.round(heatW / cop);
  }

  step(nowMs: number, dtMs: number): void {
    if (dtMs > 0) {
      const dtS = dtMs / 1000;
      const lossW = (this.indoorC - this.outdoorC) / this.resistanceKPerW;
      this.indoorC += ((this.heatW - lossW) * dtS) / this.capacitanceJPerK;
      this.energyWh += (this.electricalPowerW * dtMs) / 3_600_000;
    }
    this.outdoorC = this.outdoorAt(nowMs);
    this.recompute();
  }
}
