/**
 * An Eastron SDM120-Modbus single-phase meter measuring one circuit, encoded as the vendor documents
 * it (/work/notes/vendor-layouts.md §5): IEEE-754 float32 input registers, high word first; at most 40
 * registers per read; a read that starts or ends inside a value, or covers an address the meter does
 * not have, is refused with exception 2.
 */
import { RegisterImage } from '../modbus/image.js';
import type { Stepper } from '../ticker.js';

const ADDRESSES = { voltageV: 0x00, currentA: 0x06, powerW: 0x0c, frequencyHz: 0x46, importKwh: 0x48, exportKwh: 0x4a, totalKwh: 0x156 } as const;

function float32Words(value: number): [number, number] {
  const buf = Buffer.alloc(4);
  buf.writeFloatBE(value);
  return [buf.readUInt16BE(0), buf.readUInt16BE(2)];
}

export class Sdm120 implements Stepper {
  readonly image = new RegisterImage();
  powerW = 0;
  importWh: number;
  exportWh: number;

  constructor(private readonly source: () => number, options: { initialImportWh?: number } = {}) {
    this.importWh = options.initialImportWh ?? 3_210_000;
    this.exportWh = 0;
    const img = this.image;
    const starts = new Set<number>();
    // The meter's documented values; 0x46..0x4B are back to back.
    img.defineBlock(0x00, 2);
    img.defineBlock(0x06, 2);
    img.defineBlock(0x0c, 2);
    img.defineBlock(0x46, 6);
    img.defineBlock(0x156, 2);
    for (const a of Object.values(ADDRESSES)) starts.add(a);
    img.quirks = { maxReadRegisters: 40, valueStarts: starts };
    this.encode();
  }

  step(_nowMs: number, dtMs: number): void {
    if (dtMs > 0) {
      const wh = (this.powerW * dtMs) / 3_600_000;
      if (wh >= 0) this.importWh += wh;
      else this.exportWh -= wh;
    }
    this.powerW = this.source();
    this.encode();
  }

  private encode(): void {
    const img = this.image;
    const voltageV = 230 + (this.powerW % 7) * 0.1;
    img.set(ADDRESSES.voltageV, float32Words(voltageV));
    img.set(ADDRESSES.currentA, float32Words(Math.abs(this.powerW) / voltageV));
    img.set(ADDRESSES.powerW, float32Words(this.powerW));
    img.set(ADDRESSES.frequencyHz, float32Words(50));
    img.set(ADDRESSES.importKwh, float32Words(this.importWh / 1000));
    img.set(ADDRESSES.exportKwh, float32Words(this.exportWh / 1000));
    img.set(ADDRESSES.totalKwh, float32Words((this.importWh + this.exportWh) / 1000));
  }
}
