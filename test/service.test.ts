/**
 * The systemd unit (docs/flexgate.service) is how the daemon runs in production: its node flags must
 * leave the daemon everything it needs (WebAssembly and fetch for the chain client), and the
 * compiled-JavaScript entry point must run under them.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from './helpers.js';

function serviceFlags(): string[] {
  const unit = readFileSync(join(repoRoot, 'docs', 'flexgate.service'), 'utf8');
  const exec = /^ExecStart=(\S+)\s+(.*?)\s*(\S*dist\/agent\/cli\.js) start --config \$\{FLEXGATE_CONFIG\}$/m.exec(unit);
  expect(exec, 'ExecStart=<node> [flags] /opt/flexgate/dist/agent/cli.js start --config ${FLEXGATE_CONFIG}').not.toBeNull();
  return exec![2]!.split(/\s+/).filter((f) => f !== '');
}

describe('the production service', () => {
  it("its node flags keep WebAssembly and fetch (viem's HTTP transport needs them)", () => {
    const flags = serviceFlags();
    const r = spawnSync(process.execPath, [...flags, '-e', "process.exit(typeof WebAssembly === 'object' && typeof fetch === 'function' ? 0 : 3)"], { encoding: 'utf8' });
    expect(r.stderr).not.toMatch(/disabling flag/);
    expect(r.status).toBe(0);
  });

  it('the agent runs under them (config validate of the example config)', () => {
    const r = spawnSync(process.execPath, [...serviceFlags(), '--import', 'tsx', join(repoRoot, 'agent', 'cli.ts'), 'config', 'validate', join(repoRoot, 'examples', 'flexgate.yaml')], {
      encoding: 'utf8',
      cwd: repoRoot,
    });
    expect(r.status, r.stderr).toBe(0);
  });
});
