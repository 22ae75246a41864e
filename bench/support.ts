/**
 * Shared parts of the benchmarks that run whole programs: the simulated home in its own process, a
 * counting Modbus TCP proxy (transactions seen on the wire, whoever the client is), process-tree CPU
 * time and memory from /proc, and the compiled agent and a real Node-RED as child processes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
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

/** One Modbus TCP request as the proxy saw it on the wire. */
export interface WireRequest {
  unitId: number;
  functionCode: number;
  /** Start address (every function code the simulators implement has one). */
  address: number;
  /** Registers or coils read or written (1 for FC 5 and 6). */
  count: number;
  /** performance.now() in the process that runs the proxy, when the frame arrived. */
  atMs: number;
}

/** `fc3 u1 40070+104`: one read or write signature, for request logs. */
export function requestKey(r: Pick<WireRequest, 'unitId' | 'functionCode' | 'address' | 'count'>): string {
  return `u${r.unitId} fc${r.functionCode} ${r.address}+${r.count}`;
}

function parseRequest(frame: Buffer, atMs: number): WireRequest {
  const functionCode = frame[7] ?? 0;
  const address = frame.length >= 10 ? frame.readUInt16BE(8) : -1;
  const count = functionCode === 5 || functionCode === 6 ? 1 : frame.length >= 12 ? frame.readUInt16BE(10) : 0;
  return { unitId: frame[6] ?? 0, functionCode, address, count, atMs };
}

/** Splits a byte stream into MBAP frames (6-byte header + `length` bytes). */
class MbapFramer {
  private pending: Buffer = Buffer.alloc(0);
  constructor(private readonly onFrame: (frame: Buffer) => void) {}
  push(chunk: Buffer): void {
    this.pending = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    while (this.pending.length >= 6) {
      const length = this.pending.readUInt16BE(4);
      if (this.pending.length < 6 + length) break;
      this.onFrame(this.pending.subarray(0, 6 + length));
      this.pending = this.pending.subarray(6 + length);
    }
  }
}

/**
 * A TCP proxy in front of one Modbus TCP server: counts the requests (MBAP frames) it forwards,
 * keeps a log of their signatures while `recording`, and tells listeners when a request arrives and
 * when its response comes back (timestamps from performance.now(), taken before any parsing; the
 * bytes are forwarded first). Transparent otherwise (no Nagle on either side).
 */
export class CountingProxy {
  requests = 0;
  /** Request signature (requestKey) → how many were seen while `recording`. */
  readonly log = new Map<string, number>();
  recording = false;
  onRequest: ((r: WireRequest) => void) | undefined;
  /** A response to `request`, arrived at `atMs`; `exception` when its function code has the 0x80 bit. */
  onResponse: ((request: WireRequest, atMs: number, exception: boolean) => void) | undefined;
  port = 0;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();

  constructor(
    readonly targetHost: string,
    readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    this.server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost);
      client.setNoDelay(true);
      upstream.setNoDelay(true);
      this.sockets.add(client);
      this.sockets.add(upstream);
      const pending = new Map<number, WireRequest>();
      let atMs = 0;
      const requests = new MbapFramer((frame) => {
        this.requests++;
        const r = parseRequest(frame, atMs);
        if (this.recording) {
          const key = requestKey(r);
          this.log.set(key, (this.log.get(key) ?? 0) + 1);
        }
        if (this.onResponse) pending.set(frame.readUInt16BE(0), r);
        this.onRequest?.(r);
      });
      const responses = new MbapFramer((frame) => {
        const request = pending.get(frame.readUInt16BE(0));
        if (!request) return;
        pending.delete(frame.readUInt16BE(0));
        this.onResponse?.(request, atMs, ((frame[7] ?? 0) & 0x80) !== 0);
      });
      client.on('data', (chunk: Buffer) => {
        atMs = performance.now();
        upstream.write(chunk);
        requests.push(chunk);
      });
      upstream.on('data', (chunk: Buffer) => {
        atMs = performance.now();
        client.write(chunk);
        if (this.onResponse) responses.push(chunk);
      });
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

/** One counting proxy per Modbus TCP endpoint of `devices`; `portOf` maps a device to its proxy's port. */
export class ProxySet {
  readonly byEndpoint = new Map<string, CountingProxy>();

  static async start(devices: readonly HomeDevice[]): Promise<ProxySet> {
    const set = new ProxySet();
    try {
      for (const d of devices) {
        if (!d.modbus) continue;
        const key = `${d.modbus.host}:${d.modbus.port}`;
        if (set.byEndpoint.has(key)) continue;
        const p = new CountingProxy(d.modbus.host, d.modbus.port);
        set.byEndpoint.set(key, p);
        await p.start();
      }
    } catch (e) {
      await set.stop();
      throw e;
    }
    return set;
  }

  get proxies(): CountingProxy[] {
    return [...this.byEndpoint.values()];
  }

  proxyOf(device: HomeDevice): CountingProxy {
    const p = this.byEndpoint.get(`${device.modbus!.host}:${device.modbus!.port}`);
    if (!p) throw new Error(`no proxy for ${device.id}`);
    return p;
  }

  portOf(device: HomeDevice): number {
    return this.proxyOf(device).port;
  }

  requests(): number {
    return this.proxies.reduce((s, p) => s + p.requests, 0);
  }

  record(on: boolean): void {
    for (const p of this.proxies) {
      if (on) p.log.clear();
      p.recording = on;
    }
  }

  /** The requests recorded for one device (its endpoint and unit id), signature → count. */
  logOf(device: HomeDevice): Map<string, number> {
    const out = new Map<string, number>();
    for (const [key, n] of this.proxyOf(device).log) if (key.startsWith(`u${device.modbus!.unitId} `)) out.set(key, n);
    return out;
  }

  async stop(): Promise<void> {
    for (const p of this.proxies) await p.stop();
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
export async function waitStarted(child: ChildProcess, started: () => Promise<void>): Promise<void> {
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
  // FLEXGATE_BENCH_AGENT_FLAGS: node flags added for a look inside (e.g. --cpu-prof --cpu-prof-dir=/tmp/prof).
  const extra = (process.env['FLEXGATE_BENCH_AGENT_FLAGS'] ?? '').split(/\s+/).filter((f) => f.startsWith('--'));
  const child = spawn(process.execPath, [...serviceNodeFlags(), ...extra, cli, 'start', '--config', configPath], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  await waitStarted(child, () => new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the agent did not start within 30 s')), 30_000);
    let seen = '';
    const onData = (chunk: Buffer) => {
      seen += chunk.toString();
      if (seen.includes('agent started')) {
        clearTimeout(timer);
        // From here on the log is drained unread: the measuring process must not do work per log line
        // (an ever-growing string searched per chunk cost the benchmark's own process time mid-order).
        child.stdout!.off('data', onData);
        child.stderr!.off('data', onData);
        seen = '';
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

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** The p-th percentile (0..100) by nearest rank. */
export function percentile(values: readonly number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
}

/** An MQTT broker (aedes, agent/embedded-broker.ts) in its own process, as Mosquitto runs beside
 * the agent on a gateway: its CPU is neither the agent's nor the benchmark's. */
export async function startBrokerProcess(): Promise<{ url: string; host: string; port: number; pid: number; stop(): Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'bench/broker-host.ts'], { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'inherit'] });
  const line = await firstLine(child, 'MQTT broker').catch(async (e: unknown) => {
    await stopChild(child);
    throw e;
  });
  const { url, host, port } = JSON.parse(line) as { url: string; host: string; port: number };
  return {
    url,
    host,
    port,
    pid: child.pid!,
    stop: async () => {
      child.stdin?.end();
      await stopChild(child);
    },
  };
}
