/**
 * The one control loop that owns the site state. Each cycle polls the devices that are due (each
 * bus serialises its own requests, so different buses are read in parallel), builds one snapshot,
 * hands it to the listeners (store, local API, later: dispatcher and bidder), and sleeps until the
 * next cycle. Cycles never overlap; a cycle that overruns starts the next one at once.
 */
import type { Clock, TimerHandle } from '../drivers/clock.js';
import type { Log } from '../drivers/log.js';
import type { AvailabilityChange, DeviceHandle } from './device-handle.js';
import { summarize, type Reading, type SiteSnapshot } from './snapshot.js';

export interface ControlLoopOptions {
  clock: Clock;
  log: Log;
  devices: readonly DeviceHandle[];
  /** Cycle period; defaults to the shortest poll interval. */
  cycleMs?: number;
  siteMeterId?: string;
  onReading?: (deviceId: string, tsMs: number, reading: Reading) => void;
  onAvailability?: (change: AvailabilityChange) => void;
  onSnapshot?: (snapshot: SiteSnapshot) => void;
}

export class ControlLoop {
  readonly cycleMs: number;
  private cycle = 0;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private latest: SiteSnapshot | undefined;

  constructor(private readonly options: ControlLoopOptions) {
    this.cycleMs = options.cycleMs ?? Math.min(...options.devices.map((d) => d.pollIntervalMs), 1000);
  }

  get lastSnapshot(): SiteSnapshot | undefined {
    return this.latest;
  }

  start(signal?: AbortSignal): void {
    if (!this.stopped) return;
    this.stopped = false;
    signal?.addEventListener('abort', () => void this.stop(), { once: true });
    this.schedule(0);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  /** Runs one cycle now (also used by tests that step the clock by hand). */
  async runCycle(): Promise<SiteSnapshot> {
    const { clock, devices } = this.options;
    const now = () => clock.now();
    const cycleStartMs = now();
    const due = new Set(devices.filter((d) => d.isDue(cycleStartMs)));
    await Promise.all(
      [...due].map(async (device) => {
        const { reading, change } = await device.poll(now);
        if (reading) this.options.onReading?.(device.id, now(), reading);
        if (change) this.options.onAvailability?.(change);
      }),
    );
    const states = devices.map((d) => d.state(due.has(d)));
    const snapshot: SiteSnapshot = {
      cycle: ++this.cycle,
      tsMs: cycleStartMs,
      devices: states,
      site: summarize(states, this.options.siteMeterId),
    };
    this.latest = snapshot;
    this.options.onSnapshot?.(snapshot);
    return snapshot;
  }

  private schedule(delayMs: number): void {
    if (this.stopped) return;
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      const startedMs = this.options.clock.now();
      this.running = this.runCycle()
        .then(
          () => undefined,
          (err: unknown) => this.options.log.error({ err }, 'control cycle failed'),
        )
        .finally(() => {
          this.running = undefined;
          const elapsedMs = this.options.clock.now() - startedMs;
          this.schedule(Math.max(0, this.cycleMs - elapsedMs));
        });
    }, delayMs);
  }
}
