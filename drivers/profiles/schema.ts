/**
 * The device profile format: one file per device model (YAML or JSON) describing where its values
 * are (sources), how to change it (actions), how those map onto its device class (readings,
 * controls), its limits and how it reverts by itself. One zod schema gives validation, the TS types
 * and the JSON Schema for editors (agent/config/json-schema.ts); the cross-checks a schema cannot express (names
 * that must exist, value types per class field, overlapping writes, raw ranges against limits,
 * missing class fields) follow in `checkProfile`. A profile that passes both never fails at its first
 * write for a reason the file could have told.
 */
import { z } from 'zod';
import { SG_READY_STATES } from '../classes.js';
import { mqttSectionSchema } from '../mqtt/profile-schema.js';

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const name = () => z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]{0,39}$/, 'expected a name: a letter, then letters, digits or _');
/** A multiplier: finite, non-zero, 1e-9..1e9 in magnitude (a scale of 0 or 1e12 is a typo, not a unit). */
const scale = () =>
  z
    .number()
    .refine((s) => Number.isFinite(s) && s !== 0 && Math.abs(s) >= 1e-9 && Math.abs(s) <= 1e9, 'expected a finite, non-zero scale between 1e-9 and 1e9 in magnitude')
    .default(1);

export const PROFILE_CLASSES = ['meter', 'ev-charger', 'hvac', 'load'] as const;
export type ProfileClass = (typeof PROFILE_CLASSES)[number];

/** Register encodings. Bytes within a register are big-endian (Modbus); `wordOrder` orders the
 * registers of 32/64-bit values. `uint8-high` / `uint8-low`: one byte of a register. `string`: 2
 * characters per register, `length` registers, NUL-terminated. */
export const ENCODINGS = ['int16', 'uint16', 'uint8-high', 'uint8-low', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'string'] as const;
export type Encoding = (typeof ENCODINGS)[number];
/** Encodings a write can carry. */
export const WRITE_ENCODINGS = ['int16', 'uint16', 'int32', 'uint32', 'float32'] as const;
export type WriteEncoding = (typeof WRITE_ENCODINGS)[number];
export type WordOrder = 'high-first' | 'low-first';

/** Registers an encoding spans (strings: their `length`). */
export function encodingRegisters(encoding: Encoding, length = 1): number {
  switch (encoding) {
    case 'int16':
    case 'uint16':
    case 'uint8-high':
    case 'uint8-low':
      return 1;
    case 'int32':
    case 'uint32':
    case 'float32':
      return 2;
    case 'int64':
    case 'uint64':
    case 'float64':
      return 4;
    case 'string':
      return length;
  }
}

/** The raw range of an integer write encoding. */
export function encodingRange(encoding: WriteEncoding): { min: number; max: number } {
  switch (encoding) {
    case 'int16':
      return { min: -0x8000, max: 0x7fff };
    case 'uint16':
      return { min: 0, max: 0xffff };
    case 'int32':
      return { min: -0x80000000, max: 0x7fffffff };
    case 'uint32':
      return { min: 0, max: 0xffffffff };
    case 'float32':
      return { min: -3.4e38, max: 3.4e38 };
  }
}

const wordOrder = () =>
  z.enum(['high-first', 'low-first']).default('high-first').describe('32/64-bit values: "low-first" when the device puts the low word first (word-swapped)');

const registerSourceSchema = z
  .strictObject({
    address: int(0, 65535).describe('raw protocol address (no 40001 offset)'),
    type: z.enum(['holding', 'input', 'coil']).describe('holding: FC3, input: FC4, coil: FC1'),
    encoding: z.enum(ENCODINGS).default('uint16').describe('not for coils (a coil is a boolean)'),
    wordOrder: wordOrder(),
    length: int(1, 64).optional().describe('strings: registers (2 characters each)'),
    sentinels: z.array(z.number()).min(1).optional().describe('raw values that mean "not available": the value is then unknown'),
    sentinelMeans: z
      .enum(['unknown', 'zero'])
      .default('unknown')
      .describe('what a sentinel stands for: unknown (default), or zero (e.g. "not measured" phase currents while nothing flows)'),
  })
  .describe('one value read from the device');

const valueActionSchema = z
  .strictObject({
    address: int(0, 65535),
    type: z.enum(['holding', 'coil']),
    functionCode: z.union([z.literal(5), z.literal(6), z.literal(16)]).optional().describe('default: 5 for coils, 16 for registers; 6 writes one register'),
    encoding: z.enum(WRITE_ENCODINGS).default('uint16'),
    wordOrder: wordOrder(),
    rawMin: z.number().optional().describe('smallest raw value the device accepts'),
    rawMax: z.number().optional().describe('largest raw value the device accepts'),
  })
  .describe('a write of one value (the control supplies it)');

const fixedWriteSchema = z
  .strictObject({
    address: int(0, 65535),
    type: z.enum(['holding', 'coil']).default('holding'),
    functionCode: z.union([z.literal(5), z.literal(6), z.literal(16)]).optional().describe('default: 5 for coils, 16 for registers'),
    value: z.union([int(0, 65535), z.boolean()]).describe('raw register value (0..65535), or true/false for a coil'),
  })
  .describe('one write of a fixed value');

const sequenceActionSchema = z
  .strictObject({
    writes: z.array(fixedWriteSchema).min(1).max(16).describe('written in this order; the first failure stops the sequence'),
  })
  .describe('a fixed sequence of writes (e.g. the SG Ready inputs of one state)');

export const serialSettingsSchema = z
  .strictObject({
    baudRate: z.literal([1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200]).default(9600),
    parity: z.enum(['none', 'even', 'odd']).default('none'),
    dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
    stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
    framing: z.enum(['rtu', 'ascii']).default('rtu').describe('ascii: Modbus ASCII (set connection.rtu.framing: ascii in the config too)'),
  })
  .describe("the device's factory serial settings (RS-485 devices); the config's connection.rtu must match the device");

export const modbusSectionSchema = z
  .strictObject({
    unitId: int(0, 255).default(1).describe('the unit id the device answers by default (set unitId in the config)'),
    port: int(1, 65535).default(502).describe('the TCP port the device listens on by default'),
    serial: serialSettingsSchema.optional(),
    maxReadRegisters: int(1, 125).default(125).describe('largest read the device accepts'),
    maxGapRegisters: int(0, 125)
      .default(0)
      .describe('read across gaps of up to this many registers between sources when that saves a transaction (only where the device answers for the gap)'),
    sources: z.record(name(), registerSourceSchema),
    actions: z.record(name(), z.union([valueActionSchema, sequenceActionSchema])).default({}),
  })
  .describe('registers of a Modbus device');

const readingSchema = z
  .strictObject({
    source: name().optional(),
    sum: z.array(name()).min(1).max(16).optional().describe('the sum of several sources (then scale/offset apply to the sum)'),
    scale: scale().describe('value = raw × scale + offset'),
    offset: z.number().refine(Number.isFinite, 'expected a finite number').default(0),
    map: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional().describe('raw value → reading (e.g. 67: true, 2: normal); an unmapped raw value is unknown'),
    in: z.array(z.union([z.number(), z.string()])).min(1).optional().describe('a boolean reading: true when the raw value is one of these'),
  })
  .describe('how one reading of the class is made from sources');

const controlSchema = z
  .strictObject({
    action: name().optional().describe('the action that carries the value'),
    scale: scale().describe('raw = round(value × scale)'),
    round: z.enum(['nearest', 'down', 'up']).default('nearest').describe('how value × scale becomes an integer raw value (down: never more than asked)'),
    map: z.record(z.string(), z.union([z.number(), z.boolean(), z.string()])).optional().describe('value → raw (e.g. true: 0xA1A1, false: 0xE0E0)'),
    actions: z.record(z.string(), name()).optional().describe('value → a fixed action (e.g. SG Ready state → its sequence of writes)'),
  })
  .describe('how one control of the class is carried out');

const rangeSchema = (min: number, max: number) => z.strictObject({ min: z.number().min(min).max(max), max: z.number().min(min).max(max) });

export const revertSchema = z
  .union([
    z.strictObject({ kind: z.literal('none') }),
    z.strictObject({
      kind: z.literal('device-timer'),
      description: z.string().min(1).describe('what arms the timer, e.g. "holding 1208 (s)"'),
      minMs: int(0, 86_400_000).describe('shortest timer the device accepts'),
      maxMs: int(0, 86_400_000).describe('longest timer the device accepts'),
      action: name().optional().describe('the action that (re)arms the timer, written before every control write; without it, every control write re-arms it by itself'),
      armMs: int(0, 86_400_000).optional().describe('with action: the time flexgate arms (minMs..maxMs)'),
      scale: scale().describe('with action: raw = round(armMs × scale), e.g. 0.001 for a device counting seconds'),
    }),
  ])
  .describe('what the device does by itself when flexgate stops talking to it: "none", or a device-side timer');

export const profileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    profile: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a name of a-z, 0-9 and - (the file name without .yaml)'),
    class: z.enum(PROFILE_CLASSES),
    vendor: z.string().min(1),
    model: z.string().min(1),
    description: z.string().optional(),
    transport: z.enum(['modbus', 'mqtt']).describe('how the device is reached: then a modbus: or mqtt: section'),
    modbus: modbusSectionSchema.optional(),
    mqtt: mqttSectionSchema.optional(),
    readings: z.record(z.string(), readingSchema).describe('class reading field → how it is made from sources'),
    controls: z.record(z.string(), controlSchema).default({}).describe('class control → how it is carried out'),
    limits: z
      .strictObject({
        currentA: rangeSchema(0, 100).optional().describe('ev-charger: the current per phase the charger accepts (A)'),
        setpointOffsetC: rangeSchema(-30, 30).optional().describe('hvac: the setpoint offsets the device accepts (K); must contain 0'),
        sgReadyMinSwitchMs: int(0, 24 * 3_600_000).optional().describe('hvac: the shortest time between SG Ready changes the manufacturer allows'),
        minOnMs: int(0, 24 * 3_600_000).optional().describe('load: shortest on time the device needs (the installer may ask for more)'),
        minOffMs: int(0, 24 * 3_600_000).optional().describe('load: shortest off time the device needs'),
        ratedPowerW: int(0, 100_000).optional().describe('typical electrical power while running, when the installer gives none'),
      })
      .default({}),
    revert: revertSchema,
  })
  .describe('a flexgate device profile');

export type Profile = z.output<typeof profileSchema>;
export type ProfileInput = z.input<typeof profileSchema>;
export type ModbusSection = z.output<typeof modbusSectionSchema>;
export type RegisterSource = z.output<typeof registerSourceSchema>;
export type ValueAction = z.output<typeof valueActionSchema>;
export type SequenceAction = z.output<typeof sequenceActionSchema>;
export type ModbusAction = ValueAction | SequenceAction;
export type ReadingSpec = z.output<typeof readingSchema>;
export type ControlSpec = z.output<typeof controlSchema>;
export type ProfileRevert = z.output<typeof revertSchema>;

export const isSequenceAction = (a: ModbusAction): a is SequenceAction => 'writes' in a;

/** What a reading field holds: a number, a boolean, an SG Ready state, or a free string. */
export type FieldType = 'number' | 'boolean' | 'sg-ready' | 'string';

/** The reading fields and controls of each class (drivers/classes.ts), their types, and which are required. */
export const CLASS_VOCABULARY: Record<
  ProfileClass,
  { readings: Readonly<Record<string, FieldType>>; requiredReadings: readonly string[]; controls: Readonly<Record<string, FieldType>>; requiredControls: readonly (readonly string[])[] }
> = {
  meter: {
    readings: { powerW: 'number', importWh: 'number', exportWh: 'number', voltageV: 'number', frequencyHz: 'number' },
    requiredReadings: ['powerW'],
    controls: {},
    requiredControls: [],
  },
  'ev-charger': {
    readings: { powerW: 'number', plugged: 'boolean', charging: 'boolean', enabled: 'boolean', currentLimitA: 'number', sessionEnergyWh: 'number', energyWh: 'number' },
    requiredReadings: ['powerW', 'plugged', 'charging'],
    controls: { currentA: 'number', enabled: 'boolean' },
    requiredControls: [['currentA'], ['enabled']],
  },
  hvac: {
    readings: {
      powerW: 'number',
      energyWh: 'number',
      indoorC: 'number',
      outdoorC: 'number',
      setpointC: 'number',
      setpointOffsetC: 'number',
      sgReady: 'sg-ready',
      mode: 'string',
    },
    requiredReadings: [],
    controls: { sgReady: 'sg-ready', setpointOffsetC: 'number' },
    requiredControls: [['sgReady', 'setpointOffsetC']],
  },
  load: {
    readings: { powerW: 'number', on: 'boolean', energyWh: 'number', temperatureC: 'number' },
    requiredReadings: ['on'],
    controls: { on: 'boolean' },
    requiredControls: [['on']],
  },
};

export interface ProfileIssue {
  path: (string | number)[];
  message: string;
}

type ValueKind = 'number' | 'boolean' | 'string';

/** The kind of value a source gives (before the reading's map / in / scale). */
function sourceKind(p: Profile, source: string): ValueKind | undefined {
  const modbus = p.modbus?.sources[source];
  if (modbus) return modbus.type === 'coil' ? 'boolean' : modbus.encoding === 'string' ? 'string' : 'number';
  return p.mqtt?.sources[source]?.type;
}

function kindOf(v: string | number | boolean): ValueKind {
  return typeof v === 'number' ? 'number' : typeof v === 'boolean' ? 'boolean' : 'string';
}

/** Registers (or coils) one action writes: `holding:4001` / `coil:400`. */
function touched(action: ModbusAction): string[] {
  if (isSequenceAction(action)) return action.writes.map((w) => `${w.type}:${w.address}`);
  const n = action.type === 'coil' ? 1 : encodingRegisters(action.encoding);
  return Array.from({ length: n }, (_, i) => `${action.type}:${action.address + i}`);
}

/** raw = value × scale made an integer as the control says (down: never more than asked). */
export function roundRaw(x: number, mode: ControlSpec['round']): number {
  return mode === 'down' ? Math.floor(x + 1e-9) : mode === 'up' ? Math.ceil(x - 1e-9) : Math.round(x);
}

/** Cross-checks the schema cannot express. Returns every problem found (empty: the profile holds together). */
export function checkProfile(p: Profile): ProfileIssue[] {
  const issues: ProfileIssue[] = [];
  const issue = (path: (string | number)[], message: string) => issues.push({ path, message });
  const vocabulary = CLASS_VOCABULARY[p.class];
  const section = p.transport;
  if (!p[section]) return [{ path: [section], message: `transport ${section} needs a ${section}: section` }];
  const other = section === 'modbus' ? 'mqtt' : 'modbus';
  if (p[other]) issue([other], `transport is ${section}: remove the ${other}: section`);
  const sources: Record<string, unknown> = (section === 'modbus' ? p.modbus?.sources : p.mqtt?.sources) ?? {};
  const actions: Record<string, ModbusAction | { topic: string }> = (section === 'modbus' ? p.modbus?.actions : p.mqtt?.actions) ?? {};

  // ---- Modbus sources and actions on their own
  if (p.modbus && section === 'modbus') {
    const m = p.modbus;
    for (const [key, source] of Object.entries(m.sources)) {
      const at = ['modbus', 'sources', key];
      if (source.type === 'coil') {
        if (source.sentinels) issue([...at, 'sentinels'], 'a coil is a boolean: sentinels apply to register values');
        if (source.length !== undefined) issue([...at, 'length'], 'a coil has no length');
        continue;
      }
      if (source.encoding === 'string' && source.length === undefined) issue([...at, 'length'], 'a string source needs its length in registers');
      if (source.encoding !== 'string' && source.length !== undefined) issue([...at, 'length'], `length is for strings; ${source.encoding} has a fixed size`);
      if (source.encoding === 'string' && source.sentinels) issue([...at, 'sentinels'], 'sentinels apply to numbers, not strings');
      const count = encodingRegisters(source.encoding, source.length ?? 1);
      if (source.address + count > 0x10000) issue([...at, 'address'], `${source.encoding} at ${source.address} runs past register 65535`);
      if (count > m.maxReadRegisters) issue([...at], `needs ${count} registers, more than the device reads at once (maxReadRegisters ${m.maxReadRegisters})`);
    }
    for (const [key, action] of Object.entries(m.actions)) {
      const at = ['modbus', 'actions', key];
      const writes = isSequenceAction(action) ? action.writes.map((w, i) => ({ w, at: [...at, 'writes', i] })) : [{ w: action, at }];
      for (const { w, at: wat } of writes) {
        if (w.type === 'coil' && w.functionCode !== undefined && w.functionCode !== 5) issue([...wat, 'functionCode'], `a coil is written with FC5, not FC${w.functionCode}`);
        if (w.type === 'holding' && w.functionCode === 5) issue([...wat, 'functionCode'], 'FC5 writes a coil: use 6 or 16 for a holding register');
        if ('value' in w && w.type === 'holding' && typeof w.value === 'boolean') issue([...wat, 'value'], 'a register takes a number 0..65535, not true/false');
      }
      if (isSequenceAction(action)) continue;
      if (action.type === 'coil') continue;
      const n = encodingRegisters(action.encoding);
      if (action.functionCode === 6 && n !== 1) issue([...at, 'functionCode'], `FC6 writes one register; ${action.encoding} needs ${n}: use 16`);
      if (action.address + n > 0x10000) issue([...at, 'address'], `${action.encoding} at ${action.address} runs past register 65535`);
      const range = encodingRange(action.encoding);
      if (action.rawMin !== undefined && action.rawMax !== undefined && action.rawMin > action.rawMax) issue([...at, 'rawMax'], `expected rawMin ≤ rawMax, found ${action.rawMin} > ${action.rawMax}`);
      for (const k of ['rawMin', 'rawMax'] as const) {
        const v = action[k];
        if (v !== undefined && (v < range.min || v > range.max)) issue([...at, k], `${v} does not fit ${action.encoding} (${range.min}..${range.max})`);
      }
    }
  }
  for (const [key, action] of Object.entries(p.mqtt && section === 'mqtt' ? p.mqtt.actions : {})) {
    if (action.confirm && !(action.confirm.source in sources)) {
      issue(['mqtt', 'actions', key, 'confirm', 'source'], `no source "${action.confirm.source}" in mqtt.sources`);
    }
  }

  // ---- readings
  for (const [field, reading] of Object.entries(p.readings)) {
    const at = ['readings', field];
    const expected = vocabulary.readings[field];
    if (expected === undefined) {
      issue(at, `a ${p.class} has no reading "${field}" (it has: ${Object.keys(vocabulary.readings).join(', ')})`);
    }
    if ((reading.source === undefined) === (reading.sum === undefined)) {
      issue(at, 'expected exactly one of "source" or "sum"');
      continue;
    }
    let missing = false;
    for (const [i, s] of (reading.source !== undefined ? [reading.source] : (reading.sum ?? [])).entries()) {
      if (!(s in sources)) {
        issue([...at, ...(reading.source !== undefined ? ['source'] : ['sum', i])], `no source "${s}" in ${section}.sources`);
        missing = true;
      }
    }
    if (missing) continue;
    if (reading.in && reading.map) {
      issue([...at, 'in'], 'use either "in" (a boolean) or "map", not both');
      continue;
    }
    let raw: ValueKind | undefined;
    if (reading.sum) {
      const nonNumber = reading.sum.find((s) => sourceKind(p, s) !== 'number');
      if (nonNumber !== undefined) issue([...at, 'sum'], `sum adds numbers; source "${nonNumber}" is ${sourceKind(p, nonNumber) ?? 'unknown'}`);
      raw = 'number';
    } else raw = sourceKind(p, reading.source!);
    let produced: ValueKind | 'mixed' | undefined = raw;
    if (reading.in) produced = 'boolean';
    else if (reading.map) {
      const kinds = new Set(Object.values(reading.map).map(kindOf));
      produced = kinds.size === 1 ? [...kinds][0]! : 'mixed';
      if (Object.keys(reading.map).length === 0) issue([...at, 'map'], 'an empty map makes every value unknown');
    }
    if ((reading.in || reading.map || raw !== 'number') && (reading.scale !== 1 || reading.offset !== 0)) {
      issue([...at, reading.scale !== 1 ? 'scale' : 'offset'], `scale and offset apply to a numeric source without map or in${raw !== 'number' ? ` (this source is ${raw ?? 'unknown'})` : ''}`);
    }
    if (expected === undefined) continue;
    if (expected === 'sg-ready') {
      const bad = reading.map ? Object.values(reading.map).filter((v) => !(SG_READY_STATES as readonly unknown[]).includes(v)) : [];
      if (!reading.map) issue(at, `sgReady needs a map from the device's values to ${SG_READY_STATES.join(', ')}`);
      else if (bad.length > 0) issue([...at, 'map'], `expected SG Ready states (${SG_READY_STATES.join(', ')}), found ${bad.map((b) => JSON.stringify(b)).join(', ')}`);
    } else if (produced !== expected) {
      const how = expected === 'boolean' ? ' (use "in: [...]", a map to true/false, or a boolean source)' : expected === 'number' ? ' (a numeric source, or a map to numbers)' : '';
      issue(at, `${field} is a ${expected}; this reading gives ${produced === 'mixed' ? 'mixed values' : (produced ?? 'nothing')}${how}`);
    }
  }
  for (const field of vocabulary.requiredReadings) {
    if (!(field in p.readings)) issue(['readings'], `a ${p.class} profile needs the reading "${field}"`);
  }

  // ---- controls
  const owner = new Map<string, string>();
  const claim = (at: (string | number)[], who: string, action: ModbusAction) => {
    for (const reg of touched(action)) {
      const previous = owner.get(reg);
      if (previous !== undefined && previous !== who) issue(at, `writes ${reg.replace(':', ' ')}, which ${previous} also writes (overlapping writes)`);
      else owner.set(reg, who);
    }
  };
  for (const [control, spec] of Object.entries(p.controls)) {
    const at = ['controls', control];
    const expected = vocabulary.controls[control];
    if (expected === undefined) {
      issue(at, `a ${p.class} has no control "${control}" (it has: ${Object.keys(vocabulary.controls).join(', ') || 'none'})`);
    }
    if ((spec.action === undefined) === (spec.actions === undefined)) {
      issue(at, 'expected exactly one of "action" (one action carries the value) or "actions" (a fixed action per value)');
      continue;
    }
    if (spec.actions && (spec.map || spec.scale !== 1)) issue([...at, spec.map ? 'map' : 'scale'], '"actions" run fixed writes: map and scale apply only with "action"');
    const used = spec.action !== undefined ? [{ a: spec.action, path: [...at, 'action'] }] : Object.entries(spec.actions ?? {}).map(([v, a]) => ({ a, path: [...at, 'actions', v] }));
    for (const { a, path } of used) {
      const action = actions[a];
      if (!action) {
        issue(path, `no action "${a}" in ${section}.actions`);
        continue;
      }
      if ('topic' in action) continue;
      if (spec.action !== undefined && isSequenceAction(action)) issue(path, `action "${a}" is a fixed sequence: use "actions" to pick it per value`);
      claim(at, `control "${control}"`, action);
    }
    if (expected === undefined) continue;
    const values = expected === 'boolean' ? ['true', 'false'] : expected === 'sg-ready' ? [...SG_READY_STATES] : [];
    const keys = spec.actions ?? spec.map;
    if (values.length > 0) {
      const action = spec.action !== undefined ? actions[spec.action] : undefined;
      const carriesItself = action !== undefined && ('topic' in action || (!isSequenceAction(action) && action.type === 'coil' && expected === 'boolean'));
      if (keys === undefined && !carriesItself) {
        issue(at, `${control} takes ${values.join(' / ')}: give "map" (value → raw) or "actions" (value → action)`);
      } else if (keys !== undefined) {
        for (const v of values) if (!(v in keys)) issue([...at, spec.actions ? 'actions' : 'map'], `needs an entry for ${control} ${v}`);
        for (const k of Object.keys(keys)) if (!values.includes(k)) issue([...at, spec.actions ? 'actions' : 'map', k], `${control} takes ${values.join(' / ')}, not "${k}"`);
      }
    } else if (keys !== undefined) {
      issue([...at, spec.actions ? 'actions' : 'map'], `${control} is a number: it is written through one action with scale, not per value`);
    }
  }
  for (const alternatives of vocabulary.requiredControls) {
    if (!alternatives.some((c) => c in p.controls)) {
      issue(['controls'], `a ${p.class} profile needs the control ${alternatives.map((c) => `"${c}"`).join(' or ')}`);
    }
  }

  // ---- limits against the controls' raw ranges
  const limitChecks: Array<{ control: string; limit: 'currentA' | 'setpointOffsetC'; unit: string }> = [
    { control: 'currentA', limit: 'currentA', unit: 'A' },
    { control: 'setpointOffsetC', limit: 'setpointOffsetC', unit: 'K' },
  ];
  for (const { control, limit, unit } of limitChecks) {
    const range = p.limits[limit];
    if (range && range.min > range.max) issue(['limits', limit, 'max'], `expected min ≤ max, found ${range.min} > ${range.max}`);
    const spec = p.controls[control];
    if (!spec || !(control in vocabulary.controls)) continue;
    if (!range) {
      issue(['limits'], `the control ${control} needs limits.${limit} (the range the device accepts, ${unit})`);
      continue;
    }
    const action = spec.action !== undefined ? actions[spec.action] : undefined;
    if (!action || 'topic' in action || isSequenceAction(action) || action.type === 'coil') continue;
    const checked = limit === 'setpointOffsetC' ? [range.min, 0, range.max] : [range.min, range.max];
    for (const v of checked) {
      const raw = action.encoding === 'float32' ? v * spec.scale : roundRaw(v * spec.scale, spec.round);
      const enc = encodingRange(action.encoding);
      const lo = Math.max(action.rawMin ?? -Infinity, enc.min);
      const hi = Math.min(action.rawMax ?? Infinity, enc.max);
      if (raw < lo || raw > hi) {
        issue(['controls', control], `${v} ${unit} (within limits.${limit}) is written as ${raw}, outside what action "${spec.action}" accepts (${lo}..${hi})`);
      }
    }
  }
  if (p.limits.setpointOffsetC && (p.limits.setpointOffsetC.min > 0 || p.limits.setpointOffsetC.max < 0)) {
    issue(['limits', 'setpointOffsetC'], 'must contain 0 (restoring writes offset 0)');
  }
  if (p.class === 'ev-charger' && !p.limits.currentA) issue(['limits'], 'an ev-charger profile needs limits.currentA (the current per phase the charger accepts, A)');
  const classOfLimit: Record<string, ProfileClass> = { currentA: 'ev-charger', setpointOffsetC: 'hvac', sgReadyMinSwitchMs: 'hvac', minOnMs: 'load', minOffMs: 'load' };
  for (const [limit, cls] of Object.entries(classOfLimit)) {
    if (p.limits[limit as keyof Profile['limits']] !== undefined && p.class !== cls) issue(['limits', limit], `only ${cls} profiles have limits.${limit}`);
  }

  // ---- revert
  if (p.revert.kind === 'device-timer') {
    const r = p.revert;
    if (r.minMs > r.maxMs) issue(['revert', 'maxMs'], `expected minMs ≤ maxMs, found ${r.minMs} > ${r.maxMs}`);
    if (r.action !== undefined) {
      const action = actions[r.action];
      if (!action) issue(['revert', 'action'], `no action "${r.action}" in ${section}.actions`);
      else if (!('topic' in action)) {
        if (isSequenceAction(action)) issue(['revert', 'action'], `action "${r.action}" is a fixed sequence; the timer action carries the time`);
        else claim(['revert', 'action'], 'the revert timer', action);
      }
      if (r.armMs === undefined) issue(['revert'], 'with action, give armMs: the time flexgate arms');
      else if (r.armMs < r.minMs || r.armMs > r.maxMs) issue(['revert', 'armMs'], `expected minMs..maxMs (${r.minMs}..${r.maxMs}), found ${r.armMs}`);
    } else if (r.armMs !== undefined) issue(['revert', 'armMs'], 'armMs is written by the revert action: give action too');
  }
  return issues;
}
