/**
 * A typed, validated view of the SunSpec model definitions (models/model_<id>.json, the SunSpec
 * Alliance's own JSON; schema: /work/shared/reference/sunspec/schema.json).
 *
 * Layout rules (SunSpec Information Model Specification):
 * - a group's registers are its points in file order, then its sub-groups in file order;
 * - a point's offset is the running sum of the sizes before it, counted from the model's `ID`
 *   (offset 0) and `L` (offset 1); L is the model length without those two registers;
 * - a group repeats `count` times: absent = 1; a number (0 = "as many as fit in L"); or the name of
 *   a point (in the same group or an enclosing one) that holds the count;
 * - `sf` names a `sunssf` point (in the same group or an enclosing one) or is a fixed integer.
 */
import { z } from 'zod';

export const POINT_TYPES = [
  'int16',
  'int32',
  'int64',
  'raw16',
  'uint16',
  'uint32',
  'uint64',
  'acc16',
  'acc32',
  'acc64',
  'bitfield16',
  'bitfield32',
  'bitfield64',
  'enum16',
  'enum32',
  'float32',
  'float64',
  'string',
  'pad',
  'ipaddr',
  'ipv6addr',
  'eui48',
  'sunssf',
  'count',
] as const;

export type PointType = (typeof POINT_TYPES)[number];

/** The register count each fixed-size type must have; strings have any size. */
export const POINT_TYPE_SIZES: Readonly<Record<Exclude<PointType, 'string'>, number>> = {
  int16: 1,
  raw16: 1,
  uint16: 1,
  acc16: 1,
  bitfield16: 1,
  enum16: 1,
  sunssf: 1,
  count: 1,
  pad: 1,
  int32: 2,
  uint32: 2,
  acc32: 2,
  bitfield32: 2,
  enum32: 2,
  float32: 2,
  ipaddr: 2,
  int64: 4,
  uint64: 4,
  acc64: 4,
  bitfield64: 4,
  float64: 4,
  eui48: 4,
  ipv6addr: 8,
};

const symbolSchema = z.object({ name: z.string(), value: z.unknown() });

const pointSchema = z.object({
  name: z.string().min(1),
  type: z.enum(POINT_TYPES),
  size: z.number().int().min(1),
  sf: z.union([z.string().min(1), z.number().int().min(-10).max(10)]).optional(),
  access: z.enum(['R', 'RW']).optional(),
  mandatory: z.enum(['M', 'O']).optional(),
  static: z.enum(['D', 'S']).optional(),
  units: z.string().optional(),
  value: z.union([z.number(), z.string()]).optional(),
  label: z.string().optional(),
  symbols: z.array(symbolSchema).optional(),
});

interface GroupJson {
  name: string;
  type: 'group' | 'sync';
  count?: number | string | undefined;
  points?: z.infer<typeof pointSchema>[] | undefined;
  groups?: GroupJson[] | undefined;
  label?: string | undefined;
}

const groupSchema: z.ZodType<GroupJson> = z.lazy(() =>
  z.object({
    name: z.string().min(1),
    type: z.enum(['group', 'sync']),
    count: z.union([z.number().int().min(0), z.string().min(1)]).optional(),
    points: z.array(pointSchema).optional(),
    groups: z.array(groupSchema).optional(),
    label: z.string().optional(),
  }),
);

const modelSchema = z.object({
  id: z.number().int().min(1).max(65535),
  group: groupSchema,
});

export interface SymbolDef {
  readonly name: string;
  readonly value: number;
}

export interface PointDef {
  readonly name: string;
  readonly type: PointType;
  /** Registers. */
  readonly size: number;
  /** Scale factor: the name of a sunssf point, or a fixed power of ten. */
  readonly sf?: string | number;
  readonly access: 'R' | 'RW';
  readonly mandatory: boolean;
  readonly units?: string;
  readonly label?: string;
  readonly symbols: readonly SymbolDef[];
}

export interface GroupDef {
  readonly name: string;
  readonly type: 'group' | 'sync';
  /** undefined: exactly one instance (decoded as an object); otherwise repeating (decoded as an array):
   * a number (0 = as many as fit in the model length) or the name of the point that holds the count. */
  readonly count?: number | string;
  readonly points: readonly PointDef[];
  readonly groups: readonly GroupDef[];
}

/** A top-level point with its offset from the model's ID register. */
export interface PointLayout {
  readonly point: PointDef;
  readonly offset: number;
}

export interface ModelDef {
  readonly id: number;
  readonly name: string;
  readonly label?: string;
  readonly group: GroupDef;
  /** Top-level points by name with their offsets (ID = 0, L = 1). */
  readonly points: ReadonlyMap<string, PointLayout>;
  /** Registers of the top-level points, ID and L included. */
  readonly fixedPointsSize: number;
}

export class ModelDefinitionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ModelDefinitionError';
  }
}

function toGroup(g: GroupJson, modelId: number): GroupDef {
  const points: PointDef[] = (g.points ?? []).map((p) => {
    if (p.type !== 'string') {
      const expected = POINT_TYPE_SIZES[p.type];
      if (p.size !== expected) {
        throw new ModelDefinitionError(`model ${modelId}: point ${g.name}.${p.name} of type ${p.type} has size ${p.size}, expected ${expected}`);
      }
    }
    const symbols: SymbolDef[] = [];
    for (const s of p.symbols ?? []) {
      if (typeof s.value === 'number' && Number.isInteger(s.value)) symbols.push({ name: s.name, value: s.value });
    }
    return {
      name: p.name,
      type: p.type,
      size: p.size,
      ...(p.sf !== undefined ? { sf: p.sf } : {}),
      access: p.access ?? 'R',
      mandatory: p.mandatory === 'M',
      ...(p.units !== undefined ? { units: p.units } : {}),
      ...(p.label !== undefined ? { label: p.label } : {}),
      symbols,
    };
  });
  return {
    name: g.name,
    type: g.type,
    ...(g.count !== undefined ? { count: g.count } : {}),
    points,
    groups: (g.groups ?? []).map((sub) => toGroup(sub, modelId)),
  };
}

/** Validates one model definition (the parsed JSON of a models/model_<id>.json file). */
export function parseModelDef(json: unknown): ModelDef {
  const parsed = modelSchema.safeParse(json);
  if (!parsed.success) {
    throw new ModelDefinitionError(`invalid SunSpec model definition: ${parsed.error.message}`);
  }
  const { id } = parsed.data;
  const group = toGroup(parsed.data.group, id);
  const [idPoint, lPoint] = group.points;
  if (idPoint?.name !== 'ID' || lPoint?.name !== 'L') {
    throw new ModelDefinitionError(`model ${id}: the first two points must be ID and L`);
  }
  const points = new Map<string, PointLayout>();
  let offset = 0;
  for (const point of group.points) {
    points.set(point.name, { point, offset });
    offset += point.size;
  }
  checkReferences(id, group, []);
  return {
    id,
    name: group.name,
    ...(parsed.data.group.label !== undefined ? { label: parsed.data.group.label } : {}),
    group,
    points,
    fixedPointsSize: offset,
  };
}

/** Every sf and count name must resolve to a point of the right type in scope. */
function checkReferences(modelId: number, group: GroupDef, outer: readonly GroupDef[]): void {
  const scope = [group, ...outer];
  const find = (name: string) => {
    for (const g of scope) {
      const p = g.points.find((q) => q.name === name);
      if (p) return p;
    }
    return undefined;
  };
  for (const p of group.points) {
    if (typeof p.sf === 'string') {
      const sf = find(p.sf);
      if (!sf || sf.type !== 'sunssf') {
        throw new ModelDefinitionError(`model ${modelId}: point ${group.name}.${p.name} names scale factor ${p.sf}, which is not a sunssf point in scope`);
      }
    }
  }
  for (const sub of group.groups) {
    if (typeof sub.count === 'string') {
      const c = find(sub.count);
      if (!c || !['uint16', 'count'].includes(c.type)) {
        throw new ModelDefinitionError(`model ${modelId}: group ${sub.name} counts by ${sub.count}, which is not a uint16/count point in scope`);
      }
    }
    checkReferences(modelId, sub, scope);
  }
}

/** True when the group (and everything below it) has a size independent of register contents. */
export function hasStaticSize(group: GroupDef): boolean {
  return group.groups.every((g) => typeof g.count !== 'string' && (g.count === undefined || g.count > 0) && hasStaticSize(g));
}

/** Registers of one instance of a group whose size does not depend on register contents. */
export function staticGroupSize(group: GroupDef): number {
  let size = 0;
  for (const p of group.points) size += p.size;
  for (const g of group.groups) size += staticGroupSize(g) * (g.count === undefined ? 1 : typeof g.count === 'number' ? g.count : 0);
  return size;
}
