/**
 * The JSON Schema (draft 2020-12) of a device profile file, rendered from the zod schema, for editors
 * (yaml-language-server: `# yaml-language-server: $schema=…/schema/profile.schema.json`). The file
 * schema/profile.schema.json is written by `npx tsx drivers/profiles/write-json-schema.ts` (and by
 * `npm run gen:schema`); json-schema.test.ts fails when it is stale. The cross-checks of
 * `checkProfile` (names that must exist, overlapping writes, class fields) are not expressible in
 * JSON Schema: `flexgate config validate` reports those.
 */
import { z } from 'zod';
import { profileSchema } from './schema.js';

export function renderProfileJsonSchema(): string {
  const schema = z.toJSONSchema(profileSchema, { io: 'input', unrepresentable: 'any' });
  return `${JSON.stringify({ ...schema, title: 'flexgate device profile' }, null, 2)}\n`;
}
