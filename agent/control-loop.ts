/**
 * The one control loop that owns the site state. Each cycle polls the devices that are due (each
 * bus serialises its own requests, so different buses are read in parallel), builds one snapshot,
 * hands it to the listeners (store, local API, later: dispatcher and bidder), and sleeps until the
 * next cycle. Cycles never overlap. A cycle waits for its reads at most until the next cycle is due:
 * a device that is slow or timing out does not hold back the snapshot of the others; its read
 * finishes in the background and counts in the cycle it completes in (it is not polled again while
 * its read is in flight).
 *
 * Deciding is serial: the `decide` step after each snapshot (the dispatcher) and every task queued
 * from outside with `enqueue` (an order that arrived over MQTT) run one at a time, in order, never
 * inside an MQTT callback. A queued task does not wait for a cycle's reads: it runs at once with the
 * latest snapshot, so an order's writes go out within milliseconds (the buses put writes before polls).
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
  /** Runs after each snapshot in the serial section; awaited before the next cycle is scheduled. */
  decide?: (snapshot: SiteSnapshot) => Promise<void>;
}

export class ControlLoop {
  readonly cycleMs: number;
  private cycle = 0;
  private timer: TimerHandle | undefined;
  private running: Promise<void> | undefined;
  private stopped = true;
  private latest: SiteSnapshot | undefined;
  private readonly inFlight = new Map<DeviceHandle, Promise<void>>();
  private readonly completed = new Set<DeviceHandle>();
  private serial: Promise<unknown> = Promise.resolve();

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
    await this.serial;
    await Promise.all(this.inFlight.values());
  }

  /** Runs `task` in the serial section (after whatever decides now), and resolves with its result. */
  enqueue<T>(task: () => Promise<T> | T): Promise<T> {
    const run = this.serial.then(task);
    // The chain continues whatever the task's outcome; the caller sees the outcome.
    this.serial = run.catch(() => undefined);
    return run;
  }

  /** Runs one cycle now (also used by tests that step the clock by hand). */
  async runCycle(): Promise<SiteSnapshot> {
    const { clock, devices } = this.options;
    const now = () => clock.now();
    const cycleStartMs = now();
    const started = devices.filter((d) => d.isDue(cycleStartMs) && !this.inFlight.has(d)).map((device) => this.startPoll(device, now));
    // Wait for this cycle's reads, but not past the start of the next cycle.
    let deadline: TimerHandle | undefined;
    await Promise.race([
      Promise.all(started),
      new Promise<void>((resolve) => {
        deadline = clock.setTimeout(resolve, this.cycleMs);
      }),
    ]);
    if (deadline) clock.clearTimeout(deadline);
    const fresh = new Set(this.completed);
    this.completed.clear();
    const states = devices.map((d) => d.state(fresh.has(d)));
    const snapshot: SiteSnapshot = {
      cycle: ++this.cycle,
      tsMs: cycleStartMs,
      devices: states,
      site: summarize(states, this.options.siteMeterId),
    };
    this.latest = snapshot;
    this.options.onSnapshot?.(snapshot);
    const decide = this.options.decide;
    if (decide) {
      await this.enqueue(() => decide(snapshot)).catch((err: unknown) => this.options.log.error({ err }, 'decision step failed'));
    }
    return snapshot;
  }

  private startPoll(device: DeviceHandle, now: () => number): Promise<void> {
    const poll = device
      .poll(now)
      .then(({ reading, change }) => {
        if (reading) {
          this.completed.add(device);
          this.options.onReading?.(device.id, now(), reading);
        }
        if (change) this.options.onAvailability?.(change);
      })
      .catch((err: unknown) => this.options.log.error({ err, device: device.id }, 'poll listener failed'))
      .finally(() => this.inFlight.delete(device));
    this.inFlight.set(device, poll);
    return poll;
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
