/**
 * Writes schema/flexgate.schema.json (config) and schema/profile.schema.json (device profiles) from their zod schemas (`npm run gen:schema`).
 * config.test.ts fails when the committed file is stale.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderJsonSchema, renderProfileJsonSchema } from './json-schema.js';

const target = fileURLToPath(new URL('../../schema/flexgate.schema.json', import.meta.url));
writeFileSync(target, renderJsonSchema());
process.stdout.write(`wrote ${target}\n`);
const profileTarget = fileURLToPath(new URL('../../schema/profile.schema.json', import.meta.url));
writeFileSync(profileTarget, renderProfileJsonSchema());
process.stdout.write(`wrote ${profileTarget}\n`);
