/**
 * A Stiebel Eltron WPM heat pump manager with ISG, encoded as the vendor documents it
 * (/work/notes/vendor-layouts.md §3): temperatures as int16 × 0.1 input registers, kWh counters, the
 * SG Ready inputs as holding registers 4000 (SG Ready on), 4001 and 4002 (inputs 1 and 2, FC6) and the
 * resulting operating state in input 5000 (1 blocked, 2 normal, 3 encouraged, 4 forced). Inputs
 * (0,0) normal, (1,0) encouraged, (0,1) blocked, (1,1) forced. No electrical power register.
 */
import { ExceptionCode, RegisterImage } from '../modbus/image.js';
import type { Stepper } from '../ticker.js';
import type { HeatPump, SgReadySimState } from './heat-pump.js';

const int16 = (v: number) => Math.max(-32768, Math.min(32767, Math.round(v))) & 0xffff;

export function sgStateFromInputs(on: number, in1: number, in2: number): SgReadySimState {
  if (on !== 1) return 2;
  if (in1 === 0 && in2 === 0) return 2;
  if (in1 === 1 && in2 === 0) return 3;
  if (in1 === 0 && in2 === 1) return 1;
  return 4;
}

export class StiebelWpm implements Stepper {
  readonly image = new RegisterImage();

  constructor(readonly heatPump: HeatPump) {
    const img = this.image;
    img.defineBlock(501, 21); // 501..521
    img.defineBlock(3501, 2);
    img.defineBlock(4000, 3);
    img.defineBlock(5000, 1);
    img.setWritable(4000, 3);
    img.addWriteHook({
      validate: (w) => (w.values.some((v) => v > 1) ? ExceptionCode.IllegalDataValue : undefined),
      apply: () => {
        const [on, in1, in2] = img.read(4000, 3) as [number, number, number];
        heatPump.sgReady = sgStateFromInputs(on, in1, in2);
        heatPump.recompute();
        this.encode();
      },
    });
    this.encode();
  }

  step(): void {
    this.encode();
  }

  private encode(): void {
    const hp = this.heatPump;
    const img = this.image;
    img.set(501, [int16(hp.indoorC * 10)]);
    img.set(502, [int16(hp.roomSetpointC * 10)]);
    img.set(507, [int16(hp.outdoorC * 10)]);
    img.set(517, [int16(hp.flowC * 10)]);
    img.set(521, [int16(48 * 10)]);
    img.set(3501, [Math.min(0xffff, Math.floor(hp.energyWh / 1000))]);
    img.set(3502, [0]);
    img.set(5000, [hp.sgReady]);
  }
}
