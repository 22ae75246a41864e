/**
 * Shared parts of the benchmarks that run whole programs: the simulated home in its own process, a
 * counting Modbus TCP proxy (transactions seen on the wire, whoever the client is), process-tree CPU
 * time and memory from /proc, and the compiled agent and a real Node-RED as child processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { HomeDevice, SimulatedHomeOptions } from '../simulators/home.js';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface SimProcess {
  devices: HomeDevice[];
  pid: number;
  stop(): Promise<void>;
}

/** Waits for the first stdout line of a child that announces itself with one JSON line. */
function firstLine(child: ChildProcess, what: string, timeoutMs = 60_000): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error(`${what} did not start within ${timeoutMs / 1000} s`)), timeoutMs);
    rl.once('line', (l) => {
      clearTimeout(timer);
      rl.close();
      resolve(l);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${what} exited (${code}) before it was ready`));
    });
  });
}

export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill(signal);
  const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
  await exited;
  clearTimeout(timer);
}

/** The simulated home (bench/sim-host.ts) in its own process, so it does not share the measured core. */
export async function startSimProcess(options: SimulatedHomeOptions): Promise<SimProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/sim-host.ts', JSON.stringify(options)], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await firstLine(child, 'simulated home').catch(async (e: unknown) => {
    await stopChild(child);
    throw e;
  });
  return {
    devices: (JSON.parse(line) as { devices: HomeDevice[] }).devices,
    pid: child.pid!,
    stop: async () => {
      child.stdin?.end();
      await stopChild(child);
    },
  };
}

/** A TCP proxy in front of one Modbus TCP server that counts the requests (MBAP frames) it forwards. */
export class CountingProxy {
  requests = 0;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost);
      this.sockets.add(client);
      this.sockets.add(upstream);
      let pending = Buffer.alloc(0);
      client.on('data', (chunk) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 6) {
          const length = pending.readUInt16BE(4);
          if (pending.length < 6 + length) break;
          this.requests++;
          pending = pending.subarray(6 + length);
        }
        upstream.write(chunk);
      });
      upstream.on('data', (chunk) => client.write(chunk));
      const close = () => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('close', close);
      upstream.on('close', close);
      client.on('error', close);
      upstream.on('error', close);
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    this.port = (this.server.address() as net.AddressInfo).port;
  }

  async stop(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server?.close(() => resolve()) ?? resolve());
  }
}

const CLOCK_TICKS_PER_S = 100;

/** The pid and every descendant of it. */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // the process ended meanwhile
    }
  }
  const out: number[] = [];
  const walk = (p: number) => {
    out.push(p);
    for (const c of children.get(p) ?? []) walk(c);
  };
  walk(pid);
  return out;
}

/** CPU time (user + system, ms) of a process tree. */
export function treeCpuMs(pid: number): number {
  let ticks = 0;
  for (const p of processTree(pid)) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // ended
    }
  }
  return (ticks * 1000) / CLOCK_TICKS_PER_S;
}

/** Resident memory (kB) of a process tree. */
export function treeRssKb(pid: number): number {
  let kb = 0;
  for (const p of processTree(pid)) {
    try {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${p}/status`, 'utf8'));
      if (m) kb += Number(m[1]);
    } catch {
      // ended
    }
  }
  return kb;
}

/** Waits for a child to say it started; a child that does not is stopped, never left behind. */
async function waitStarted(child: ChildProcess, started: () => Promise<void>): Promise<void> {
  try {
    await started();
  } catch (e) {
    await stopChild(child, 'SIGKILL');
    throw e;
  }
}

/** The node flags of the production service (docs/flexgate.service's ExecStart), so the benchmarks
 * run the agent exactly as a gateway does. */
export function serviceNodeFlags(): string[] {
  const unit = readFileSync(join(REPO_ROOT, 'docs', 'flexgate.service'), 'utf8');
  const exec = /^ExecStart=\S+\s+(.*?)\s+\S*dist\/agent\/cli\.js/m.exec(unit);
  if (!exec) throw new Error('docs/flexgate.service has no ExecStart=<node> [flags] .../dist/agent/cli.js line');
  return exec[1]!.split(/\s+/).filter((f) => f.startsWith('--'));
}

/** The compiled agent (dist/, as in production: the service's node flags) with a config file;
 * resolves once it logged "agent started". */
export async function startCompiledAgent(configPath: string): Promise<{ child: ChildProcess; stop(): Promise<void> }> {
  const cli = join(REPO_ROOT, 'dist', 'agent', 'cli.js');
  if (!existsSync(cli)) throw new Error('dist/ is missing: run npm run build first (npm run bench does)');
  const child = spawn(process.execPath, [...serviceNodeFlags(), cli, 'start', '--config', configPath], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  await waitStarted(child, () => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the agent did not start within 30 s')), 30_000);
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('agent started')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the agent exited (${code}): ${seen.slice(-500)}`));
    });
  }));
  child.stdout!.resume();
  child.stderr!.resume();
  return { child, stop: () => stopChild(child, 'SIGINT') };
}

/** A real Node-RED 4 runtime with node-red-contrib-modbus, running `flow`, in its own process. */
export async function startNodeRed(dir: string, flow: unknown[]): Promise<{ child: ChildProcess; stop(): Promise<void> }> {
  mkdirSync(join(dir, 'node_modules'), { recursive: true });
  const link = join(dir, 'node_modules', 'node-red-contrib-modbus');
  if (!existsSync(link)) symlinkSync(join(REPO_ROOT, 'node_modules', 'node-red-contrib-modbus'), link, 'dir');
  writeFileSync(join(dir, 'flows.json'), JSON.stringify(flow, null, 2));
  writeFileSync(
    join(dir, 'settings.js'),
    `module.exports = { uiPort: 0, uiHost: '127.0.0.1', flowFile: 'flows.json', userDir: ${JSON.stringify(dir)}, httpAdminRoot: false, httpNodeRoot: false, ` +
      `logging: { console: { level: 'info', metrics: false, audit: false } }, editorTheme: { tours: false }, diagnostics: { enabled: false }, telemetry: { enabled: false }, externalModules: { autoInstall: false } };\n`,
  );
  const redJs = join(REPO_ROOT, 'node_modules', 'node-red', 'red.js');
  const child = spawn(process.execPath, [redJs, '--userDir', dir, '--settings', join(dir, 'settings.js')], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] });
  await waitStarted(child, () => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`Node-RED did not start its flows within 60 s: ${seen.slice(-800)}`)), 60_000);
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('Started flows')) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`Node-RED exited (${code}): ${seen.slice(-800)}`));
    });
  }));
  child.stdout!.resume();
  child.stderr!.resume();
  return { child, stop: () => stopChild(child, 'SIGINT') };
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
