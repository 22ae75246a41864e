/**
 * A Lambda EU-L heat pump (also Zewotherm EU-L), encoded as the vendor documents it
 * (/work/notes/vendor-layouts.md §4), in front of a HeatPump. Holding registers only (FC4 → exception
 * 2), numbered module × 1000 + index × 100 + register; writes only as FC16 (FC6 → exception 1):
 * - 0 error number, 2 outdoor temperature (int16 × 0.1 °C); 3 its 1 h average, 4 the calculated one;
 * - 100 error number, 101 operating state (1 automatik), 102 PV excess power (int16 W, RW: the heat
 *   pump runs at least at it; falls back to 0 after 60 s without a write, its watchdog), 103 actual
 *   electrical power (int16 W);
 * - 1012 actual electrical power again (int16 W; where evcc reads it on firmware ≥ 1.1.3);
 * - 1020-1021 accumulated electrical energy (int32 Wh): high word first before firmware 1.1.3, LOW
 *   word first from 1.1.3 on;
 * - 5004 room temperature (int16 × 0.1 °C), 5006 operating mode (2 automatik), 5050 flow temperature
 *   offset (int16 × 0.1 K, −10.0..+10.0, RW, stays until written), 5051 room heating setpoint (int16 ×
 *   0.1 °C, 15.0..40.0, RW). Values out of range → exception 3.
 */
import type { Clock } from '../../drivers/clock.js';
import { ExceptionCode, RegisterImage } from '../modbus/image.js';
import { RevertTimer, type Stepper } from '../ticker.js';
import type { HeatPump } from './heat-pump.js';

export const LAMBDA_UNIT_ID = 1;
export const LAMBDA_EXCESS_WATCHDOG_MS = 60_000;
export type LambdaFirmware = '<1.1.3' | '>=1.1.3';
export const LAMBDA_REGISTERS = {
  errorNumber: 0,
  outdoorC: 2,
  emOperatingState: 101,
  excessPowerW: 102,
  powerW: 103,
  hpPowerW: 1012,
  energyWh: 1020,
  roomC: 5004,
  hcOperatingMode: 5006,
  flowOffsetK: 5050,
  roomSetpointC: 5051,
} as const;
const R = LAMBDA_REGISTERS;

const int16 = (v: number) => Math.max(-32768, Math.min(32767, Math.round(v))) & 0xffff;
const toInt16 = (raw: number) => (raw & 0x8000 ? raw - 0x10000 : raw);

export interface LambdaHeatPumpOptions {
  /** Default: the heat pump's. */
  clock?: Clock;
  /** Word order of the energy counter at 1020. Default '>=1.1.3' (low word first). */
  firmware?: LambdaFirmware;
}

export class LambdaHeatPump implements Stepper {
  readonly image = new RegisterImage();
  readonly firmware: LambdaFirmware;
  private readonly watchdog: RevertTimer;
  private readonly clock: Clock;
  /** Writes of register 102 seen (for tests). */
  excessWrites = 0;

  constructor(
    readonly heatPump: HeatPump,
    options: LambdaHeatPumpOptions = {},
  ) {
    this.clock = options.clock ?? heatPump.clock;
    this.firmware = options.firmware ?? '>=1.1.3';
    this.watchdog = new RevertTimer(this.clock);
    const img = this.image;
    img.quirks = { refuseFc6: true };
    img.defineBlock(0, 5, 'holding');
    img.defineBlock(100, 5, 'holding');
    img.defineBlock(1000, 22, 'holding');
    img.defineBlock(5000, 7, 'holding');
    img.defineBlock(5050, 2, 'holding');
    img.setWritable(R.excessPowerW, 1);
    img.setWritable(R.flowOffsetK, 2);
    img.set(R.emOperatingState, [1]); // automatik
    img.set(R.hcOperatingMode, [2]); // automatik
    img.addWriteHook({
      validate: (w) => {
        for (let i = 0; i < w.values.length; i++) {
          const a = w.address + i;
          const v = toInt16(w.values[i]!);
          if (a === R.flowOffsetK && (v < -100 || v > 100)) return ExceptionCode.IllegalDataValue;
          if (a === R.roomSetpointC && (v < 150 || v > 400)) return ExceptionCode.IllegalDataValue;
        }
        return undefined;
      },
      apply: (w) => {
        for (let i = 0; i < w.values.length; i++) {
          const a = w.address + i;
          const v = toInt16(w.values[i]!);
          if (a === R.flowOffsetK) heatPump.flowOffsetC = v / 10;
          if (a === R.roomSetpointC) heatPump.roomSetpointC = v / 10;
          if (a === R.excessPowerW) this.onExcessWrite(v);
        }
        heatPump.recompute();
        this.encode();
      },
    });
    this.encode();
  }

  /** PV excess power as the register holds it (W; 0 after the watchdog). */
  get excessPowerW(): number {
    return this.heatPump.excessPowerW;
  }

  /** Clock ms until the excess power watchdog resets register 102 (0 when not armed). */
  watchdogRemainingMs(): number {
    return this.watchdog.remainingMs();
  }

  private onExcessWrite(powerW: number): void {
    this.excessWrites++;
    this.heatPump.excessPowerW = powerW;
    this.watchdog.arm(LAMBDA_EXCESS_WATCHDOG_MS, () => {
      this.heatPump.excessPowerW = 0;
      this.heatPump.recompute();
      this.encode();
    });
  }

  step(): void {
    this.encode();
  }

  /** Stops the watchdog timer. */
  stop(): void {
    this.watchdog.cancel();
  }

  private encode(): void {
    const hp = this.heatPump;
    const img = this.image;
    const outdoor = int16(hp.outdoorC * 10);
    // 2 actual, 3 average of the last hour (≈ the value half an hour ago), 4 calculated (= actual).
    img.set(R.outdoorC, [outdoor, int16(hp.outdoorAt(this.clock.now() - 1_800_000) * 10), outdoor]);
    img.set(R.excessPowerW, [int16(hp.excessPowerW)]);
    img.set(R.powerW, [int16(hp.electricalPowerW)]);
    img.set(R.hpPowerW, [int16(hp.electricalPowerW)]);
    const wh = Math.max(0, Math.min(0x7fffffff, Math.floor(hp.energyWh)));
    const high = Math.floor(wh / 0x10000);
    const low = wh % 0x10000;
    img.set(R.energyWh, this.firmware === '<1.1.3' ? [high, low] : [low, high]);
    img.set(R.roomC, [int16(hp.indoorC * 10)]);
    img.set(R.flowOffsetK, [int16(hp.flowOffsetC * 10)]);
    img.set(R.roomSetpointC, [int16(hp.roomSetpointC * 10)]);
  }
}
