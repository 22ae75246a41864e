/**
 * A Stiebel Eltron WPM heat pump manager with ISG, encoded as the vendor documents it
 * (/work/notes/vendor-layouts.md §3), in front of a HeatPump. Unit 1 on Modbus TCP.
 * - input 501 room temperature, 502 room setpoint, 507 outdoor, 517 buffer (= flow), 521 hot water:
 *   int16 × 0.1 °C (501..521 is one readable block, the registers between them read 0);
 * - input 3501 / 3502: electrical energy for heating / hot water, total, kWh (uint16);
 * - holding 4000 SG Ready on (1: inputs used, 0: ignored, state normal), 4001 / 4002 SG Ready inputs
 *   1 and 2 (0/1; other values → exception 3), written with FC6 (FC16 works too);
 * - input 5000: SG Ready operating state, from inputs (1,2): (0,0) 2 normal, (1,0) 3 encouraged,
 *   (0,1) 1 blocked, (1,1) 4 forced.
 * No electrical power register (a sub-meter measures it), no watchdog. The manufacturer asks for at
 * least 10 minutes between SG Ready state changes: the WPM follows at once, but counts every change
 * that came sooner (`tooSoonStateChanges`).
 */
import type { Clock } from '../../drivers/clock.js';
import { ExceptionCode, RegisterImage } from '../modbus/image.js';
import type { Stepper } from '../ticker.js';
import type { HeatPump, SgReadySimState } from './heat-pump.js';

export const STIEBEL_UNIT_ID = 1;
export const STIEBEL_MIN_STATE_INTERVAL_MS = 10 * 60_000;
export const STIEBEL_REGISTERS = {
  roomC: 501,
  roomSetpointC: 502,
  outdoorC: 507,
  bufferC: 517,
  hotWaterC: 521,
  heatingEnergyKwh: 3501,
  hotWaterEnergyKwh: 3502,
  sgReadyOn: 4000,
  sgReadyInput1: 4001,
  sgReadyInput2: 4002,
  sgReadyState: 5000,
} as const;
const R = STIEBEL_REGISTERS;

const int16 = (v: number) => Math.max(-32768, Math.min(32767, Math.round(v))) & 0xffff;

/** The SG Ready operating state of the (on, input 1, input 2) registers. */
export function sgStateFromInputs(on: number, in1: number, in2: number): SgReadySimState {
  if (on !== 1) return 2;
  if (in1 === 0 && in2 === 0) return 2;
  if (in1 === 1 && in2 === 0) return 3;
  if (in1 === 0 && in2 === 1) return 1;
  return 4;
}

export interface StiebelWpmOptions {
  /** Default: the heat pump's. */
  clock?: Clock;
  /** Register 4000 at start: the installer switched SG Ready on. Default true. */
  sgReadyOn?: boolean;
  /** Hot water energy counter (not simulated: constant), Wh. Default 1 650 000. */
  hotWaterEnergyWh?: number;
}

export class StiebelWpm implements Stepper {
  readonly image = new RegisterImage();
  /** Every change of the SG Ready operating state: clock time and new state. */
  readonly stateChanges: Array<{ atMs: number; state: SgReadySimState }> = [];
  /** State changes that came less than 10 minutes after the previous one. */
  tooSoonStateChanges = 0;
  private readonly clock: Clock;
  private readonly hotWaterEnergyWh: number;

  constructor(
    readonly heatPump: HeatPump,
    options: StiebelWpmOptions = {},
  ) {
    this.clock = options.clock ?? heatPump.clock;
    this.hotWaterEnergyWh = options.hotWaterEnergyWh ?? 1_650_000;
    const img = this.image;
    img.defineBlock(501, 21, 'input'); // 501..521
    img.defineBlock(3501, 2, 'input');
    img.defineBlock(4000, 3, 'holding');
    img.defineBlock(5000, 1, 'input');
    img.setWritable(R.sgReadyOn, 3);
    img.set(R.sgReadyOn, [(options.sgReadyOn ?? true) ? 1 : 0, 0, 0]);
    img.addWriteHook({
      validate: (w) => (w.values.some((v) => v > 1) ? ExceptionCode.IllegalDataValue : undefined),
      apply: () => this.applyInputs(),
    });
    this.applyInputs();
  }

  /** The SG Ready operating state (register 5000). */
  get sgReadyState(): SgReadySimState {
    return this.heatPump.sgReady;
  }

  private applyInputs(): void {
    const [on, in1, in2] = this.image.read(R.sgReadyOn, 3) as [number, number, number];
    const state = sgStateFromInputs(on, in1, in2);
    const hp = this.heatPump;
    if (state !== hp.sgReady) {
      const now = this.clock.now();
      const last = this.stateChanges.at(-1);
      if (last && now - last.atMs < STIEBEL_MIN_STATE_INTERVAL_MS) this.tooSoonStateChanges++;
      this.stateChanges.push({ atMs: now, state });
      hp.sgReady = state;
      hp.recompute();
    }
    this.encode();
  }

  step(): void {
    this.encode();
  }

  private encode(): void {
    const hp = this.heatPump;
    const img = this.image;
    img.set(R.roomC, [int16(hp.indoorC * 10), int16(hp.roomSetpointC * 10)]);
    img.set(R.outdoorC, [int16(hp.outdoorC * 10)]);
    img.set(R.bufferC, [int16(hp.flowC * 10)]);
    img.set(R.hotWaterC, [int16(48 * 10)]);
    img.set(R.heatingEnergyKwh, [Math.floor(hp.energyWh / 1000) % 0x10000, Math.floor(this.hotWaterEnergyWh / 1000) % 0x10000]);
    img.set(R.sgReadyState, [hp.sgReady]);
  }
}
