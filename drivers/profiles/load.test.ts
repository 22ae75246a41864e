/**
 * Profiles that are wrong are rejected at load, with the file, the line and column and the path of
 * each problem (as the config is: `file:line:col: path: expected …, found …`); every shipped profile
 * and the blueprint load; random damage to a profile — its values, its text, or JSON — only ever gives
 * a ProfileError, never a crash, and whatever still loads holds together and makes a device.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { silentLog } from '../log.js';
import { systemClock } from '../clock.js';
import { createModbusBus } from '../modbus/bus.js';
import { createProfileDevice } from './device.js';
import { libraryDir, listProfiles, loadProfile, parseProfileText, ProfileError, resolveProfilePath } from './load.js';
import { createModbusProfileTransport } from './modbus-transport.js';
import { checkProfile, type Profile } from './schema.js';
import type { ProfileTransport } from './transport.js';

const phoenix = readFileSync(resolveProfilePath('phoenix-ev-cc'), 'utf8');
const abl = readFileSync(resolveProfilePath('abl-emh1'), 'utf8');
const stiebel = readFileSync(resolveProfilePath('stiebel-wpm-sgready'), 'utf8');
const blueprintPath = join(libraryDir(), '_blueprint.yaml');

/** The problem lines of a profile text, or [] when it loads. */
function problemsOf(text: string, file = 'my-charger.yaml'): string[] {
  try {
    parseProfileText(text, file);
  } catch (e) {
    if (e instanceof ProfileError) return e.message.split('\n').slice(1);
    throw e;
  }
  return [];
}

function replaced(text: string, from: string | RegExp, to: string): string {
  const out = text.replace(from, to);
  if (out === text) throw new Error(`test setup: ${String(from)} not found`);
  return out;
}

/** A device for a profile that loaded: transports and devices are built without I/O. */
function deviceOf(profile: Profile): unknown {
  let transport: ProfileTransport;
  if (profile.transport === 'modbus') {
    const bus = createModbusBus({ connection: { tcp: { host: '127.0.0.1', port: 1 } }, clock: systemClock, log: silentLog });
    transport = createModbusProfileTransport({ unit: bus.unit(1), profile });
  } else {
    transport = { start: async () => {}, stop: async () => {}, read: async () => ({ values: {}, problems: {} }), act: async () => {}, describe: () => 'nowhere' };
  }
  // The installer's range is taken from the profile: a range that does not overlap is a config problem.
  const range = profile.limits.currentA;
  const settings = range ? { evCharger: { phases: 3 as const, minCurrentA: range.min, maxCurrentA: range.max, voltageV: 230 } } : {};
  return createProfileDevice({ id: 'x', profile, transport, settings, clock: systemClock, log: silentLog });
}

describe('device profiles: the library', () => {
  it('every shipped profile loads, holds together, is named as its file and makes a device', () => {
    const names = listProfiles();
    expect(names).toEqual(['abl-emh1', 'eastron-sdm120', 'lambda-eu-l', 'phoenix-ev-cc', 'shelly-plus-plug-s', 'stiebel-wpm-sgready']);
    for (const name of names) {
      const p = loadProfile(name);
      expect(p.profile).toBe(name);
      expect(checkProfile(p)).toEqual([]);
      expect(deviceOf(p)).toBeDefined();
    }
  });

  it('the blueprint loads as it is and is not listed as a shipped profile', () => {
    const p = loadProfile(blueprintPath);
    expect(p.profile).toBe('my-charger');
    expect(listProfiles()).not.toContain('_blueprint');
    expect(deviceOf(p)).toBeDefined();
  });

  it('a file path loads as well as a name; a JSON profile too', () => {
    const dir = mkdtempSync(join(tmpdir(), 'flexgate-profile-'));
    const yamlFile = join(dir, 'my-charger.yaml');
    writeFileSync(yamlFile, replaced(phoenix, 'profile: phoenix-ev-cc', 'profile: my-charger'));
    expect(loadProfile(yamlFile).profile).toBe('my-charger');
    const jsonFile = join(dir, 'my-meter.json');
    writeFileSync(jsonFile, JSON.stringify({ ...(parse(readFileSync(resolveProfilePath('eastron-sdm120'), 'utf8')) as object), profile: 'my-meter' }, null, 2));
    expect(loadProfile(jsonFile)).toMatchObject({ profile: 'my-meter', class: 'meter', modbus: { maxReadRegisters: 40 } });
  });
});

describe('device profiles: bad input is rejected at load with file, line, column and path', () => {
  it('a wrong type', () => {
    const problems = problemsOf(replaced(phoenix, 'power:         { address: 120, type: input,', 'power:         { address: 120, type: inptu,'));
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^my-charger\.yaml:\d+:\d+: modbus\.sources\.power\.type: expected one of "holding", "input", "coil", found "inptu"$/);
  });

  it('a wrong type in a JSON file names the JSON line', () => {
    const json = JSON.stringify(parse(phoenix), null, 2).replace('"encoding": "uint32"', '"encoding": "uint33"');
    const problems = problemsOf(json, 'my-charger.json');
    expect(problems).toHaveLength(1);
    const line = json.split('\n').findIndex((l) => l.includes('uint33')) + 1;
    expect(problems[0]).toMatch(new RegExp(`^my-charger\\.json:${line}:\\d+: modbus\\.sources\\.power\\.encoding: expected one of .*found "uint33"$`));
  });

  it('a source without its register address', () => {
    expect(problemsOf(replaced(phoenix, '{ address: 120, type: input, encoding: uint32', '{ type: input, encoding: uint32')).join('\n')).toMatch(
      /:\d+:\d+: modbus\.sources\.power\.address: required, but missing/,
    );
  });

  it('a reading naming a missing source; a control naming a missing action', () => {
    expect(problemsOf(replaced(phoenix, 'powerW:          { source: power }', 'powerW:          { source: powr }')).join('\n')).toMatch(
      /readings\.powerW\.source: no source "powr" in modbus\.sources/,
    );
    expect(problemsOf(replaced(phoenix, 'currentA: { action: writeSetpoint,', 'currentA: { action: writeSetpiont,')).join('\n')).toMatch(
      /controls\.currentA\.action: no action "writeSetpiont" in modbus\.actions/,
    );
    expect(problemsOf(replaced(abl, 'sum: [l1, l2, l3]', 'sum: [l1, l2, l4]')).join('\n')).toMatch(/readings\.powerW\.sum\[2\]: no source "l4"/);
  });

  it('two controls writing the same register, also through a multi-register value', () => {
    expect(problemsOf(replaced(phoenix, 'writeEnabled:  { address: 400, type: coil }', 'writeEnabled:  { address: 528, type: holding }')).join('\n')).toMatch(
      /controls\.enabled: writes holding 528, which control "currentA" also writes \(overlapping writes\)/,
    );
    // An int32 at 527 covers 527 and 528.
    const wide = replaced(phoenix, 'writeEnabled:  { address: 400, type: coil }', 'writeEnabled:  { address: 527, type: holding, encoding: int32 }');
    expect(problemsOf(wide).join('\n')).toMatch(/writes holding 528, which control "currentA" also writes/);
    // Neighbours that do not overlap are fine.
    expect(problemsOf(replaced(phoenix, 'writeEnabled:  { address: 400, type: coil }', 'writeEnabled:  { address: 526, type: holding, encoding: int32 }')).join('\n')).not.toMatch(/overlapping/);
  });

  it('an out-of-range scale: 0, NaN, absurd magnitudes, in readings and controls', () => {
    for (const scale of ['0', '1e12', '1e-12', '.nan', '.inf']) {
      const text = replaced(phoenix, 'currentLimitA:   { source: setpoint }', `currentLimitA:   { source: setpoint, scale: ${scale} }`);
      expect(problemsOf(text).join('\n')).toMatch(/readings\.currentLimitA\.scale: expected (a finite, non-zero scale|number, found (NaN|Infinity))/);
    }
    expect(problemsOf(replaced(abl, 'currentA: { action: writeDuty, scale: 16.6 }', 'currentA: { action: writeDuty, scale: 0 }')).join('\n')).toMatch(/controls\.currentA\.scale: expected a finite, non-zero scale/);
  });

  it('a missing class field: a reading, a control, the limits', () => {
    expect(problemsOf(replaced(phoenix, '  charging:        { source: state, in: [67, 68] }       # C, D\n', '')).join('\n')).toMatch(/readings: a ev-charger profile needs the reading "charging"/);
    expect(problemsOf(replaced(phoenix, '  currentA: { action: writeSetpoint, round: down }\n', '')).join('\n')).toMatch(/controls: a ev-charger profile needs the control "currentA"/);
    expect(problemsOf(replaced(phoenix, /limits:\n  currentA: \{ min: 6, max: 80 \}\n/, '')).join('\n')).toMatch(/limits: the control currentA needs limits\.currentA/);
  });

  it('a field the class does not have, and a value of the wrong type for its field', () => {
    expect(problemsOf(replaced(phoenix, 'powerW:          { source: power }', 'powerW:          { source: power }\n  socPct:          { source: power }')).join('\n')).toMatch(
      /readings\.socPct: a ev-charger has no reading "socPct" \(it has: powerW, plugged, charging/,
    );
    expect(problemsOf(replaced(phoenix, 'plugged:         { source: state, in: [66, 67, 68] }', 'plugged:         { source: state }')).join('\n')).toMatch(
      /readings\.plugged: plugged is a boolean; this reading gives number \(use "in: \[\.\.\.\]"/,
    );
    expect(problemsOf(replaced(stiebel, '4: forced }', '4: boost }')).join('\n')).toMatch(/readings\.sgReady\.map: expected SG Ready states .*found "boost"/);
    expect(problemsOf(replaced(phoenix, 'plugged:         { source: state, in: [66, 67, 68] }', 'plugged:         { source: state, in: [66], scale: 2 }')).join('\n')).toMatch(
      /readings\.plugged\.scale: scale and offset apply to a numeric source without map or in/,
    );
  });

  it('controls that cannot carry every value of their class', () => {
    expect(problemsOf(replaced(stiebel, 'blocked: sgBlocked, ', '')).join('\n')).toMatch(/controls\.sgReady\.actions: needs an entry for sgReady blocked/);
    expect(problemsOf(replaced(abl, 'map: { "true": 0xA1A1, "false": 0xE0E0 }', 'map: { "true": 0xA1A1 }')).join('\n')).toMatch(/controls\.enabled\.map: needs an entry for enabled false/);
    expect(problemsOf(replaced(abl, 'enabled:  { action: writeCommand, map: { "true": 0xA1A1, "false": 0xE0E0 } }', 'enabled:  { action: writeCommand }')).join('\n')).toMatch(
      /controls\.enabled: enabled takes true \/ false: give "map"/,
    );
    expect(problemsOf(replaced(stiebel, 'actions: { normal: sgNormal,', 'action: sgNormal\n    actions: { normal: sgNormal,')).join('\n')).toMatch(/controls\.sgReady: expected exactly one of "action"/);
  });

  it('raw ranges and function codes that the device could not take', () => {
    // 40 A × 16.6 = 664, beyond what the duty-cycle register takes.
    expect(problemsOf(replaced(abl, 'currentA: { min: 6, max: 32 }', 'currentA: { min: 6, max: 40 }')).join('\n')).toMatch(
      /controls\.currentA: 40 A \(within limits\.currentA\) is written as 664, outside what action "writeDuty" accepts \(100\.\.533\)/,
    );
    expect(problemsOf(replaced(abl, 'functionCode: 16, encoding: uint16, rawMin: 100', 'functionCode: 6, encoding: uint32, rawMin: 100')).join('\n')).toMatch(
      /modbus\.actions\.writeDuty\.functionCode: FC6 writes one register; uint32 needs 2: use 16/,
    );
    expect(problemsOf(replaced(phoenix, 'writeEnabled:  { address: 400, type: coil }', 'writeEnabled:  { address: 400, type: coil, functionCode: 16 }')).join('\n')).toMatch(
      /modbus\.actions\.writeEnabled\.functionCode: a coil is written with FC5, not FC16/,
    );
    expect(problemsOf(replaced(abl, 'rawMin: 100, rawMax: 533', 'rawMin: 600, rawMax: 533')).join('\n')).toMatch(/writeDuty\.rawMax: expected rawMin ≤ rawMax/);
    expect(problemsOf(replaced(phoenix, 'encoding: uint16, rawMin: 6, rawMax: 80', 'encoding: uint16, rawMin: -6, rawMax: 80')).join('\n')).toMatch(/writeSetpoint\.rawMin: -6 does not fit uint16/);
  });

  it('a source the device could never answer in one read', () => {
    const sdm = readFileSync(resolveProfilePath('eastron-sdm120'), 'utf8');
    expect(problemsOf(replaced(sdm, 'voltage:   { address: 0x0000, type: input, encoding: float32 }', 'voltage:   { address: 0x0000, type: input, encoding: string, length: 41 }')).join('\n')).toMatch(
      /modbus\.sources\.voltage: needs 41 registers, more than the device reads at once \(maxReadRegisters 40\)/,
    );
  });

  it('an unknown key (with a suggestion), a missing revert, a second transport section', () => {
    const problems = problemsOf(
      replaced(replaced(phoenix, 'sessionEnergyWh: { source: sessionEnergy }', 'sessionEnergyWh: { source: sessionEnergy, scael: 1 }'), /^revert: .*$/m, ''),
    ).join('\n');
    expect(problems).toMatch(/revert: required, but missing/);
    expect(problems).toMatch(/readings\.sessionEnergyWh\.scael: unknown key "scael" \(did you mean "scale"\?\)/);
    const withMqtt = replaced(phoenix, 'readings:', 'mqtt: { staleAfterMs: 60000, sources: { x: { topic: a, type: number } } }\nreadings:');
    expect(problemsOf(withMqtt).join('\n')).toMatch(/mqtt: transport is modbus: remove the mqtt: section/);
  });

  it('YAML that does not parse names its line', () => {
    const problems = problemsOf(replaced(phoenix, 'class: ev-charger', 'class: [ev-charger'));
    expect(problems[0]).toMatch(/^my-charger\.yaml:\d+:\d+: \(top level\): YAML syntax: /);
    expect(problemsOf('- just\n- a list\n')[0]).toMatch(/expected a mapping/);
    expect(problemsOf('profile: a\nprofile: b\n')[0]).toMatch(/YAML syntax: .*unique/i);
    // Found by the random-damage property below: the yaml library throws (not reports) an alias with no anchor.
    expect(problemsOf('profile: a\nclass: *cls\n')).toEqual(['my-charger.yaml:2:8: (top level): YAML alias *cls: no anchor &cls is set before it']);
  });

  it('an unknown shipped name lists the shipped ones; a missing file is named', () => {
    expect(() => loadProfile('phoenix-ev')).toThrow(/no shipped profile "phoenix-ev" \(shipped: .*phoenix-ev-cc/);
    expect(() => loadProfile('/nonexistent/my.yaml')).toThrow(ProfileError);
    expect(() => loadProfile('/nonexistent/my.yaml')).toThrow(/\/nonexistent\/my\.yaml: \(top level\): file not found/);
  });
});

describe('device profiles: random damage (fast-check)', () => {
  const texts = [...listProfiles().map((n) => readFileSync(resolveProfilePath(n), 'utf8')), readFileSync(blueprintPath, 'utf8')];
  const bases = texts.map((t) => parse(t) as Record<string, unknown>);

  /** Every path of a parsed profile, for damage. */
  function pathsOf(v: unknown, path: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
    if (Array.isArray(v)) v.forEach((x, i) => pathsOf(x, [...path, i], out));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) pathsOf(x, [...path, k], out);
    if (path.length > 0) out.push(path);
    return out;
  }

  /** Loads, and checks that whatever loads holds together and makes a device. Returns whether it loaded. */
  function loadOrProfileError(text: string): boolean {
    let profile: Profile;
    try {
      profile = parseProfileText(text, 'damaged.yaml');
    } catch (e) {
      expect(e).toBeInstanceOf(ProfileError);
      expect((e as ProfileError).problems.length).toBeGreaterThan(0);
      return false;
    }
    expect(checkProfile(profile)).toEqual([]);
    try {
      deviceOf(profile);
    } catch (e) {
      // The only thing a loaded profile may not do: nothing. Report what it was.
      throw new Error(`a profile that loaded could not make a device: ${(e as Error).message}`);
    }
    return true;
  }

  const anyValue = fc.oneof(
    fc.constant(undefined),
    fc.jsonValue({ maxDepth: 2 }),
    fc.string({ maxLength: 12 }),
    fc.integer({ min: -70000, max: 70000 }),
    fc.double(),
    fc.constantFrom('holding', 'input', 'coil', 'uint32', 'low-first', 'power', 'state', 'writeSetpoint', 'sgNormal', 16, 6, 5, 0, true, false, null, []),
  );

  it('changing, adding or deleting values anywhere only ever gives a ProfileError', () => {
    let loaded = 0;
    const damage = fc.tuple(fc.nat({ max: bases.length - 1 }), fc.array(fc.tuple(fc.nat(), anyValue, fc.boolean()), { minLength: 1, maxLength: 3 }));
    fc.assert(
      fc.property(damage, ([which, edits]) => {
        const copy = structuredClone(bases[which]!);
        for (const [pick, value, addSibling] of edits) {
          const paths = pathsOf(copy);
          if (paths.length === 0) break;
          const path = paths[pick % paths.length]!;
          let node = copy as Record<string | number, unknown>;
          for (const k of path.slice(0, -1)) node = node[k] as Record<string | number, unknown>;
          const key = addSibling && !Array.isArray(node) ? `${String(path.at(-1))}2` : path.at(-1)!;
          if (value === undefined) delete node[key];
          else node[key] = value;
        }
        if (loadOrProfileError(stringify(copy))) loaded++;
      }),
      { numRuns: 1500 },
    );
    // Both outcomes are exercised: harmless damage (a comment-like value, a sibling key in a record) loads.
    expect(loaded).toBeGreaterThan(20);
  });

  it('damaging the text itself only ever gives a ProfileError', () => {
    let loaded = 0;
    const edit = fc.tuple(fc.nat(), fc.nat({ max: 8 }), fc.string({ maxLength: 6 }));
    fc.assert(
      fc.property(fc.nat({ max: texts.length - 1 }), fc.array(edit, { minLength: 1, maxLength: 4 }), (which, edits) => {
        let text = texts[which]!;
        for (const [at, remove, insert] of edits) {
          const i = at % (text.length + 1);
          text = text.slice(0, i) + insert + text.slice(i + remove);
        }
        if (loadOrProfileError(text)) loaded++;
      }),
      { numRuns: 800 },
    );
    expect(loaded).toBeGreaterThan(20); // edits inside comments and descriptions load
  });

  it('arbitrary JSON documents only ever give a ProfileError', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => {
        expect(() => parseProfileText(JSON.stringify(value), 'random.json')).toThrow(ProfileError);
      }),
      { numRuns: 300 },
    );
  });
});
