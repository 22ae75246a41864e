import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { GENERATED_DIR, compileContracts, renderModule, solcVersion } from './build.js';

describe('generated contract modules', () => {
  // One compilation for the whole file (solc-js takes a few seconds).
  const compiled = compileContracts();

  it('compiles ProofRegistry and Registry without warnings', () => {
    expect(compiled.map((c) => c.name)).toEqual(['ProofRegistry', 'Registry']);
    for (const c of compiled) expect(c.bytecode).toMatch(/^0x(?:[0-9a-f]{2})+$/);
  });

  it('are up to date with the .sol sources (else run `npm run gen:contracts`)', () => {
    const version = solcVersion();
    for (const c of compiled) {
      const path = join(GENERATED_DIR, `${c.name}.ts`);
      expect(readFileSync(path, 'utf8'), `${path} is stale: run npm run gen:contracts`).toBe(renderModule(c, version));
    }
    const expected = compiled.map((c) => `${c.name}.ts`).sort();
    expect(readdirSync(GENERATED_DIR).sort(), 'generated/ holds a module no contract produces').toEqual(expected);
  });

  it('render deterministically', () => {
    const again = compileContracts();
    expect(again.map((c) => renderModule(c))).toEqual(compiled.map((c) => renderModule(c)));
  });
});
