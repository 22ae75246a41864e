import { z } from 'zod';
import { profileSchema } from '../../drivers/profiles/schema.js';
import { configSchema } from './schema.js';

/** The JSON Schema (draft 2020-12) of flexgate.yaml, for editors (yaml-language-server). */
export function renderJsonSchema(): string {
  const schema = z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
  return `${JSON.stringify({ ...schema, title: 'flexgate configuration' }, null, 2)}\n`;
}

/** The JSON Schema of a device profile file (drivers/profiles), for editors. */
export function renderProfileJsonSchema(): string {
  const schema = z.toJSONSchema(profileSchema, { io: 'input', unrepresentable: 'any' });
  return `${JSON.stringify({ ...schema, title: 'flexgate device profile' }, null, 2)}\n`;
}
