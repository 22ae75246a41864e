/**
 * Read plans: which registers of which models a poll needs, merged into the fewest read
 * transactions of at most 125 registers. SunSpec models sit back to back, so a block may bridge the
 * registers between two needed spans: they are all part of the SunSpec map and readable.
 */
import { isScalable } from './codec.js';
import type { DiscoveredModel } from './discovery.js';
import type { ModelDef } from './model-def.js';
import type { RegisterRange } from '../modbus/types.js';

export const MAX_READ_REGISTERS = 125;

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
  readonly blocks: readonly RegisterRange[];
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
  const spans = models.map((m) => ({ start: m.model.address, end: m.model.address + m.span })).sort((a, b) => a.start - b.start);
  const blocks: { address: number; count: number }[] = [];
  let current: { address: number; count: number } | undefined;
  for (const s of spans) {
    let pos = s.start;
    while (pos < s.end) {
      if (current && pos >= current.address && pos < current.address + MAX_READ_REGISTERS) {
        const end = Math.min(s.end, current.address + MAX_READ_REGISTERS);
        current.count = Math.max(current.count, end - current.address);
        pos = end;
      } else {
        current = { address: pos, count: Math.min(s.end - pos, MAX_READ_REGISTERS) };
        blocks.push(current);
        pos += current.count;
      }
    }
  }
  return { models, blocks };
}

/** Cuts each planned model's registers out of the blocks read. */
export function sliceModels(plan: ReadPlan, data: readonly Uint16Array[]): Uint16Array[] {
  return plan.models.map((m) => {
    const out = new Uint16Array(m.span);
    const start = m.model.address;
    plan.blocks.forEach((b, i) => {
      const block = data[i]!;
      const from = Math.max(start, b.address);
      const to = Math.min(start + m.span, b.address + b.count);
      for (let a = from; a < to; a++) out[a - start] = block[a - b.address]!;
    });
    return out;
  });
}
