/**
 * Writes schema/flexgate.schema.json from the zod config schema (`npm run gen:schema`).
 * config.test.ts fails when the committed file is stale.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderJsonSchema } from './json-schema.js';

const target = fileURLToPath(new URL('../../schema/flexgate.schema.json', import.meta.url));
writeFileSync(target, renderJsonSchema());
process.stdout.write(`wrote ${target}\n`);
