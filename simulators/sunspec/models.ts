/**
 * SunSpec model definitions the simulators use, loaded as data from drivers/sunspec/models (JSON
 * copied from the SunSpec project, Apache-2.0). Only the JSON is imported, never driver code.
 */
import m1 from '../../drivers/sunspec/models/model_1.json' with { type: 'json' };
import m103 from '../../drivers/sunspec/models/model_103.json' with { type: 'json' };
import m120 from '../../drivers/sunspec/models/model_120.json' with { type: 'json' };
import m123 from '../../drivers/sunspec/models/model_123.json' with { type: 'json' };
import m124 from '../../drivers/sunspec/models/model_124.json' with { type: 'json' };
import m160 from '../../drivers/sunspec/models/model_160.json' with { type: 'json' };
import m203 from '../../drivers/sunspec/models/model_203.json' with { type: 'json' };
import m701 from '../../drivers/sunspec/models/model_701.json' with { type: 'json' };
import m702 from '../../drivers/sunspec/models/model_702.json' with { type: 'json' };
import m704 from '../../drivers/sunspec/models/model_704.json' with { type: 'json' };
import m713 from '../../drivers/sunspec/models/model_713.json' with { type: 'json' };
import m802 from '../../drivers/sunspec/models/model_802.json' with { type: 'json' };

export type PointType =
  | 'int16' | 'int32' | 'int64' | 'raw16' | 'uint16' | 'uint32' | 'uint64' | 'acc16' | 'acc32' | 'acc64'
  | 'bitfield16' | 'bitfield32' | 'bitfield64' | 'enum16' | 'enum32' | 'float32' | 'float64' | 'string'
  | 'pad' | 'ipaddr' | 'ipv6addr' | 'eui48' | 'sunssf' | 'count';

export interface PointDefinition {
  name: string;
  type: PointType;
  size: number;
  sf?: string | number;
  access?: 'R' | 'RW';
  mandatory?: 'M' | 'O';
  static?: 'S' | 'D';
  value?: string | number;
  units?: string;
}

export interface GroupDefinition {
  name: string;
  type: 'group' | 'sync';
  count?: string | number;
  points?: PointDefinition[];
  groups?: GroupDefinition[];
}

export interface ModelDefinition {
  id: number;
  group: GroupDefinition;
}

const POINT_TYPES = new Set<string>([
  'int16', 'int32', 'int64', 'raw16', 'uint16', 'uint32', 'uint64', 'acc16', 'acc32', 'acc64', 'bitfield16',
  'bitfield32', 'bitfield64', 'enum16', 'enum32', 'float32', 'float64', 'string', 'pad', 'ipaddr', 'ipv6addr',
  'eui48', 'sunssf', 'count',
]);

function checkGroup(g: GroupDefinition, where: string): void {
  if (typeof g.name !== 'string') throw new Error(`${where}: group without a name`);
  for (const p of g.points ?? []) {
    if (!POINT_TYPES.has(p.type)) throw new Error(`${where}.${p.name}: unknown type ${p.type}`);
    if (!Number.isInteger(p.size) || p.size < 1) throw new Error(`${where}.${p.name}: bad size ${p.size}`);
  }
  for (const sub of g.groups ?? []) checkGroup(sub, `${where}.${sub.name}`);
}

/** Checks the parts of the JSON the encoder relies on and gives it its type. */
export function asModelDefinition(json: unknown): ModelDefinition {
  const m = json as ModelDefinition;
  if (!m || typeof m.id !== 'number' || typeof m.group !== 'object') throw new Error('not a SunSpec model definition');
  checkGroup(m.group, `model ${m.id}`);
  return m;
}

const registry = new Map<number, ModelDefinition>();
for (const json of [m1, m103, m120, m123, m124, m160, m203, m701, m702, m704, m713, m802] as unknown[]) {
  const def = asModelDefinition(json);
  registry.set(def.id, def);
}

/** Adds a model definition (e.g. one loaded from another file) to the ones modelDefinition() knows. */
export function registerModel(definition: ModelDefinition): void {
  registry.set(definition.id, asModelDefinition(definition));
}

export function modelDefinition(id: number): ModelDefinition {
  const def = registry.get(id);
  if (!def) throw new Error(`SunSpec model ${id} is not loaded (see simulators/sunspec/models.ts)`);
  return def;
}
