/**
 * Test support for drivers/mqtt (used by its tests only): a real aedes broker on a loopback port
 * that can be closed and started again on the same port, a manual clock that counts its pending
 * timers, a log that records what was logged, Mosquitto (Debian package) on a free port, and waiting.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes, type AedesOptions } from 'aedes';
import mqtt from 'mqtt';
import type { Clock, TimerHandle } from '../clock.js';
import type { Log } from '../log.js';

export interface TestBroker {
  url: string;
  port: number;
  /** Clients connected now (aedes only). */
  connectedClients?(): number;
  close(): Promise<void>;
}

/** An aedes broker on 127.0.0.1 (`port` 0: a free one). close() drops every client at once, as a crash does. */
export async function startAedes(port = 0, options: AedesOptions = {}): Promise<TestBroker> {
  const aedes = await Aedes.createBroker(options);
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    aedes.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  const bound = (server.address() as AddressInfo).port;
  return {
    url: `mqtt://127.0.0.1:${bound}`,
    port: bound,
    connectedClients: () => aedes.connectedClients,
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
    },
  };
}

/** A clock that moves only through advance(), and says how many timers are pending. */
export class ManualClock implements Clock {
  private nowMs: number;
  private nextId = 1;
  private readonly timers = new Map<number, { dueMs: number; fn: () => void }>();

  constructor(startMs = Date.UTC(2026, 0, 14, 7)) {
    this.nowMs = startMs;
  }

  now(): number {
    return this.nowMs;
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { dueMs: this.nowMs + Math.max(0, delayMs), fn });
    return id as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as unknown as number);
  }

  get pendingTimers(): number {
    return this.timers.size;
  }

  /** Moves time forward, firing due timers in order (including timers they set). */
  advance(ms: number): void {
    const target = this.nowMs + ms;
    for (;;) {
      let next: [number, { dueMs: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].dueMs <= target && (!next || entry[1].dueMs < next[1].dueMs)) next = entry;
      if (!next) break;
      this.timers.delete(next[0]);
      this.nowMs = Math.max(this.nowMs, next[1].dueMs);
      next[1].fn();
    }
    this.nowMs = target;
  }
}

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string | undefined;
}

export function recordingLog(): Log & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const at =
    (level: LogEntry['level']) =>
    (obj: object, msg?: string): void => {
      entries.push({ level, obj: obj as Record<string, unknown>, msg });
    };
  const log: Log & { entries: LogEntry[] } = { entries, debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error'), child: () => log };
  return log;
}

/** Polls `probe` in real time until it gives something other than undefined. */
export async function until<T>(what: string, probe: () => Promise<T | undefined> | T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Resolves with what a promise settled to, so a test can assert on a rejection it also awaits later. */
export function settled<T>(p: Promise<T>): { readonly state: 'pending' | 'resolved' | 'rejected'; readonly error: unknown } {
  const s: { state: 'pending' | 'resolved' | 'rejected'; error: unknown } = { state: 'pending', error: undefined };
  p.then(
    () => (s.state = 'resolved'),
    (e: unknown) => {
      s.state = 'rejected';
      s.error = e;
    },
  );
  return s;
}

export function mosquittoBin(): string | undefined {
  return ['/usr/sbin/mosquitto', '/usr/bin/mosquitto'].find((p) => existsSync(p));
}

/** True when Mosquitto is installed; skips with a message when not, and fails under CI=true (DESIGN.md: Real parts). */
export function requireMosquitto(): boolean {
  if (mosquittoBin()) return true;
  if (process.env['CI'] === 'true') throw new Error('mosquitto is not installed (apt-get install -y mosquitto); CI must run this test');
  process.stderr.write('skipping: mosquitto is not installed (apt-get install -y mosquitto)\n');
  return false;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((r) => server.close(() => r()));
  return port;
}

/** Mosquitto on a free loopback port, ready when it accepts a connection. */
export async function startMosquitto(): Promise<TestBroker & { process: ChildProcess }> {
  const bin = mosquittoBin();
  if (!bin) throw new Error('mosquitto is not installed');
  const dir = mkdtempSync(join(tmpdir(), 'flexgate-mosquitto-'));
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\npersistence false\n`);
  const child = spawn(bin, ['-c', conf], { stdio: 'ignore' });
  const url = `mqtt://127.0.0.1:${port}`;
  const close = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  for (let i = 0; i < 100; i++) {
    if (child.exitCode !== null) break;
    try {
      const probe = await mqtt.connectAsync(url, { reconnectPeriod: 0, connectTimeout: 1000 });
      await probe.endAsync(true);
      return { url, port, process: child, close };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await close();
  throw new Error(`mosquitto did not start on port ${port}`);
}
