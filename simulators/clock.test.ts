import { describe, expect, it } from 'vitest';
import { VirtualClock } from './clock.js';

describe('VirtualClock', () => {
  it('manual: time moves only by advance(), timers fire in due order with now() at their due time', () => {
    const clock = new VirtualClock({ startTimeMs: 1_000_000, manual: true });
    const fired: Array<[string, number]> = [];
    clock.setTimeout(() => fired.push(['b', clock.now()]), 200);
    clock.setTimeout(() => fired.push(['a', clock.now()]), 100);
    clock.setTimeout(() => fired.push(['a2', clock.now()]), 100);
    const cancelled = clock.setTimeout(() => fired.push(['x', clock.now()]), 150);
    clock.clearTimeout(cancelled);
    // A timer set by a timer fires within the same advance when it falls due in the window.
    clock.setTimeout(() => clock.setTimeout(() => fired.push(['nested', clock.now()]), 50), 120);
    expect(clock.now()).toBe(1_000_000);
    clock.advance(180);
    expect(fired).toEqual([
      ['a', 1_000_100],
      ['a2', 1_000_100],
      ['nested', 1_000_170],
    ]);
    expect(clock.now()).toBe(1_000_180);
    clock.advance(20);
    expect(fired.at(-1)).toEqual(['b', 1_000_200]);
    expect(clock.pendingTimers).toBe(0);
  });

  it('real time at a speed factor: 60 simulated seconds pass in about 60 real ms at speed 1000', async () => {
    const clock = new VirtualClock({ startTimeMs: 0, speed: 1000 });
    const fired = new Promise<number>((resolve) => clock.setTimeout(() => resolve(clock.now()), 60_000));
    const t0 = performance.now();
    const at = await fired;
    expect(at).toBeGreaterThanOrEqual(60_000);
    expect(performance.now() - t0).toBeLessThan(1000);
    clock.advance(3_600_000);
    expect(clock.now()).toBeGreaterThanOrEqual(3_660_000);
    clock.stop();
  });
});
