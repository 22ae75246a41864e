/** Writes schema/profile.schema.json from the profile schema: `npx tsx drivers/profiles/write-json-schema.ts`. */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderProfileJsonSchema } from './json-schema.js';

const target = fileURLToPath(new URL('../../schema/profile.schema.json', import.meta.url));
writeFileSync(target, renderProfileJsonSchema());
process.stdout.write(`wrote ${target}\n`);
