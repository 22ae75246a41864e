import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

/** True when the `socat` binary is on PATH. */
export function socatAvailable(): boolean {
  return spawnSync('socat', ['-V'], { stdio: 'ignore' }).status === 0;
}

/**
 * A pseudo-terminal pair made by socat: bytes written to one path come out of the other, like the two
 * ends of a serial cable. Baud rates set on either side are ignored by the kernel.
 */
export class PtyPair {
  /** One side (the simulated devices' side in SimulatedHome). */
  readonly pathA: string;
  /** The other side (the side the agent opens). */
  readonly pathB: string;
  private constructor(
    readonly dir: string,
    private readonly child: ChildProcess,
  ) {
    this.pathA = path.join(dir, 'A');
    this.pathB = path.join(dir, 'B');
  }

  /** Starts socat in a fresh temp dir and resolves once both links exist and socat is transferring. */
  static async start(options: { timeoutMs?: number } = {}): Promise<PtyPair> {
    const dir = mkdtempSync(path.join(tmpdir(), 'flexgate-pty-'));
    const a = path.join(dir, 'A');
    const b = path.join(dir, 'B');
    const child = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const pair = new PtyPair(dir, child);
    const timeoutMs = options.timeoutMs ?? 5000;
    try {
      await new Promise<void>((resolve, reject) => {
        let stderr = '';
        let transferring = false;
        const timer = setTimeout(() => finish(new Error(`socat not ready after ${timeoutMs} ms: ${stderr}`)), timeoutMs);
        const poll = setInterval(check, 10);
        function finish(error?: Error): void {
          clearTimeout(timer);
          clearInterval(poll);
          child.stderr?.removeAllListeners('data');
          child.stderr?.resume();
          child.off('error', onError);
          child.off('exit', onExit);
          if (error) reject(error);
          else resolve();
        }
        function check(): void {
          if (transferring && existsSync(a) && existsSync(b)) finish();
        }
        function onError(e: Error): void {
          finish(e);
        }
        function onExit(code: number | null): void {
          finish(new Error(`socat exited (${code}): ${stderr}`));
        }
        child.on('error', onError);
        child.on('exit', onExit);
        child.stderr?.on('data', (d: Buffer) => {
          stderr += d.toString();
          if (stderr.includes('starting data transfer loop')) transferring = true;
          check();
        });
      });
    } catch (e) {
      await pair.stop();
      throw e;
    }
    return pair;
  }

  /** Kills socat and removes the temp dir. */
  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
      this.child.kill('SIGTERM');
      await exited;
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
