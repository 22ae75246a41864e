import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPublicClient, createWalletClient, http, parseEther, type Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { AnvilNotFoundError, AnvilRpcError, AnvilStartError, anvilBinaryPath, startAnvil, type Anvil } from './anvil.js';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};
const waitUntil = async (cond: () => boolean, timeoutMs: number): Promise<boolean> => {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
};

describe('anvil', () => {
  let anvil: Anvil;
  beforeAll(async () => {
    anvil = await startAnvil({ chainId: 4242 });
  });
  afterAll(async () => {
    await anvil?.stop();
  });

  it('runs on loopback with the chain id asked for and funded dev accounts read from anvil', async () => {
    expect(anvil.rpcUrl).toBe(`http://127.0.0.1:${anvil.port}`);
    expect(anvil.chainId).toBe(4242);
    expect(Number(BigInt(await anvil.rpc<Hex>('eth_chainId')))).toBe(4242);
    expect(anvil.accounts).toHaveLength(10);
    const client = createPublicClient({ chain: anvil.chain, transport: http(anvil.rpcUrl), cacheTime: 0 });
    expect(await client.getChainId()).toBe(4242);
    for (const { address, privateKey } of anvil.accounts) {
      expect(privateKeyToAccount(privateKey).address.toLowerCase()).toBe(address.toLowerCase());
      expect(await client.getBalance({ address })).toBeGreaterThan(parseEther('1000'));
    }
    expect(anvil.privateKeys).toEqual(anvil.accounts.map((a) => a.privateKey));
    await expect(anvil.rpc('no_such_method')).rejects.toBeInstanceOf(AnvilRpcError);
  });

  it('simulates reorgs: snapshot/revert, anvil_reorg and rollback undo a mined transfer', async () => {
    const client = createPublicClient({ chain: anvil.chain, transport: http(anvil.rpcUrl), cacheTime: 0 });
    const wallet = createWalletClient({ account: privateKeyToAccount(anvil.privateKeys[1] as Hex), chain: anvil.chain, transport: http(anvil.rpcUrl) });
    const to = anvil.accounts[2]?.address as Hex;
    const transfer = async () => {
      const hash = await wallet.sendTransaction({ to, value: parseEther('1') });
      return client.waitForTransactionReceipt({ hash });
    };
    const before = await client.getBalance({ address: to });

    const snap = await anvil.snapshot();
    const r1 = await transfer();
    expect(await client.getBalance({ address: to })).toBe(before + parseEther('1'));
    expect(await anvil.revert(snap)).toBe(true);
    expect(await client.getBalance({ address: to })).toBe(before);
    expect(await client.getBlockNumber()).toBe(r1.blockNumber - 1n);

    // A reorg of depth 2 over the block holding the transfer: same height, different blocks, no transfer.
    const r2 = await transfer();
    await anvil.mine(1);
    const height = await client.getBlockNumber();
    await anvil.reorg(2);
    expect(await client.getBlockNumber()).toBe(height);
    expect((await client.getBlock({ blockNumber: r2.blockNumber })).hash).not.toBe(r2.blockHash);
    await expect(client.getTransactionReceipt({ hash: r2.transactionHash })).rejects.toThrow();
    expect(await client.getBalance({ address: to })).toBe(before);

    // Rollback shortens the chain.
    const r3 = await transfer();
    await anvil.rollback(1);
    expect(await client.getBlockNumber()).toBe(r3.blockNumber - 1n);
    expect(await client.getBalance({ address: to })).toBe(before);
  });

  it('mines on demand with noMining, and stop() is idempotent and ends the node', async () => {
    const node = await startAnvil({ noMining: true, accounts: 2 });
    try {
      expect(node.chainId).toBe(31337);
      expect(node.accounts).toHaveLength(2);
      const client = createPublicClient({ chain: node.chain, transport: http(node.rpcUrl), cacheTime: 0 });
      const wallet = createWalletClient({ account: privateKeyToAccount(node.privateKeys[0] as Hex), chain: node.chain, transport: http(node.rpcUrl) });
      const hash = await wallet.sendTransaction({ to: node.accounts[1]?.address as Hex, value: 1n });
      expect(await client.getBlockNumber()).toBe(0n);
      await node.mine();
      expect((await client.getTransactionReceipt({ hash })).blockNumber).toBe(1n);
      await node.setAutomine(true);
      const second = await wallet.sendTransaction({ to: node.accounts[1]?.address as Hex, value: 1n });
      // Automine mines a moment after the node accepts the transaction.
      expect((await client.waitForTransactionReceipt({ hash: second, pollingInterval: 20, timeout: 5000 })).blockNumber).toBe(2n);
    } finally {
      await Promise.all([node.stop(), node.stop()]);
      await node.stop();
    }
    expect(alive(node.pid)).toBe(false);
    await expect(node.rpc('eth_chainId')).rejects.toThrow();
  });

  it('fails clearly when the binary is missing or anvil cannot start', async () => {
    expect(() => anvilBinaryPath('/nonexistent/anvil')).toThrow(AnvilNotFoundError);
    await expect(startAnvil({ binaryPath: '/nonexistent/anvil' })).rejects.toThrow(/anvil binary not found at \/nonexistent\/anvil/);
    expect(anvilBinaryPath(undefined)).toMatch(/anvil$/);
    await expect(startAnvil({ extraArgs: ['--no-such-flag'] })).rejects.toThrow(AnvilStartError);
  });

  it('kills the node when the process that started it exits without stop()', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'flexgate-anvil-test-'));
    try {
      const script = join(dir, 'orphan.mts');
      const anvilModule = fileURLToPath(new URL('./anvil.ts', import.meta.url));
      writeFileSync(
        script,
        `import { startAnvil } from ${JSON.stringify(anvilModule)};\n` +
          `const node = await startAnvil();\n` +
          `process.stdout.write(node.pid + '\\n');\n` +
          `if (process.argv[2] === 'exit') setTimeout(() => process.exit(0), 50);\n` +
          `else setInterval(() => {}, 1000);\n`,
      );
      for (const how of ['exit', 'SIGTERM'] as const) {
        const child = spawn(process.execPath, ['--import', 'tsx', script, how], { stdio: ['ignore', 'pipe', 'inherit'] });
        const pid = await new Promise<number>((resolve, reject) => {
          child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
          child.once('exit', (code) => reject(new Error(`fixture exited with ${code}`)));
        });
        const exited = new Promise((r) => child.once('exit', r));
        if (how === 'SIGTERM') child.kill('SIGTERM');
        await exited;
        expect(await waitUntil(() => !alive(pid), 5_000), `anvil ${pid} outlived its parent (${how})`).toBe(true);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
