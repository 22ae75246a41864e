import type { Clock, TimerHandle } from '../drivers/clock.js';

/** Something advanced by the simulation's tick: `dtMs` is the clock time since its previous step. */
export interface Stepper {
  step(nowMs: number, dtMs: number): void;
}

/**
 * Calls its steppers in order on every tick of the (virtual) clock, every `tickMs` of clock time
 * (default 1000). One ticker per home keeps the devices' physics in a fixed order (PV, battery, meter).
 */
export class Ticker {
  readonly tickMs: number;
  private readonly steppers: Stepper[] = [];
  private timer: TimerHandle | undefined;
  private lastMs = 0;

  constructor(
    private readonly clock: Clock,
    tickMs = 1000,
  ) {
    if (!(tickMs > 0)) throw new RangeError('tickMs must be > 0');
    this.tickMs = tickMs;
  }

  add(stepper: Stepper): void {
    this.steppers.push(stepper);
  }

  start(): void {
    if (this.timer) return;
    this.lastMs = this.clock.now();
    for (const s of this.steppers) s.step(this.lastMs, 0);
    this.arm();
  }

  stop(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
  }

  private arm(): void {
    this.timer = this.clock.setTimeout(() => {
      const nowMs = this.clock.now();
      const dtMs = nowMs - this.lastMs;
      this.lastMs = nowMs;
      for (const s of this.steppers) s.step(nowMs, dtMs);
      this.arm();
    }, this.tickMs);
  }
}

/** A device's revert (dead-man) timer, in clock time: fires `onExpire` unless re-armed or cancelled. */
export class RevertTimer {
  private timer: TimerHandle | undefined;
  private deadlineMs: number | undefined;

  constructor(private readonly clock: Clock) {}

  arm(durationMs: number, onExpire: () => void): void {
    this.cancel();
    this.deadlineMs = this.clock.now() + durationMs;
    this.timer = this.clock.setTimeout(() => {
      this.timer = undefined;
      this.deadlineMs = undefined;
      onExpire();
    }, durationMs);
  }

  cancel(): void {
    if (this.timer) this.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.deadlineMs = undefined;
  }

  get armed(): boolean {
    return this.timer !== undefined;
  }

  /** Remaining ms, 0 when not armed. */
  remainingMs(): number {
    return this.deadlineMs === undefined ? 0 : Math.max(0, this.deadlineMs - this.clock.now());
  }
}
