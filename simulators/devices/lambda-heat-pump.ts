/**
 * A Lambda EU-L heat pump, encoded as the vendor documents it (/work/notes/vendor-layouts.md §4):
 * holding registers only, numbered module × 1000 + index × 100 + register; int16 temperatures × 0.1;
 * writes only as FC16 (FC6 → exception 1); the accumulated electrical energy at 1020 as int32 with the
 * high word first before firmware 1.1.3 and the low word first from 1.1.3 on; the flow temperature
 * offset at 5050 (−10.0..+10.0 K) and the room setpoint at 5051 (15.0..40.0 °C) stay until written;
 * the PV excess power at 102 falls back to 0 after 60 s without a write (its watchdog).
 */
import { ExceptionCode, RegisterImage } from '../modbus/image.js';
import type { Stepper } from '../ticker.js';
import type { HeatPump } from './heat-pump.js';

const int16 = (v: number) => Math.max(-32768, Math.min(32767, Math.round(v))) & 0xffff;
const toInt16 = (raw: number) => (raw & 0x8000 ? raw - 0x10000 : raw);

export const LAMBDA_EXCESS_WATCHDOG_MS = 60_000;

export class LambdaHeatPump implements Stepper {
  readonly image = new RegisterImage();
  /** PV excess power last written (W), 0 after the watchdog. */
  excessPowerW = 0;
  private excessWrittenMs = 0;

  constructor(
    readonly heatPump: HeatPump,
    private readonly options: { firmware?: '<1.1.3' | '>=1.1.3'; now: () => number } ,
  ) {
    const img = this.image;
    img.quirks = { refuseFc6: true };
    img.defineBlock(0, 5);
    img.defineBlock(100, 5);
    img.defineBlock(1000, 22);
    img.defineBlock(5000, 7);
    img.defineBlock(5050, 2);
    img.setWritable(102, 1);
    img.setWritable(5050, 2);
    img.set(101, [1]); // automatik
    img.set(5006, [2]); // automatik
    img.addWriteHook({
      validate: (w) => {
        for (let i = 0; i < w.values.length; i++) {
          const a = w.address + i;
          const v = toInt16(w.values[i]!);
          if (a === 5050 && (v < -100 || v > 100)) return ExceptionCode.IllegalDataValue;
          if (a === 5051 && (v < 150 || v > 400)) return ExceptionCode.IllegalDataValue;
        }
        return undefined;
      },
      apply: (w) => {
        for (let i = 0; i < w.values.length; i++) {
          const a = w.address + i;
          const v = toInt16(w.values[i]!);
          if (a === 5050) heatPump.flowOffsetC = v / 10;
          if (a === 5051) heatPump.roomSetpointC = v / 10;
          if (a === 102) {
            this.excessPowerW = v;
            this.excessWrittenMs = options.now();
          }
        }
        heatPump.recompute();
        this.encode(options.now());
      },
    });
    this.encode(options.now());
  }

  step(nowMs: number): void {
    if (this.excessPowerW !== 0 && nowMs - this.excessWrittenMs >= LAMBDA_EXCESS_WATCHDOG_MS) this.excessPowerW = 0;
    this.encode(nowMs);
  }

  private encode(_nowMs: number): void {
    const hp = this.heatPump;
    const img = this.image;
    img.set(2, [int16(hp.outdoorC * 10)]);
    img.set(102, [int16(this.excessPowerW)]);
    img.set(103, [int16(hp.electricalPowerW)]);
    const wh = Math.max(0, Math.min(0x7fffffff, Math.round(hp.energyWh)));
    const high = Math.floor(wh / 0x10000) & 0xffff;
    const low = wh & 0xffff;
    img.set(1020, (this.options.firmware ?? '>=1.1.3') === '<1.1.3' ? [high, low] : [low, high]);
    img.set(5004, [int16(hp.indoorC * 10)]);
    img.set(5050, [int16(hp.flowOffsetC * 10)]);
    img.set(5051, [int16(hp.roomSetpointC * 10)]);
  }
}
