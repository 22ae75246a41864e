/**
 * Profiles that are wrong are rejected at load, with the file, the line and column and the path of
 * each problem; every shipped profile loads; random damage to a profile only ever gives a
 * ProfileError, never a crash or a profile that loads with a broken reference.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { listProfiles, loadProfile, parseProfileText, ProfileError, resolveProfilePath } from './load.js';
import { checkProfile } from './schema.js';

const phoenix = readFileSync(resolveProfilePath('phoenix-ev-cc'), 'utf8');

function problemsOf(text: string): string[] {
  try {
    parseProfileText(text, 'my-charger.yaml');
  } catch (e) {
    if (e instanceof ProfileError) return e.message.split('\n').slice(1);
    throw e;
  }
  return [];
}

describe('device profiles: loading', () => {
  it('every shipped profile loads and holds together', () => {
    const names = listProfiles();
    expect(names).toEqual(expect.arrayContaining(['eastron-sdm120', 'lambda-eu-l', 'phoenix-ev-cc', 'shelly-plus-plug-s', 'stiebel-wpm-sgready']));
    for (const name of names) {
      const p = loadProfile(name);
      expect(p.profile).toBe(name);
      expect(checkProfile(p)).toEqual([]);
    }
  });

  it('a wrong type is reported with file, line, column and path', () => {
    const problems = problemsOf(phoenix.replace('power:         { address: 120, type: input,', 'power:         { address: 120, type: inptu,'));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^my-charger\.yaml:\d+:\d+: modbus\.sources\.power\.type: expected one of "holding", "input", "coil", found "inptu"$/);
  });

  it('a reading naming a missing register source is rejected', () => {
    const problems = problemsOf(phoenix.replace('powerW:          { source: power }', 'powerW:          { source: powr }'));
    expect(problems.join('\n')).toMatch(/readings\.powerW\.source: no source "powr" in modbus\.sources/);
  });

  it('two controls writing the same register are rejected (overlapping writes)', () => {
    const text = phoenix.replace('writeEnabled:  { address: 400, type: coil }', 'writeEnabled:  { address: 528, type: holding }');
    expect(problemsOf(text).join('\n')).toMatch(/controls\.enabled: writes holding 528, which control "currentA" also writes \(overlapping writes\)/);
  });

  it('an out-of-range scale is rejected', () => {
    for (const scale of ['0', '1e12', '.nan']) {
      const text = phoenix.replace('currentLimitA:   { source: setpoint }', `currentLimitA:   { source: setpoint, scale: ${scale} }`);
      expect(problemsOf(text).join('\n')).toMatch(/readings\.currentLimitA\.scale: expected (a finite, non-zero scale|number, found NaN)/);
    }
  });

  it('a missing class field, an unknown key and a missing revert are each named', () => {
    const problems = problemsOf(
      phoenix
        .replace('  charging:        { source: state, in: [67, 68] }       # C, D\n', '')
        .replace('  sessionEnergyWh: { source: sessionEnergy }', '  sessionEnergyWh: { source: sessionEnergy, scael: 1 }')
        .replace(/^revert: .*$/m, ''),
    ).join('\n');
    expect(problems).toMatch(/revert: required, but missing/);
    expect(problems).toMatch(/readings\.sessionEnergyWh\.scael: unknown key "scael" \(did you mean "scale"\?\)/);
  });

  it('a profile of the right shape but without a class requirement says which', () => {
    expect(problemsOf(phoenix.replace('  charging:        { source: state, in: [67, 68] }       # C, D\n', '')).join('\n')).toMatch(
      /readings: a ev-charger profile needs the reading "charging"/,
    );
  });

  it('an unknown shipped name lists the shipped ones', () => {
    expect(() => loadProfile('phoenix-ev')).toThrow(/no shipped profile "phoenix-ev" \(shipped: .*phoenix-ev-cc/);
  });

  it('random damage only ever gives a ProfileError (fast-check)', () => {
    const base = parse(phoenix) as Record<string, unknown>;
    const paths: string[][] = [];
    const walk = (v: unknown, path: string[]) => {
      if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v)) walk(x, [...path, k]);
      paths.push(path);
    };
    walk(base, []);
    const damaged = fc.tuple(fc.constantFrom(...paths.filter((p) => p.length > 0)), fc.oneof(fc.constant(undefined), fc.jsonValue(), fc.string(), fc.integer(), fc.double()));
    fc.assert(
      fc.property(damaged, ([path, value]) => {
        const copy = structuredClone(base);
        let node = copy as Record<string, unknown>;
        for (const k of path.slice(0, -1)) node = node[k] as Record<string, unknown>;
        if (value === undefined) delete node[path.at(-1)!];
        else node[path.at(-1)!] = value;
        try {
          const p = parseProfileText(stringify(copy), 'damaged.yaml');
          // It loaded: then every name it uses must exist.
          expect(checkProfile(p)).toEqual([]);
        } catch (e) {
          expect(e).toBeInstanceOf(ProfileError);
        }
      }),
      { numRuns: 1000 },
    );
  });
});
