import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { renderJsonSchema } from './json-schema.js';
import { ConfigError, loadConfigFile, parseConfigText } from './load.js';

const root = fileURLToPath(new URL('../../', import.meta.url));

const minimal = `
gateway: { name: home-1, dataDir: /tmp/fg }
devices:
  - id: meter
    class: meter
    driver: sunspec
    connection: { tcp: { host: 127.0.0.1 } }
`;

function problemsOf(text: string): string[] {
  try {
    parseConfigText(text, 'test.yaml');
  } catch (e) {
    if (e instanceof ConfigError) return e.problems.map((p) => `${p.line ?? '-'}:${p.column ?? '-'} ${p.path}: ${p.message}`);
    throw e;
  }
  return [];
}

describe('configuration', () => {
  it('accepts a minimal config and fills the defaults', () => {
    const config = parseConfigText(minimal);
    expect(config.devices[0]).toMatchObject({ id: 'meter', unitId: 1, pollIntervalMs: 1000, timeoutMs: 1000, connection: { tcp: { host: '127.0.0.1', port: 502 } } });
    expect(config.store.flushIntervalMs).toBe(10_000);
    expect(config.log.level).toBe('info');
  });

  it('accepts the example configs shipped in the repository', () => {
    for (const file of ['examples/flexgate.yaml', 'examples/demo-home.yaml']) {
      expect(() => loadConfigFile(`${root}${file}`), file).not.toThrow();
    }
  });

  it('names the path, line, expected and found value of a wrong type', () => {
    const problems = problemsOf(minimal.replace('host: 127.0.0.1', 'host: 127.0.0.1, port: "502x"'));
    expect(problems).toEqual(['7:49 devices[0].connection.tcp.port: expected number, found "502x"']);
  });

  it('rejects unknown keys, suggesting the key that was meant', () => {
    const problems = problemsOf(`${minimal}    pollIntervalMS: 500\n`);
    expect(problems).toEqual(['8:5 devices[0].pollIntervalMS: unknown key "pollIntervalMS" (did you mean "pollIntervalMs"?)']);
    expect(problemsOf(`${minimal}uplinks: {}\n`)[0]).toBe('8:1 uplinks: unknown key "uplinks" (did you mean "uplink"?)');
  });

  it('reports every problem at once, in file order', () => {
    const problems = problemsOf(`
gateway: { name: "Home 1", dataDir: "" }
devices:
  - id: pv
    class: ev-charger
    driver: sunspec
    connection: {}
    unitId: 300
`);
    expect(problems).toHaveLength(5);
    expect(problems[0]).toContain('gateway.name: expected 1-63 characters');
    expect(problems[1]).toContain('gateway.dataDir: expected at least 1 characters, found ""');
    expect(problems.join('\n')).toContain('devices[0].class: driver "sunspec" cannot drive class "ev-charger"');
    expect(problems.join('\n')).toContain('devices[0].connection: expected exactly one of "tcp", "rtu" or "mqtt", found none');
    expect(problems.join('\n')).toContain('devices[0].unitId: expected ≤ 255, found 300');
  });

  it('rejects duplicate ids, two site meters, clashing unit ids and serial lines set two ways', () => {
    const dev = (id: string, cls: string, conn: string, unit: number) =>
      `  - { id: ${id}, class: ${cls}, driver: sunspec, unitId: ${unit}, connection: ${conn} }\n`;
    const rtu = (baud: number) => `{ rtu: { path: /dev/ttyUSB0, baudRate: ${baud} } }`;
    const text =
      'gateway: { name: h, dataDir: /tmp/x }\ndevices:\n' +
      dev('a', 'meter', rtu(9600), 1) +
      dev('a', 'pv', rtu(19200), 2) +
      dev('c', 'meter', rtu(9600), 1);
    const problems = problemsOf(text).join('\n');
    expect(problems).toContain('devices[1].id: duplicate device id (also devices[0])');
    expect(problems).toContain('devices[1].connection.rtu: serial line /dev/ttyUSB0 is set to 9600 8N1 by devices[0]');
    expect(problems).toContain('devices[2].role: only one site meter is allowed');
    expect(problems).toContain('devices[2].unitId: rtu /dev/ttyUSB0 unit 1 is already the meter devices[0]');
    // A hybrid inverter is one unit with two classes.
    expect(problemsOf('gateway: { name: h, dataDir: /tmp/x }\ndevices:\n' + dev('pv', 'pv', rtu(9600), 3) + dev('bat', 'battery', rtu(9600), 3))).toEqual([]);
  });

  it('reports YAML syntax errors with their line', () => {
    expect(problemsOf('gateway: { name: x\ndevices: [')[0]).toMatch(/^\d+:\d+ : YAML syntax/);
    expect(problemsOf('a: 1\na: 2\n')[0]).toMatch(/YAML syntax: Map keys must be unique/);
    expect(problemsOf('')[0]).toContain('the file is empty');
  });

  it('reports an alias without its anchor, and alias bombs, as problems with their line', () => {
    expect(problemsOf('gateway: { name: x, dataDir: /tmp/x }\ndevices: *devs\n')).toEqual(['2:10 : YAML alias *devs: no anchor &devs is set before it']);
    const bomb = ['a: &a [x, x, x, x, x, x, x, x, x, x]', ...'bcdefgh'.split('').map((k, i) => `${k}: &${k} [${Array(10).fill(`*${'abcdefgh'[i]}`).join(', ')}]`), 'gateway: *h'].join('\n');
    expect(problemsOf(bomb)[0]).toMatch(/^-:- : YAML aliases: .*at most 100 alias expansions/);
  });

  it('damaged config text only ever gives a ConfigError', () => {
    const text = readFileSync(`${root}examples/flexgate.yaml`, 'utf8');
    const edit = fc.tuple(fc.nat(), fc.nat({ max: 8 }), fc.stringMatching(/^[*&!|>{}[\],:#'" a-z0-9-]{0,6}$/));
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 4 }), (edits) => {
        let damaged = text;
        for (const [at, remove, insert] of edits) {
          const i = at % (damaged.length + 1);
          damaged = damaged.slice(0, i) + insert + damaged.slice(i + remove);
        }
        try {
          parseConfigText(damaged);
        } catch (e) {
          expect(e).toBeInstanceOf(ConfigError);
          for (const p of (e as ConfigError).problems) expect(p.message.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('names a missing file', () => {
    expect(() => loadConfigFile('/nonexistent/flexgate.yaml')).toThrow(/cannot read config: file not found/);
  });

  it('never throws anything but a ConfigError on random documents', () => {
    const value = fc.letrec((tie) => ({
      node: fc.oneof(
        { depthSize: 'small' },
        fc.string(),
        fc.integer(),
        fc.double(),
        fc.boolean(),
        fc.constant(null),
        fc.array(tie('node'), { maxLength: 3 }),
        fc.dictionary(fc.constantFrom('gateway', 'devices', 'id', 'class', 'driver', 'connection', 'tcp', 'rtu', 'host', 'port', 'name', 'dataDir', 'x'), tie('node'), { maxKeys: 4 }),
      ),
    })).node;
    fc.assert(
      fc.property(value, (doc) => {
        try {
          parseConfigText(stringify(doc));
        } catch (e) {
          expect(e).toBeInstanceOf(ConfigError);
          for (const p of (e as ConfigError).problems) expect(p.message.length).toBeGreaterThan(0);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('the committed JSON Schema is current (npm run gen:schema)', () => {
    expect(readFileSync(`${root}schema/flexgate.schema.json`, 'utf8')).toBe(renderJsonSchema());
  });
});

describe('configuration: device profiles', () => {
  it('loads the profiles a config names, relative paths from the config file, and reports broken ones', async () => {
    const { mkdtempSync, writeFileSync, rmSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(`${tmpdir()}/flexgate-config-`);
    try {
      const broken = readFileSync(`${root}drivers/profiles/library/phoenix-ev-cc.yaml`, 'utf8').replace('type: input, encoding: uint16 }    # IEC', 'type: inptu, encoding: uint16 }    # IEC');
      writeFileSync(`${dir}/my-charger.yaml`, broken);
      writeFileSync(
        `${dir}/flexgate.yaml`,
        [
          'gateway: { name: home, dataDir: ./data }',
          'devices:',
          '  - { id: ev, class: ev-charger, driver: profile, profile: ./my-charger.yaml, connection: { tcp: { host: 10.0.0.5 } }, unitId: 255 }',
          '  - { id: hp, class: ev-charger, driver: profile, profile: lambda-eu-l, connection: { tcp: { host: 10.0.0.6 } } }',
          '  - { id: plug, class: load, driver: profile, profile: shelly-plus-plug-s, connection: { tcp: { host: 10.0.0.7 } }, load: { ratedPowerW: 2000 } }',
          '  - { id: other, class: meter, driver: profile, profile: eastron-sdm630, connection: { tcp: { host: 10.0.0.8 } } }',
          '',
        ].join('\n'),
      );
      let error: unknown;
      try {
        loadConfigFile(`${dir}/flexgate.yaml`);
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      const text = (error as ConfigError).message;
      expect(text).toMatch(/devices\[0\]\.profile: .*my-charger\.yaml:\d+:\d+: modbus\.sources\.state\.type: expected one of "holding", "input", "coil", found "inptu"/);
      expect(text).toMatch(/devices\[1\]\.profile: profile "lambda-eu-l" is for class hvac, but the device is class ev-charger/);
      expect(text).toMatch(/devices\[2\]\.profile: profile "shelly-plus-plug-s" talks mqtt: use driver mqtt/);
      expect(text).toMatch(/devices\[3\]\.profile: .*no shipped profile "eastron-sdm630"/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
