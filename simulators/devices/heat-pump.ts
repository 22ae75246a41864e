/**
 * A heat pump heating a house, shared by the register front ends (lambda-heat-pump.ts,
 * stiebel-wpm.ts), which only encode it the way their vendor does.
 *
 * - House: one thermal resistance to outdoors and one capacitance (1R1C):
 *   C · dT_in/dt = Q_heat − (T_in − T_out) / R. Defaults R = 0.005 K/W (4 kW loss at 20 K),
 *   C = 2e7 J/K (τ = RC ≈ 28 h: with the heat pump off the room cools ~0.5 K/h at 14 K difference).
 * - Outdoor: a daily sine, coldest at 05:00 and warmest at 17:00 local time (default 2 ± 5 °C, i.e.
 *   −3..+7 °C), plus a seeded slow wander of ±1 K.
 * - Heating curve: flow = target + (target − outdoor) / (R · K_emitter) (the flow at which the
 *   emitters balance the house's loss at the room target), + the flow offset (K), + a room influence
 *   of 3 K per K the room is below its target; limited to 20..55 °C. Heat output = K_emitter ·
 *   (flow − room), K_emitter = 300 W/K, so the compressor modulates on the room error and the offset.
 * - COP = 0.45 · Carnot between flow + 5 K and outdoor − 5 K, within 1.5..6 (≈ 2.8–4.2 in the
 *   default climate); electrical power = heat / COP, at most `maxElectricalPowerW` (3 kW).
 * - SG Ready (1 blocked: compressor off, frost protection below 10 °C only; 2 normal; 3 encouraged:
 *   room target + 1 K; 4 forced: full power). PV excess power (Lambda's E-manager): the compressor runs
 *   at least at the excess (up to full power) while the room is below target + 2 K.
 * Energy counters integrate the power held over each tick.
 */
import type { Clock } from '../../drivers/clock.js';
import { smoothNoise } from '../rng.js';
import type { Stepper } from '../ticker.js';

/** SG Ready operating states: 1 blocked, 2 normal, 3 encouraged, 4 forced. */
export type SgReadySimState = 1 | 2 | 3 | 4;

export interface HeatPumpOptions {
  clock: Clock;
  seed?: number;
  /** House thermal resistance to outdoors (K/W). Default 0.005. */
  resistanceKPerW?: number;
  /** House heat capacity (J/K). Default 2e7. */
  capacitanceJPerK?: number;
  /** Daily outdoor temperature: mean and amplitude (°C). Default 2 ± 5. */
  outdoorMeanC?: number;
  outdoorAmplitudeC?: number;
  /** Local time = UTC + this many hours (for the daily profile). Default 0. */
  utcOffsetHours?: number;
  initialIndoorC?: number;
  roomSetpointC?: number;
  /** Largest electrical power (W). Default 3000. */
  maxElectricalPowerW?: number;
  /** Electrical energy counter at start (Wh). Default 4 800 000. */
  initialEnergyWh?: number;
}

/** Heat emitter conductance (W/K between flow temperature and room). */
export const EMITTER_W_PER_K = 300;
const ROOM_INFLUENCE_K_PER_K = 3;
const MIN_FLOW_C = 20;
const MAX_FLOW_C = 55;
const FROST_PROTECTION_C = 10;
const HOUR_MS = 3_600_000;

export class HeatPump implements Stepper {
  indoorC: number;
  outdoorC = 0;
  /** Room heating setpoint (°C). */
  roomSetpointC: number;
  /** Offset of the flow temperature setpoint (K). */
  flowOffsetC = 0;
  sgReady: SgReadySimState = 2;
  /** PV excess power offered by an energy manager (W, 0 = none). */
  excessPowerW = 0;
  /** Electrical power drawn now (W, whole watts). */
  electricalPowerW = 0;
  /** Heat delivered now (W). */
  heatW = 0;
  /** Flow temperature now (°C). */
  flowC = 0;
  cop = 0;
  /** Electrical energy drawn, lifetime (Wh). */
  energyWh: number;
  /** Heat delivered, lifetime (Wh). */
  heatEnergyWh: number;
  readonly maxElectricalPowerW: number;
  readonly resistanceKPerW: number;
  readonly capacitanceJPerK: number;
  readonly clock: Clock;
  private readonly options: HeatPumpOptions;

  constructor(options: HeatPumpOptions) {
    this.options = options;
    this.clock = options.clock;
    this.resistanceKPerW = options.resistanceKPerW ?? 0.005;
    this.capacitanceJPerK = options.capacitanceJPerK ?? 2e7;
    this.indoorC = options.initialIndoorC ?? 21;
    this.roomSetpointC = options.roomSetpointC ?? 21;
    this.maxElectricalPowerW = options.maxElectricalPowerW ?? 3000;
    this.energyWh = options.initialEnergyWh ?? 4_800_000;
    this.heatEnergyWh = this.energyWh * 3.5;
    this.outdoorC = this.outdoorAt(options.clock.now());
    this.recompute();
  }

  /** The room temperature the heat pump aims for now (setpoint, +1 K when SG Ready encourages). */
  get targetC(): number {
    return this.roomSetpointC + (this.sgReady === 3 ? 1 : 0);
  }

  get compressorOn(): boolean {
    return this.electricalPowerW > 0;
  }

  outdoorAt(timeMs: number): number {
    const mean = this.options.outdoorMeanC ?? 2;
    const amplitude = this.options.outdoorAmplitudeC ?? 5;
    const localMs = timeMs + (this.options.utcOffsetHours ?? 0) * HOUR_MS;
    const hour = (((localMs / HOUR_MS) % 24) + 24) % 24;
    const daily = -Math.cos((2 * Math.PI * (hour - 5)) / 24);
    const wander = 2 * (smoothNoise(this.options.seed ?? 1, timeMs, 6 * HOUR_MS) - 0.5);
    return mean + amplitude * daily + wander;
  }

  /** Flow temperature of the heating curve (°C) for the current outdoor and room temperatures. */
  heatingCurveC(): number {
    const target = this.targetC;
    const slope = 1 / (this.resistanceKPerW * EMITTER_W_PER_K);
    const curveC = target + slope * Math.max(0, target - this.outdoorC);
    const roomInfluenceK = ROOM_INFLUENCE_K_PER_K * (target - this.indoorC);
    return Math.max(MIN_FLOW_C, Math.min(MAX_FLOW_C, curveC + this.flowOffsetC + roomInfluenceK));
  }

  copAt(flowC: number): number {
    const hotK = flowC + 5 + 273.15;
    const liftK = Math.max(5, flowC + 5 - (this.outdoorC - 5));
    return Math.max(1.5, Math.min(6, (0.45 * hotK) / liftK));
  }

  /** Recomputes flow, heat and power after a control change or a step. */
  recompute(): void {
    const max = this.maxElectricalPowerW;
    let flowC = this.heatingCurveC();
    let heatW = Math.max(0, EMITTER_W_PER_K * (flowC - this.indoorC));
    let cop = this.copAt(flowC);
    let electricalW = Math.min(max, heatW / cop);
    if (this.sgReady === 4) electricalW = max;
    else if (this.excessPowerW > 0 && this.indoorC < this.targetC + 2) electricalW = Math.max(electricalW, Math.min(max, this.excessPowerW));
    if (this.sgReady === 1 && this.indoorC >= FROST_PROTECTION_C) electricalW = 0;
    electricalW = Math.round(electricalW);
    if (electricalW > 0) {
      // The flow temperature at which the emitters give off what the compressor delivers.
      heatW = electricalW * cop;
      flowC = this.indoorC + heatW / EMITTER_W_PER_K;
      cop = this.copAt(flowC);
      heatW = electricalW * cop;
    } else {
      heatW = 0;
      flowC = this.indoorC;
    }
    this.electricalPowerW = electricalW;
    this.cop = cop;
    this.heatW = heatW;
    this.flowC = flowC;
  }

  /** Heat lost to outdoors now (W). */
  get lossW(): number {
    return (this.indoorC - this.outdoorC) / this.resistanceKPerW;
  }

  step(nowMs: number, dtMs: number): void {
    if (dtMs > 0) {
      const dtS = dtMs / 1000;
      this.indoorC += ((this.heatW - this.lossW) * dtS) / this.capacitanceJPerK;
      this.energyWh += (this.electricalPowerW * dtMs) / HOUR_MS;
      this.heatEnergyWh += (this.heatW * dtMs) / HOUR_MS;
    }
    this.outdoorC = this.outdoorAt(nowMs);
    this.recompute();
  }
}
