/**
 * Read plans: which registers of which models a poll needs — one range per model, from its ID
 * register to its last needed point. Merging them into transactions is the transport's job
 * (`ModbusUnit.readRanges`): SunSpec models sit back to back, so the registers between two needed
 * ranges are all part of the SunSpec map and readable, and the poll lets the transport read across
 * them (`BRIDGE_GAP_REGISTERS`) when that saves a transaction. A device that rejects such a merged
 * read anyway (exception 2, e.g. across a model boundary) gets it split by the transport, which
 * remembers the split for the following polls.
 */
import { isScalable } from './codec.js';
import type { DiscoveredModel } from './discovery.js';
import type { ModelDef } from './model-def.js';
import type { RegisterRange } from '../modbus/types.js';

/** The gap (in unneeded registers) a poll lets the transport read across: any gap one read of at
 * most 125 registers can bridge. */
export const BRIDGE_GAP_REGISTERS = 125;

export interface ModelNeed {
  readonly model: DiscoveredModel;
  readonly def: ModelDef;
  /** Top-level points to read; their scale factor points are added. */
  readonly points: readonly string[];
}

export interface PlannedModel {
  readonly model: DiscoveredModel;
  readonly def: ModelDef;
  /** Registers read from the model's ID register on (ID and L always included). */
  readonly span: number;
}

export interface ReadPlan {
  readonly models: readonly PlannedModel[];
  /** One range per model, in the order of `models`: `{ address: model.address, count: span }`. */
  readonly ranges: readonly RegisterRange[];
}

/** The registers of a model a set of points needs: from the ID register to the end of the last
 * needed point or scale factor. Unknown point names are a programming error. */
export function spanOf(def: ModelDef, points: readonly string[]): number {
  let span = 2;
  const add = (name: string) => {
    const layout = def.points.get(name);
    if (!layout) throw new Error(`SunSpec model ${def.id} has no top-level point ${name}`);
    span = Math.max(span, layout.offset + layout.point.size);
    return layout.point;
  };
  for (const name of points) {
    const point = add(name);
    if (typeof point.sf === 'string' && isScalable(point.type)) add(point.sf);
  }
  return span;
}

export function planReads(needs: readonly ModelNeed[]): ReadPlan {
  const models = needs.map((n) => ({ model: n.model, def: n.def, span: Math.min(spanOf(n.def, n.points), n.model.length + 2) }));
  return { models, ranges: models.map((m) => ({ address: m.model.address, count: m.span })) };
}
