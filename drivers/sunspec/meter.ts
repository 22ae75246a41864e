/**
 * A SunSpec meter as a `Meter` (drivers/classes.ts).
 *
 * 201-204 (integer + scale factors): powerW = W (SunSpec meters count import positive), importWh =
 * TotWhImp, exportWh = TotWhExp, voltageV = PhV (average line-neutral), else PPV (line-line),
 * frequencyHz = Hz.
 * 701 (DER AC measurement, used by DER-style meters): W is positive for generation (injection into
 * the grid), so powerW = -W; importWh = TotWhAbs, exportWh = TotWhInj, voltageV = LNV, else LLV.
 */
import type { Meter, MeterReading } from '../classes.js';
import type { ReadPlan } from './read-plan.js';
import { optional, type SunSpecSession, type UsedModel } from './session.js';

export const METER_MODELS = [203, 204, 202, 201, 701] as const;

export class SunSpecMeter implements Meter {
  readonly deviceClass = 'meter';
  readonly id: string;
  private readonly measurement: UsedModel;
  private readonly readPlan: ReadPlan;

  constructor(private readonly session: SunSpecSession) {
    this.id = session.id;
    this.measurement = session.require(METER_MODELS, 'meter measurement');
    const points = this.isDer() ? ['W', 'TotWhAbs', 'TotWhInj', 'LNV', 'LLV', 'Hz'] : ['W', 'TotWhImp', 'TotWhExp', 'PhV', 'PPV', 'Hz'];
    this.readPlan = session.plan([{ ...this.measurement, points }]);
  }

  private isDer(): boolean {
    return this.measurement.def.id === 701;
  }

  describe(): string {
    return this.session.describe();
  }

  async read(): Promise<MeterReading> {
    const values = (await this.session.poll(this.readPlan)).get(this.measurement.def.id)!;
    const w = this.session.required(values, this.measurement, 'W');
    const der = this.isDer();
    // `0 - w` rather than `-w`: no -0 in readings.
    const reading: MeterReading = { powerW: der ? 0 - w : w };
    const importWh = optional(values, der ? 'TotWhAbs' : 'TotWhImp');
    const exportWh = optional(values, der ? 'TotWhInj' : 'TotWhExp');
    const voltageV = der ? (optional(values, 'LNV') ?? optional(values, 'LLV')) : (optional(values, 'PhV') ?? optional(values, 'PPV'));
    const frequencyHz = optional(values, 'Hz');
    if (importWh !== undefined) reading.importWh = importWh;
    if (exportWh !== undefined) reading.exportWh = exportWh;
    if (voltageV !== undefined) reading.voltageV = voltageV;
    if (frequencyHz !== undefined) reading.frequencyHz = frequencyHz;
    return reading;
  }
}
