/**
 * The device profile format: one file per device model (YAML or JSON) describing where its values
 * are (sources), how to change it (actions), and how those map onto its device class (readings,
 * controls), its limits and how it reverts by itself. One zod schema gives validation and types;
 * cross-checks (unknown names, overlapping writes, missing class fields) follow in `checkProfile`.
 */
import { z } from 'zod';
import { mqttSectionSchema } from '../mqtt/profile-schema.js';

const int = (min: number, max: number) => z.number().int().min(min).max(max);
const name = () => z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]{0,39}$/, 'expected a name: a letter, then letters, digits or _');

export const PROFILE_CLASSES = ['meter', 'ev-charger', 'hvac', 'load'] as const;
export type ProfileClass = (typeof PROFILE_CLASSES)[number];

export const ENCODINGS = ['int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'float32', 'float64', 'string'] as const;
export type Encoding = (typeof ENCODINGS)[number];

/** Registers an encoding spans (strings: their `length`). */
export function encodingRegisters(encoding: Encoding, length = 1): number {
  switch (encoding) {
    case 'int16':
    case 'uint16':
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

const registerSourceSchema = z
  .strictObject({
    address: int(0, 65535).describe('raw protocol address (no 40001 offset)'),
    type: z.enum(['holding', 'input', 'coil']).describe('holding: FC3, input: FC4, coil: FC1'),
    encoding: z.enum(ENCODINGS).default('uint16').describe('ignored for coils (a coil is a boolean)'),
    wordOrder: z
      .enum(['high-first', 'low-first'])
      .default('high-first')
      .describe('32/64-bit values: "low-first" when the device puts the low word first (word-swapped)'),
    length: int(1, 64).optional().describe('strings: registers (2 characters each)'),
    sentinels: z.array(z.number()).optional().describe('raw values that mean "not available": the value is unknown'),
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
    functionCode: z.union([z.literal(5), z.literal(6), z.literal(16)]).optional().describe('default: 5 for coils, 16 for registers'),
    encoding: z.enum(['int16', 'uint16', 'int32', 'uint32', 'float32']).default('uint16'),
    wordOrder: z.enum(['high-first', 'low-first']).default('high-first'),
    rawMin: z.number().optional().describe('smallest raw value the device accepts'),
    rawMax: z.number().optional().describe('largest raw value the device accepts'),
  })
  .describe('a write of one value (the control supplies it)');

const fixedWriteSchema = z.strictObject({
  address: int(0, 65535),
  type: z.enum(['holding', 'coil']).default('holding'),
  functionCode: z.union([z.literal(5), z.literal(6), z.literal(16)]).optional(),
  value: z.union([int(0, 65535), z.boolean()]).describe('raw register value, or true/false for a coil'),
});

const sequenceActionSchema = z
  .strictObject({
    writes: z.array(fixedWriteSchema).min(1).max(16).describe('written in this order; the first failure stops the sequence'),
  })
  .describe('a fixed sequence of writes (e.g. the SG Ready inputs of one state)');

export const modbusSectionSchema = z
  .strictObject({
    unitId: int(0, 255).default(1).describe('the unit id the device answers by default'),
    port: int(1, 65535).default(502),
    serial: z
      .strictObject({
        baudRate: z.number().int().default(9600),
        parity: z.enum(['none', 'even', 'odd']).default('none'),
        dataBits: z.union([z.literal(7), z.literal(8)]).default(8),
        stopBits: z.union([z.literal(1), z.literal(2)]).default(1),
        framing: z.enum(['rtu', 'ascii']).default('rtu').describe('ascii: Modbus ASCII (set connection.rtu.framing: ascii in the config too)'),
      })
      .optional()
      .describe('the factory serial settings, for RS-485 devices'),
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
    sum: z.array(name()).min(1).optional().describe('the sum of several sources (then scale/offset apply to the sum)'),
    scale: z
      .number()
      .refine((s) => Number.isFinite(s) && s !== 0 && Math.abs(s) >= 1e-9 && Math.abs(s) <= 1e9, 'expected a finite, non-zero scale between 1e-9 and 1e9 in magnitude')
      .default(1),
    offset: z.number().default(0),
    map: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional().describe('raw value → reading (e.g. 67: true, 2: normal)'),
    in: z.array(z.union([z.number(), z.string()])).optional().describe('a boolean reading: true when the raw value is one of these'),
  })
  .describe('how one reading of the class is made from sources');

const controlSchema = z
  .strictObject({
    action: name().optional().describe('the action that carries the value'),
    scale: z
      .number()
      .refine((s) => Number.isFinite(s) && s !== 0 && Math.abs(s) >= 1e-9 && Math.abs(s) <= 1e9, 'expected a finite, non-zero scale between 1e-9 and 1e9 in magnitude')
      .default(1)
      .describe('raw = round(value × scale)'),
    map: z.record(z.string(), z.union([z.number(), z.boolean(), z.string()])).optional().describe('value → raw (e.g. true: 65441)'),
    actions: z.record(z.string(), name()).optional().describe('value → a fixed action (e.g. SG Ready state → its sequence)'),
  })
  .describe('how one control of the class is carried out');

export const profileSchema = z
  .strictObject({
    $schema: z.string().optional(),
    profile: z.string().regex(/^[a-z0-9][a-z0-9-]{0,62}$/, 'expected a name of a-z, 0-9 and -'),
    class: z.enum(PROFILE_CLASSES),
    vendor: z.string().min(1),
    model: z.string().min(1),
    description: z.string().optional(),
    transport: z.enum(['modbus', 'mqtt']).describe('how the device is reached'),
    modbus: modbusSectionSchema.optional(),
    mqtt: mqttSectionSchema.optional(),
    readings: z.record(z.string(), readingSchema),
    controls: z.record(z.string(), controlSchema).default({}),
    limits: z
      .strictObject({
        currentA: z.strictObject({ min: z.number().min(0), max: z.number().max(100) }).optional(),
        setpointOffsetC: z.strictObject({ min: z.number().min(-30), max: z.number().max(30) }).optional(),
        sgReadyMinSwitchMs: int(0, 24 * 3_600_000).optional(),
        ratedPowerW: int(0, 100_000).optional(),
      })
      .default({}),
    revert: z
      .union([
        z.strictObject({ kind: z.literal('none') }),
        z.strictObject({ kind: z.literal('device-timer'), action: name(), description: z.string(), minMs: int(0, 86_400_000), maxMs: int(0, 86_400_000) }),
      ])
      .describe('what the device does by itself when flexgate stops talking to it: "none", or a device-side timer'),
  })
  .describe('a flexgate device profile');

export type Profile = z.output<typeof profileSchema>;
export type ProfileInput = z.input<typeof profileSchema>;
export type RegisterSource = z.output<typeof registerSourceSchema>;
export type ValueAction = z.output<typeof valueActionSchema>;
export type SequenceAction = z.output<typeof sequenceActionSchema>;
export type ModbusAction = ValueAction | SequenceAction;
export type ReadingSpec = z.output<typeof readingSchema>;
export type ControlSpec = z.output<typeof controlSchema>;

export const isSequenceAction = (a: ModbusAction): a is SequenceAction => 'writes' in a;

/** The reading fields and controls each class knows, and which it must have. */
export const CLASS_VOCABULARY: Record<ProfileClass, { readings: readonly string[]; requiredReadings: readonly string[]; controls: readonly string[]; requiredControls: readonly (readonly string[])[] }> = {
  meter: { readings: ['powerW', 'importWh', 'exportWh', 'voltageV', 'frequencyHz'], requiredReadings: ['powerW'], controls: [], requiredControls: [] },
  'ev-charger': {
    readings: ['powerW', 'plugged', 'charging', 'enabled', 'currentLimitA', 'sessionEnergyWh', 'energyWh'],
    requiredReadings: ['powerW', 'plugged', 'charging'],
    controls: ['currentA', 'enabled'],
    requiredControls: [['currentA'], ['enabled']],
  },
  hvac: {
    readings: ['powerW', 'energyWh', 'indoorC', 'outdoorC', 'setpointC', 'setpointOffsetC', 'sgReady', 'mode'],
    requiredReadings: [],
    controls: ['sgReady', 'setpointOffsetC'],
    requiredControls: [['sgReady', 'setpointOffsetC']],
  },
  load: { readings: ['powerW', 'on', 'energyWh', 'temperatureC'], requiredReadings: ['on'], controls: ['on'], requiredControls: [['on']] },
};

export interface ProfileIssue {
  path: (string | number)[];
  message: string;
}

/** Registers (or coils) one write touches: `holding:4001` / `coil:400`. */
function touched(action: ModbusAction): string[] {
  if (isSequenceAction(action)) return action.writes.map((w) => `${w.type}:${w.address}`);
  const n = action.type === 'coil' ? 1 : encodingRegisters(action.encoding);
  return Array.from({ length: n }, (_, i) => `${action.type}:${action.address + i}`);
}

/** Cross-checks the schema cannot express: names that must exist, class fields, overlapping writes. */
export function checkProfile(p: Profile): ProfileIssue[] {
  const issues: ProfileIssue[] = [];
  const vocabulary = CLASS_VOCABULARY[p.class];
  const section = p.transport;
  if (!p[section]) return [{ path: [section], message: `transport ${section} needs a ${section}: section` }];
  const other = section === 'modbus' ? 'mqtt' : 'modbus';
  if (p[other]) issues.push({ path: [other], message: `transport is ${section}: remove the ${other}: section` });
  const sources: Record<string, unknown> = p.modbus?.sources ?? p.mqtt?.sources ?? {};
  const actions: Record<string, ModbusAction | { topic: string }> = p.modbus?.actions ?? p.mqtt?.actions ?? {};
  for (const [key, source] of Object.entries(p.modbus?.sources ?? {})) {
    if (source.encoding === 'string' && source.type !== 'coil' && source.length === undefined) {
      issues.push({ path: ['modbus', 'sources', key, 'length'], message: 'a string source needs its length in registers' });
    }
  }
  for (const [key, action] of Object.entries(p.mqtt?.actions ?? {})) {
    if (action.confirm && !(action.confirm.source in sources)) {
      issues.push({ path: ['mqtt', 'actions', key, 'confirm', 'source'], message: `no source "${action.confirm.source}" in mqtt.sources` });
    }
  }
  for (const [field, reading] of Object.entries(p.readings)) {
    const at = ['readings', field];
    if (!vocabulary.readings.includes(field)) {
      issues.push({ path: at, message: `a ${p.class} has no reading "${field}" (it has: ${vocabulary.readings.join(', ')})` });
    }
    if ((reading.source === undefined) === (reading.sum === undefined)) {
      issues.push({ path: at, message: 'expected exactly one of "source" or "sum"' });
    }
    for (const s of [...(reading.source ? [reading.source] : []), ...(reading.sum ?? [])]) {
      if (!(s in sources)) issues.push({ path: [...at, reading.source === s ? 'source' : 'sum'], message: `no source "${s}" in ${section}.sources` });
    }
  }
  for (const field of vocabulary.requiredReadings) {
    if (!(field in p.readings)) issues.push({ path: ['readings'], message: `a ${p.class} profile needs the reading "${field}"` });
  }
  const owner = new Map<string, string>();
  for (const [control, spec] of Object.entries(p.controls)) {
    const at = ['controls', control];
    if (!vocabulary.controls.includes(control)) {
      issues.push({ path: at, message: `a ${p.class} has no control "${control}" (it has: ${vocabulary.controls.join(', ') || 'none'})` });
    }
    const used = [...(spec.action ? [spec.action] : []), ...Object.values(spec.actions ?? {})];
    if (used.length === 0) issues.push({ path: at, message: 'expected "action" or "actions"' });
    for (const a of used) {
      const action = actions[a];
      if (!action) {
        issues.push({ path: [...at, spec.action === a ? 'action' : 'actions'], message: `no action "${a}" in ${section}.actions` });
        continue;
      }
      if ('topic' in action) continue;
      if (spec.action === a && isSequenceAction(action)) issues.push({ path: [...at, 'action'], message: `action "${a}" is a fixed sequence: use "actions" to pick it per value` });
      for (const reg of touched(action)) {
        const other = owner.get(reg);
        if (other !== undefined && other !== control) {
          issues.push({ path: [...at], message: `writes ${reg.replace(':', ' ')}, which control "${other}" also writes (overlapping writes)` });
        } else owner.set(reg, control);
      }
    }
    if (control === 'sgReady' && spec.actions) {
      for (const state of ['blocked', 'normal', 'encouraged', 'forced']) {
        if (!(state in spec.actions)) issues.push({ path: [...at, 'actions'], message: `SG Ready needs an action for the state "${state}"` });
      }
    }
  }
  for (const alternatives of vocabulary.requiredControls) {
    if (!alternatives.some((c) => c in p.controls)) {
      issues.push({ path: ['controls'], message: `a ${p.class} profile needs the control ${alternatives.map((c) => `"${c}"`).join(' or ')}` });
    }
  }
  if (p.revert.kind === 'device-timer' && !(p.revert.action in actions)) {
    issues.push({ path: ['revert', 'action'], message: `no action "${p.revert.action}" in ${section}.actions` });
  }
  if (p.class === 'ev-charger' && !p.limits.currentA) issues.push({ path: ['limits'], message: 'an ev-charger profile needs limits.currentA (the range the charger accepts)' });
  if (p.controls['setpointOffsetC'] && !p.limits.setpointOffsetC) {
    issues.push({ path: ['limits'], message: 'the control setpointOffsetC needs limits.setpointOffsetC' });
  }
  return issues;
}
