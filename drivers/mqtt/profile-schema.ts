/**
 * The `mqtt:` section of a device profile: where an MQTT device publishes its state (JSON fields or
 * plain values on topics), how it is commanded (payload templates), when its values count as stale,
 * and how to ask it for a fresh state. `{topic}` in any topic is the device's base topic from the
 * config (connection.mqtt.topic); `{value}` in a payload is the encoded control value.
 */
import { z } from 'zod';

const name = () => z.string().regex(/^[a-zA-Z][a-zA-Z0-9_]{0,39}$/, 'expected a name: a letter, then letters, digits or _');
const topic = () =>
  z
    .string()
    .min(1)
    .regex(/^[^#+]*$/, 'expected a topic without wildcards (# or +)')
    .describe('an MQTT topic; {topic} is the device base topic');

export const mqttSourceSchema = z
  .strictObject({
    topic: topic(),
    path: z
      .string()
      .regex(/^$|^[A-Za-z0-9_$-]+(\[\d+\])*(\.[A-Za-z0-9_$-]+(\[\d+\])*)*$/, 'expected a JSON path like aenergy.total or a[0].b (empty: the whole payload)')
      .default('')
      .describe('where the value is in the JSON payload; empty for a plain-text payload'),
    type: z.enum(['number', 'boolean', 'string']),
  })
  .describe('one value the device publishes');

export const mqttActionSchema = z
  .strictObject({
    topic: topic(),
    payload: z.string().describe('the command payload; {value} is replaced by the encoded value'),
    qos: z.union([z.literal(0), z.literal(1)]).default(1),
    retain: z.boolean().default(false),
    confirm: z
      .strictObject({
        source: name().describe('the source that shows the command took effect'),
        values: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional().describe('payload value → the source value expected'),
        timeoutMs: z.number().int().min(100).max(60_000).default(5000),
      })
      .optional()
      .describe('wait until the device shows the change; without it, the broker accepting the command confirms it'),
  })
  .describe('one command the device takes');

export const mqttSectionSchema = z
  .strictObject({
    staleAfterMs: z.number().int().min(1000).max(86_400_000).describe('a value not refreshed for this long is unknown; all stale → the device is offline'),
    availability: z
      .strictObject({ topic: topic(), online: z.string(), offline: z.string() })
      .optional()
      .describe('a topic where the device (or its last will) says whether it is online'),
    sources: z.record(name(), mqttSourceSchema),
    actions: z.record(name(), mqttActionSchema).default({}),
    refresh: z
      .strictObject({ topic: topic(), payload: z.string(), everyMs: z.number().int().min(1000).max(86_400_000) })
      .optional()
      .describe('a command that makes the device publish its state now, sent this often'),
  })
  .describe('topics of an MQTT device');

export type MqttSection = z.output<typeof mqttSectionSchema>;
export type MqttSource = z.output<typeof mqttSourceSchema>;
export type MqttAction = z.output<typeof mqttActionSchema>;
