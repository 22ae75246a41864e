/**
 * An Eastron SDM120-Modbus single-phase meter measuring one circuit (a power source function, e.g.
 * the heat pump's electrical power), encoded as the vendor documents it
 * (/work/notes/vendor-layouts.md §5): input registers only (FC3 → exception 2), every value an
 * IEEE-754 float32, high word first:
 *   0x0000 voltage V, 0x0006 current A, 0x000C active power W (positive = import), 0x0046 frequency
 *   Hz, 0x0048 import kWh, 0x004A export kWh, 0x0156 total kWh.
 * At most 40 registers per read (more → exception 3); a read that starts or ends inside a value, or
 * covers an address between the values, → exception 2. The energy counters integrate the power held
 * over each tick (import when positive, export when negative).
 */
import { RegisterImage } from '../modbus/image.js';
import { smoothNoise } from '../rng.js';
import type { Stepper } from '../ticker.js';

export const SDM120_MAX_READ_REGISTERS = 40;
export const SDM120_REGISTERS = {
  voltageV: 0x00,
  currentA: 0x06,
  powerW: 0x0c,
  frequencyHz: 0x46,
  importKwh: 0x48,
  exportKwh: 0x4a,
  totalKwh: 0x156,
} as const;
const R = SDM120_REGISTERS;

/** A float32 as two registers, high word first. */
export function float32Words(value: number): [number, number] {
  const buf = Buffer.alloc(4);
  buf.writeFloatBE(value);
  return [buf.readUInt16BE(0), buf.readUInt16BE(2)];
}

export interface Sdm120Options {
  /** Power of the measured circuit now (W, positive = consumption). */
  powerSource: () => number;
  seed?: number;
  /** Counters at start (Wh). Defaults 3 210 000 import, 0 export. */
  initialImportWh?: number;
  initialExportWh?: number;
}

export class Sdm120 implements Stepper {
  readonly image = new RegisterImage();
  powerW = 0;
  voltageV = 230;
  importWh: number;
  exportWh: number;
  private readonly powerSource: () => number;
  private readonly seed: number;

  constructor(options: Sdm120Options) {
    this.powerSource = options.powerSource;
    this.seed = options.seed ?? 1;
    this.importWh = options.initialImportWh ?? 3_210_000;
    this.exportWh = options.initialExportWh ?? 0;
    const img = this.image;
    img.defineBlock(R.voltageV, 2, 'input');
    img.defineBlock(R.currentA, 2, 'input');
    img.defineBlock(R.powerW, 2, 'input');
    img.defineBlock(R.frequencyHz, 6, 'input'); // 0x46..0x4B: frequency, import, export back to back
    img.defineBlock(R.totalKwh, 2, 'input');
    img.quirks = { maxReadRegisters: SDM120_MAX_READ_REGISTERS, valueStarts: new Set<number>(Object.values(R)) };
    this.powerW = this.powerSource();
    this.encode();
  }

  step(nowMs: number, dtMs: number): void {
    if (dtMs > 0) {
      const wh = (this.powerW * dtMs) / 3_600_000;
      if (wh >= 0) this.importWh += wh;
      else this.exportWh -= wh;
    }
    this.powerW = this.powerSource();
    // The grid voltage wanders slowly around 230 V (±2 V).
    this.voltageV = 228 + 4 * smoothNoise(this.seed ^ 0x1b873593, nowMs, 600_000);
    this.encode();
  }

  private encode(): void {
    const img = this.image;
    img.set(R.voltageV, float32Words(this.voltageV));
    img.set(R.currentA, float32Words(Math.abs(this.powerW) / this.voltageV));
    img.set(R.powerW, float32Words(this.powerW));
    img.set(R.frequencyHz, [...float32Words(50), ...float32Words(this.importWh / 1000), ...float32Words(this.exportWh / 1000)]);
    img.set(R.totalKwh, float32Words((this.importWh + this.exportWh) / 1000));
  }
}
