import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { privateKeyToAddress } from 'viem/accounts';
import { afterEach, describe, expect, it } from 'vitest';
import { runCli, tempDir } from '../test/helpers.js';
import { initGatewayKey, KeyError, keyPath, loadGatewayKey } from './keys.js';

const dirs: Array<ReturnType<typeof tempDir>> = [];
afterEach(() => dirs.splice(0).forEach((d) => d.remove()));
const dir = () => {
  const d = tempDir();
  dirs.push(d);
  return d.path;
};

describe('gateway key', () => {
  it('is made once, with mode 0600, and its address is the key\'s', () => {
    const d = dir();
    const key = initGatewayKey(d);
    expect(statSync(keyPath(d)).mode & 0o777).toBe(0o600);
    expect(key.address).toBe(privateKeyToAddress(key.privateKey).toLowerCase());
    expect(loadGatewayKey(d)).toEqual(key);
    const before = readFileSync(keyPath(d), 'utf8');
    expect(() => initGatewayKey(d)).toThrow(/already exists/);
    expect(readFileSync(keyPath(d), 'utf8')).toBe(before);
    expect(initGatewayKey(dir()).privateKey).not.toBe(key.privateKey);
  });

  it('refuses a missing, readable-by-others, malformed or out-of-range key without showing it', () => {
    const d = dir();
    expect(() => loadGatewayKey(d)).toThrow(/no gateway key .* run flexgate keys init/);
    const secret = `0x${'ab'.repeat(32)}`;
    writeFileSync(keyPath(d), `${secret}\n`, { mode: 0o644 });
    chmodSync(keyPath(d), 0o644);
    const messages: string[] = [];
    const attempt = () => {
      try {
        loadGatewayKey(d);
      } catch (e) {
        expect(e).toBeInstanceOf(KeyError);
        messages.push((e as Error).message);
      }
    };
    attempt();
    expect(messages.at(-1)).toMatch(/readable by others \(mode 0644\): run chmod 600/);
    chmodSync(keyPath(d), 0o600);
    writeFileSync(keyPath(d), `${secret.slice(0, 40)}\n`);
    attempt();
    expect(messages.at(-1)).toMatch(/does not hold a key/);
    writeFileSync(keyPath(d), `0x${'ff'.repeat(32)}\n`);
    attempt();
    expect(messages.at(-1)).toMatch(/out of range/);
    for (const m of messages) expect(m).not.toContain('abab');
  });

  it('flexgate keys init / show from the command line', async () => {
    const d = dir();
    const init = await runCli(['keys', 'init', '--data-dir', d]);
    expect(init.code).toBe(0);
    const address = /address (0x[0-9a-f]{40})/.exec(init.stdout)![1];
    const show = await runCli(['keys', 'show', '--data-dir', d]);
    expect(show).toMatchObject({ code: 0, stdout: `${address}\n` });
    const again = await runCli(['keys', 'init', '--data-dir', d]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/already exists/);
    const key = readFileSync(keyPath(d), 'utf8').trim();
    expect(init.stdout + show.stdout + again.stdout + again.stderr).not.toContain(key.slice(2));
  });
});

describe('addressOfKey', () => {
  it('is the EVM address of the key (anvil account 0)', async () => {
    const { addressOfKey } = await import('./keys.js');
    expect(addressOfKey('0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80')).toBe('0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266');
  });
});
