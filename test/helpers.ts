/**
 * Shared pieces of the end-to-end tests: a simulated home on a manual virtual clock (its physics
 * stand still unless a test advances them, so what the agent reads can be compared exactly with the
 * simulator's truth), an agent configured for it, temporary directories, and waiting.
 */
import { execFileSync, spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import mqtt, { type MqttClient } from 'mqtt';
import { configSchema, type Config, type ConfigInput } from '../agent/config/schema.js';
import { VirtualClock } from '../simulators/clock.js';
import { SimulatedHome, type SimulatedHomeOptions } from '../simulators/home.js';

export const repoRoot = fileURLToPath(new URL('../', import.meta.url));
export const cliPath = join(repoRoot, 'agent', 'cli.ts');
/** tsx's loader by absolute URL, so the CLI can run from any working directory. */
const tsxLoader = pathToFileURL(join(repoRoot, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

export function tempDir(prefix = 'flexgate-test-'): { path: string; remove(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}

/** A simulated home whose physics only move when the test calls `home.clock.advance(ms)`. */
export async function startFrozenHome(options: SimulatedHomeOptions = {}): Promise<SimulatedHome> {
  const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 5, 21, 11), manual: true });
  const home = await SimulatedHome.start({ clock, seed: 7, cloudiness: 0, baseLoadW: 600, ...options });
  clock.advance(1000); // one physics tick, so every register holds a real value
  return home;
}

export function homeConfig(home: SimulatedHome, dataDir: string, overrides: { device?: Partial<ConfigInput['devices'][number]>; config?: Partial<ConfigInput> } = {}): Config {
  const input: ConfigInput = {
    gateway: { name: 'test-home', dataDir },
    store: { flushIntervalMs: 1000 },
    devices: home.devices.map((d) => ({
      id: d.id,
      class: d.class,
      driver: 'sunspec' as const,
      connection: d.modbus
        ? { tcp: { host: d.modbus.host, port: d.modbus.port } }
        : { rtu: { path: d.rtu!.path, baudRate: d.rtu!.baudRate } },
      unitId: d.modbus?.unitId ?? d.rtu!.unitId,
      pollIntervalMs: 250,
      timeoutMs: 500,
      ...overrides.device,
    })),
    ...overrides.config,
  };
  return configSchema.parse(input);
}

export async function waitFor<T>(what: string, probe: () => T | undefined | null | false, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** An MQTT client that records every message it sees on `topics`. */
export async function recorder(url: string, topics: string[]): Promise<{ client: MqttClient; messages: Array<{ topic: string; payload: string; retain: boolean }>; close(): Promise<void> }> {
  const client = await mqtt.connectAsync(url, { reconnectPeriod: 200 });
  const messages: Array<{ topic: string; payload: string; retain: boolean }> = [];
  client.on('message', (topic, payload, packet) => messages.push({ topic, payload: payload.toString(), retain: packet.retain }));
  client.on('connect', () => void client.subscribeAsync(topics, { qos: 1 }));
  await client.subscribeAsync(topics, { qos: 1 });
  return { client, messages, close: () => client.endAsync(true) };
}

export function hasCommand(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command} || test -x /usr/sbin/${command}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Debian's python3 can import `module` (the pyenv python3 first on PATH may not have Debian's modules). */
export function hasDebianPythonModule(module: string): boolean {
  try {
    execFileSync('/usr/bin/python3', ['-c', `import ${module}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Under CI a missing Debian package is a failure, not a skip (DESIGN.md: Real parts). */
export function requirePackage(command: string, pkg: string, present: (command: string) => boolean = hasCommand): boolean {
  if (present(command)) return true;
  if (process.env['CI'] === 'true') throw new Error(`${pkg} is not installed (apt-get install -y ${pkg}); CI must run this test`);
  process.stderr.write(`skipping: ${pkg} is not installed (apt-get install -y ${pkg})\n`);
  return false;
}

/** Runs the flexgate CLI from source (tsx) as a child process. */
export function spawnCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): ChildProcessWithoutNullStreams & { output: { stdout: string; stderr: string } } {
  // One process (node with tsx's loader), not the tsx wrapper: a signal must reach the agent itself.
  const child = spawn(process.execPath, ['--import', tsxLoader, cliPath, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, ...options.env },
    stdio: 'pipe',
  }) as ChildProcessWithoutNullStreams & { output: { stdout: string; stderr: string } };
  child.output = { stdout: '', stderr: '' };
  child.stdout.on('data', (d: Buffer) => (child.output.stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (child.output.stderr += d.toString()));
  return child;
}

export function exited(child: ChildProcessWithoutNullStreams): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

export async function runCli(args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnCli(args, options);
  const { code } = await exited(child);
  return { code, ...child.output };
}
