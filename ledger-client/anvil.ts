/**
 * A real anvil node (from the @foundry-rs/anvil npm package) on a free loopback port, for the
 * demo and the tests. The dev accounts' keys are read from anvil's own `--config-out` file, never
 * written down here. The child is killed by stop(), and also when this process exits or gets
 * SIGINT/SIGTERM/SIGHUP, so a test that forgets stop() leaves no node behind.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defineChain, type Address, type Chain, type Hex } from 'viem';

export interface AnvilOptions {
  /** Chain id (`--chain-id`), default 31337. */
  chainId?: number;
  /** Interval mining every this many seconds (`--block-time`); default: a block per transaction. */
  blockTimeSec?: number;
  /** No mining until mine() is called (`--no-mining`). */
  noMining?: boolean;
  /** Number of funded dev accounts, default 10. */
  accounts?: number;
  /** EVM hardfork (`--hardfork`), default anvil's latest. */
  hardfork?: string;
  /** The anvil executable; default the FLEXGATE_ANVIL_BIN env var, else the npm package's binary. */
  binaryPath?: string;
  /** How long to wait for the node to answer eth_chainId, default 20 000 ms. */
  startTimeoutMs?: number;
  /** Further anvil arguments, passed as they are. */
  extraArgs?: readonly string[];
}

export interface DevAccount {
  address: Address;
  privateKey: Hex;
}

export interface Anvil {
  /** http://127.0.0.1:<port> */
  readonly rpcUrl: string;
  readonly port: number;
  readonly chainId: number;
  /** The anvil process id. */
  readonly pid: number;
  /** A viem chain for this node (id, name "anvil", rpcUrl). */
  readonly chain: Chain;
  /** The funded dev accounts, in anvil's order, read from anvil's --config-out. */
  readonly accounts: readonly DevAccount[];
  /** Same keys as accounts[i].privateKey. */
  readonly privateKeys: readonly Hex[];
  /** One JSON-RPC call; throws AnvilRpcError on an error reply. */
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  /** Mines `blocks` blocks now (anvil_mine), default 1. */
  mine(blocks?: number): Promise<void>;
  /** evm_snapshot: an id to revert() to. */
  snapshot(): Promise<Hex>;
  /** evm_revert: back to the state of the snapshot (which is used up); false if unknown. */
  revert(snapshotId: Hex): Promise<boolean>;
  /**
   * anvil_reorg: replaces the last `depth` blocks with as many new ones. `txs` are included in the
   * new blocks: [raw signed tx or tx request, block offset 0..depth-1 from the fork point].
   */
  reorg(depth: number, txs?: ReadonlyArray<readonly [Hex | Record<string, unknown>, number]>): Promise<void>;
  /** anvil_rollback: drops the last `depth` blocks (the chain gets shorter). */
  rollback(depth: number): Promise<void>;
  /** evm_setAutomine. */
  setAutomine(enabled: boolean): Promise<void>;
  /** Kills the node (SIGTERM, SIGKILL after 2 s). Idempotent; resolves once it has exited. */
  stop(): Promise<void>;
}

export class AnvilNotFoundError extends Error {
  override readonly name = 'AnvilNotFoundError';
}
export class AnvilStartError extends Error {
  override readonly name = 'AnvilStartError';
}
export class AnvilRpcError extends Error {
  override readonly name = 'AnvilRpcError';
  constructor(
    readonly method: string,
    readonly code: number,
    message: string,
  ) {
    super(`${method}: ${message} (code ${code})`);
  }
}

const DEFAULT_CHAIN_ID = 31337;
const PLATFORM_PACKAGES: Record<string, string | undefined> = {
  'linux-x64': '@foundry-rs/anvil-linux-amd64',
  'linux-arm64': '@foundry-rs/anvil-linux-arm64',
  'darwin-x64': '@foundry-rs/anvil-darwin-amd64',
  'darwin-arm64': '@foundry-rs/anvil-darwin-arm64',
  'win32-x64': '@foundry-rs/anvil-win32-amd64',
};

/**
 * The anvil executable, found the way the package's own bin.mjs finds it: the platform package's
 * bin/anvil, else the wrapper package's dist/ (where its postinstall would put a download).
 */
export function anvilBinaryPath(override: string | undefined = process.env.FLEXGATE_ANVIL_BIN): string {
  if (override) {
    if (!existsSync(override)) throw new AnvilNotFoundError(`anvil binary not found at ${override} (FLEXGATE_ANVIL_BIN or binaryPath)`);
    return override;
  }
  const require = createRequire(import.meta.url);
  const exe = process.platform === 'win32' ? 'anvil.exe' : 'anvil';
  const candidates: string[] = [];
  const platformPackage = PLATFORM_PACKAGES[`${process.platform}-${process.arch}`];
  if (platformPackage) {
    try {
      candidates.push(require.resolve(`${platformPackage}/bin/${exe}`));
    } catch {
      candidates.push(`${platformPackage}/bin/${exe} (not installed)`);
    }
  }
  try {
    candidates.push(join(require.resolve('@foundry-rs/anvil/package.json'), '..', '..', 'dist', exe));
  } catch {
    // the wrapper package is not installed either
  }
  const found = candidates.find((c) => existsSync(c));
  if (found) return found;
  throw new AnvilNotFoundError(
    `anvil binary not found for ${process.platform}-${process.arch}; looked at: ${candidates.join(', ') || '(nothing)'}. ` +
      'Install the dev dependency @foundry-rs/anvil (npm ci), or set FLEXGATE_ANVIL_BIN to an anvil executable.',
  );
}

// Every live node (and its scratch directory), killed when this process goes away.
const live = new Map<ChildProcess, string>();
let hooksInstalled = false;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function killAll(): void {
  for (const [child, workDir] of live) {
    try {
      child.kill('SIGKILL');
      rmSync(workDir, { recursive: true, force: true });
    } catch {
      // already gone
    }
  }
  live.clear();
}

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', killAll);
  for (const signal of SIGNALS) {
    const onSignal = (): void => {
      killAll();
      process.off(signal, onSignal);
      // Keep the default meaning of the signal (terminate) unless someone else handles it.
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    };
    process.on(signal, onSignal);
  }
}

/** Starts anvil and resolves once it answers eth_chainId with the expected id. */
export async function startAnvil(options: AnvilOptions = {}): Promise<Anvil> {
  const chainId = options.chainId ?? DEFAULT_CHAIN_ID;
  const binary = anvilBinaryPath(options.binaryPath ?? process.env.FLEXGATE_ANVIL_BIN);
  const startTimeoutMs = options.startTimeoutMs ?? 20_000;
  const workDir = mkdtempSync(join(tmpdir(), 'flexgate-anvil-'));
  const configPath = join(workDir, 'anvil.json');
  const args = ['--host', '127.0.0.1', '--port', '0', '--chain-id', String(chainId), '--config-out', configPath, '--color', 'never'];
  if (options.blockTimeSec !== undefined) args.push('--block-time', String(options.blockTimeSec));
  if (options.noMining) args.push('--no-mining');
  if (options.accounts !== undefined) args.push('--accounts', String(options.accounts));
  if (options.hardfork) args.push('--hardfork', options.hardfork);
  if (options.extraArgs) args.push(...options.extraArgs);

  const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  installExitHooks();
  live.set(child, workDir);

  // anvil logs every RPC call to stdout: keep draining it (a full pipe would stall the node) and
  // keep the last lines for error messages.
  const tail: string[] = [];
  let port: number | undefined;
  let pending = '';
  const onData = (chunk: Buffer): void => {
    pending += chunk.toString('utf8');
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      tail.push(line);
      if (tail.length > 40) tail.shift();
      if (port === undefined) {
        const m = /Listening on 127\.0\.0\.1:(\d+)/.exec(line);
        if (m) port = Number(m[1]);
      }
    }
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);

  let exited = false;
  let spawnError: Error | undefined;
  const exitPromise = new Promise<void>((resolve) => {
    child.once('exit', () => {
      exited = true;
      live.delete(child);
      resolve();
    });
    child.once('error', (err) => {
      spawnError = err;
      exited = true;
      live.delete(child);
      resolve();
    });
  });

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (!exited) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 2_000);
        await exitPromise;
        clearTimeout(timer);
      }
      rmSync(workDir, { recursive: true, force: true });
    })();
    return stopping;
  };

  const fail = async (why: string): Promise<never> => {
    await stop();
    const output = tail.filter((l) => l.trim() !== '').slice(-15).join('\n');
    throw new AnvilStartError(`anvil (${binary}) ${why}${output ? `; its last output:\n${output}` : ''}`);
  };

  const deadline = Date.now() + startTimeoutMs;
  let rpcUrl = '';
  let answeredChainId: number | undefined;
  while (answeredChainId === undefined) {
    if (spawnError) return fail(`could not be started: ${spawnError.message}`);
    if (exited) return fail(`exited during start (exit code ${child.exitCode ?? 'none'}, signal ${child.signalCode ?? 'none'})`);
    if (Date.now() > deadline) return fail(`did not answer eth_chainId within ${startTimeoutMs} ms`);
    if (port !== undefined) {
      rpcUrl = `http://127.0.0.1:${port}`;
      try {
        answeredChainId = Number(BigInt(await jsonRpc<Hex>(rpcUrl, 'eth_chainId', [], 2_000)));
        break;
      } catch {
        // not up yet
      }
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  if (answeredChainId !== chainId) return fail(`answered chain id ${answeredChainId}, expected ${chainId}`);

  let accounts: DevAccount[];
  try {
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as { available_accounts: string[]; private_keys: string[] };
    accounts = config.available_accounts.map((address, i) => ({
      address: address as Address,
      privateKey: config.private_keys[i] as Hex,
    }));
  } catch (err) {
    return fail(`wrote no readable --config-out (${(err as Error).message})`);
  }
  rmSync(workDir, { recursive: true, force: true }); // the keys are read; leave nothing behind

  const url = rpcUrl;
  const rpc = <T = unknown>(method: string, params: unknown[] = []): Promise<T> => jsonRpc<T>(url, method, params);
  return {
    rpcUrl: url,
    port: port as number,
    chainId,
    pid: child.pid as number,
    chain: defineChain({
      id: chainId,
      name: 'anvil',
      nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
      rpcUrls: { default: { http: [url] } },
    }),
    accounts,
    privateKeys: accounts.map((a) => a.privateKey),
    rpc,
    mine: async (blocks = 1) => {
      await rpc('anvil_mine', [`0x${blocks.toString(16)}`]);
    },
    snapshot: () => rpc<Hex>('evm_snapshot'),
    revert: (id) => rpc<boolean>('evm_revert', [id]),
    reorg: async (depth, txs = []) => {
      await rpc('anvil_reorg', [depth, txs.map(([tx, offset]) => [tx, offset])]);
    },
    rollback: async (depth) => {
      await rpc('anvil_rollback', [depth]);
    },
    setAutomine: async (enabled) => {
      await rpc('evm_setAutomine', [enabled]);
    },
    stop,
  };
}

let nextId = 1;
async function jsonRpc<T>(url: string, method: string, params: unknown[], timeoutMs = 30_000): Promise<T> {
  const res = await fetch(url, {
    method: 'POST',
    signal: AbortSignal.timeout(timeoutMs),
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: nextId++, method, params }),
  });
  const body = (await res.json()) as { result?: T; error?: { code: number; message: string } };
  if (body.error) throw new AnvilRpcError(method, body.error.code, body.error.message);
  return body.result as T;
}
