/**
 * The flexgate command as an installer uses it: exit codes and messages of PROTOCOL.md §8, config
 * validation, the missing-config message, and scan against simulated devices.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfigText } from '../agent/config/load.js';
import { repoRoot, runCli, startFrozenHome, tempDir } from './helpers.js';

const dir = tempDir();
afterAll(() => dir.remove());

describe('flexgate CLI', () => {
  it('validates a good config (exit 0) and lists every problem of a bad one (exit 2)', async () => {
    const good = await runCli(['config', 'validate', join(repoRoot, 'examples/flexgate.yaml')]);
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/valid \(3 devices: pv \(pv\), battery \(battery\), meter \(meter\)\)/);

    const bad = join(dir.path, 'bad.yaml');
    writeFileSync(bad, 'gateway: { name: home, dataDir: /tmp/x }\ndevices:\n  - id: pv\n    class: pv\n    driver: sunspec\n    conection: { tcp: { host: 1.2.3.4 } }\n');
    const result = await runCli(['config', 'validate', bad]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toContain(`${bad}:6:5: devices[0].conection: unknown key "conection" (did you mean "connection"?)`);
    expect(result.stderr).toContain('devices[0].connection: required, but missing');
  });

  it('without a configuration, start says so and points to the demo (exit 2)', async () => {
    const empty = tempDir();
    try {
      const env = { FLEXGATE_CONFIG: '' };
      const result = await runCli(['start'], { cwd: empty.path, env });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/no configuration found/);
      expect(result.stderr).toMatch(/flexgate demo/);
      // FLEXGATE_CONFIG and ./flexgate.yaml are looked at, in that order.
      writeFileSync(join(empty.path, 'flexgate.yaml'), 'gateway: {}\n');
      const local = await runCli(['config', 'validate'], { cwd: empty.path, env });
      expect(local.code).toBe(2);
      expect(local.stderr).toContain(`${join(empty.path, 'flexgate.yaml')}:1:10: gateway.name: required`);
      const viaEnv = await runCli(['config', 'validate'], { cwd: empty.path, env: { FLEXGATE_CONFIG: join(repoRoot, 'examples/flexgate.yaml') } });
      expect(viaEnv.code).toBe(0);
    } finally {
      empty.remove();
    }
  });

  it('rejects unknown commands and options with usage errors (exit 2)', async () => {
    expect((await runCli(['frobnicate'])).code).toBe(2);
    const r = await runCli(['scan', '--host', 'x', '--units', '1-300']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--units: expected unit ids from 0 to 255, found "1-300"/);
    expect((await runCli(['--version'])).stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('scan finds the simulated SunSpec devices and prints config an installer can paste', async () => {
    const home = await startFrozenHome();
    try {
      const gateway = home.device('battery').modbus!;
      const result = await runCli(['scan', '--host', gateway.host, '--port', String(gateway.port), '--units', '1-3', '--timeout-ms', '300']);
      expect(result.code).toBe(0);
      expect(result.stderr).toMatch(/unit 1: .*-> battery/);
      expect(result.stderr).toMatch(/unit 2: .*-> meter/);
      expect(result.stderr).toMatch(/unit 3: nothing \(.+\)/);
      const pasted = parse(result.stdout) as { devices: Array<{ class: string; unitId: number }> };
      expect(pasted.devices.map((d) => [d.class, d.unitId])).toEqual([
        ['battery', 1],
        ['meter', 2],
      ]);
      // What scan prints is a valid devices list.
      const config = parseConfigText(`gateway: { name: home, dataDir: /tmp/x }\n${result.stdout}`);
      expect(config.devices).toHaveLength(2);

      const none = await runCli(['scan', '--host', '127.0.0.1', '--port', '1', '--units', '1', '--timeout-ms', '200']);
      expect(none.code).toBe(1);
      expect(none.stderr).toMatch(/unit 1: nothing \(.*(connect|refused).*\)/i);
      expect(none.stderr).toMatch(/no SunSpec device found/);
    } finally {
      await home.stop();
    }
  });
});
