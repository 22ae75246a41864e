import { ExceptionCode, type PointChange, type SunSpecDevice } from '../sunspec/encoder.js';

export interface Nameplate {
  manufacturer?: string;
  model?: string;
  version?: string;
  serialNumber?: string;
}

/** Fills SunSpec model 1 (common). */
export function setCommonModel(dev: SunSpecDevice, plate: Required<Nameplate>): void {
  dev.set(1, 'Mn', plate.manufacturer);
  dev.set(1, 'Md', plate.model);
  dev.set(1, 'Vr', plate.version);
  dev.set(1, 'SN', plate.serialNumber);
}

/** A validator refusing values outside [min, max] for the named points of one model (exception 3). */
export function rangeValidator(modelId: number, ranges: Record<string, readonly [number, number]>) {
  return (c: PointChange): number | undefined => {
    if (c.modelId !== modelId) return undefined;
    const range = ranges[c.point];
    if (!range || typeof c.value !== 'number') return undefined;
    return c.value < range[0] || c.value > range[1] ? ExceptionCode.IllegalDataValue : undefined;
  };
}

export function touches(changes: readonly PointChange[], modelId: number, names: readonly string[]): boolean {
  return changes.some((c) => c.modelId === modelId && names.includes(c.point));
}

export function num(value: number | string | undefined, fallback: number): number {
  return typeof value === 'number' ? value : fallback;
}

export const ENABLED = 1;
export const DISABLED = 0;
