import type { Clock, TimerHandle } from '../drivers/clock.js';

export interface VirtualClockOptions {
  /** Simulated unix epoch ms at creation. Default: Date.now(). */
  startTimeMs?: number;
  /** Simulated ms per real ms while running (1 = real time, 60 = a simulated minute per real second). Default 1. */
  speed?: number;
  /** When true, time moves only through advance(); no real timers are used. Default false. */
  manual?: boolean;
}

interface PendingTimer {
  readonly seq: number;
  readonly dueMs: number;
  readonly fn: () => void;
}

/**
 * A Clock whose time is simulated: it runs `speed` times faster than real time, or (manual mode)
 * stands still until advance() is called. Timers fire in due order, ties in the order they were set.
 */
export class VirtualClock implements Clock {
  readonly manual: boolean;
  readonly speed: number;
  private offsetMs: number;
  private readonly realStartMs: number;
  private readonly timers = new Map<number, PendingTimer>();
  private nextSeq = 1;
  private realTimer: NodeJS.Timeout | undefined;
  private firing = false;
  private stopped = false;

  constructor(options: VirtualClockOptions = {}) {
    this.manual = options.manual ?? false;
    this.speed = options.speed ?? 1;
    if (!(this.speed > 0)) throw new RangeError(`speed must be > 0, got ${this.speed}`);
    this.offsetMs = options.startTimeMs ?? Date.now();
    this.realStartMs = performance.now();
  }

  now(): number {
    if (this.manual) return this.offsetMs;
    return this.offsetMs + (performance.now() - this.realStartMs) * this.speed;
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const seq = this.nextSeq++;
    this.timers.set(seq, { seq, dueMs: this.now() + Math.max(0, delayMs), fn });
    this.schedule();
    return seq as unknown as TimerHandle;
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as unknown as number);
    this.schedule();
  }

  /** Number of timers not yet fired. */
  get pendingTimers(): number {
    return this.timers.size;
  }

  /**
   * Moves simulated time forward by `ms`, firing every timer that falls due on the way in due order
   * (including timers those timers set). In manual mode now() reads each timer's due time while it runs.
   */
  advance(ms: number): void {
    if (ms < 0) throw new RangeError('cannot advance by a negative time');
    const targetMs = this.now() + ms;
    for (;;) {
      const next = this.earliest();
      if (!next || next.dueMs > targetMs) break;
      this.timers.delete(next.seq);
      if (this.manual) this.offsetMs = Math.max(this.offsetMs, next.dueMs);
      next.fn();
    }
    if (this.manual) this.offsetMs = targetMs;
    else this.offsetMs += targetMs - this.now();
    this.schedule();
  }

  /** Stops the real-time driver; pending timers stay but only fire through advance(). */
  stop(): void {
    this.stopped = true;
    if (this.realTimer) clearTimeout(this.realTimer);
    this.realTimer = undefined;
  }

  private earliest(): PendingTimer | undefined {
    let best: PendingTimer | undefined;
    for (const t of this.timers.values()) {
      if (!best || t.dueMs < best.dueMs || (t.dueMs === best.dueMs && t.seq < best.seq)) best = t;
    }
    return best;
  }

  private fireDue(): void {
    this.firing = true;
    try {
      for (;;) {
        const next = this.earliest();
        if (!next || next.dueMs > this.now()) break;
        this.timers.delete(next.seq);
        next.fn();
      }
    } finally {
      this.firing = false;
    }
  }

  /** Keeps one real timer armed for the earliest virtual timer (real-time mode only). */
  private schedule(): void {
    if (this.manual || this.stopped || this.firing) return;
    if (this.realTimer) clearTimeout(this.realTimer);
    this.realTimer = undefined;
    const next = this.earliest();
    if (!next) return;
    const realDelayMs = Math.max(0, (next.dueMs - this.now()) / this.speed);
    this.realTimer = setTimeout(() => {
      this.realTimer = undefined;
      this.fireDue();
      this.schedule();
    }, Math.ceil(realDelayMs));
    this.realTimer.unref();
  }
}
