import { describe, expect, it } from 'vitest';
import type { Battery, BatteryReading } from '../../drivers/classes.js';
import { silentLog } from '../../drivers/log.js';
import type { DeviceState, SiteSnapshot } from '../snapshot.js';
import { ManualClock } from '../store/test-clock.js';
import { Dispatcher } from './dispatcher.js';
import type { ActiveOrder } from './types.js';

const T0 = Date.UTC(2026, 0, 14, 12);

/** A battery that records its setpoints (the power it reports is set by the test, as a meter would see it). */
class RecordingBattery implements Battery {
  readonly deviceClass = 'battery';
  readonly revert = { kind: 'device-timer', description: 'InOutWRte_RvrtTms', minMs: 1000, maxMs: 65_534_000 } as const;
  readonly setpoints: number[] = [];
  constructor(readonly id: string) {}
  read(): Promise<BatteryReading> {
    throw new Error('not polled here');
  }
  describe(): string {
    return 'test battery';
  }
  setPowerW(powerW: number): Promise<void> {
    this.setpoints.push(powerW);
    return Promise.resolve();
  }
  clearSetpoint(): Promise<void> {
    this.setpoints.push(Number.NaN);
    return Promise.resolve();
  }
  restore(): Promise<void> {
    return this.clearSetpoint();
  }
}

function snapshot(tsMs: number, gridW: number, batteryW: number, readAtMs = tsMs): SiteSnapshot {
  const online = { state: 'online', sinceMs: T0 - 60_000 } as const;
  const devices: DeviceState[] = [
    { id: 'meter', deviceClass: 'meter', availability: online, reading: { powerW: gridW }, readAtMs: tsMs, fresh: true },
    { id: 'battery', deviceClass: 'battery', availability: online, reading: { powerW: batteryW, socPct: 50, maxChargeW: 5000, maxDischargeW: 5000 }, readAtMs, fresh: true },
  ];
  return { cycle: 1, tsMs, devices, site: { gridPowerW: gridW } };
}

function setpointOrder(valueW: number, acceptedAtMs: number): ActiveOrder {
  return { key: `0x${'ab'.repeat(32)}:0`, orderId: `0x${'ab'.repeat(32)}`, modification: 0, aggregator: `0x${'11'.repeat(20)}`, signal: 3, valueW, effectiveStartMs: acceptedAtMs, endMs: acceptedAtMs + 600_000, rampMs: 0, priceMicros: 0, acceptedAtMs };
}

describe('dispatcher: the closed loop', () => {
  it('works out the site\'s natural power once per meter reading: a second step before the next reading does not chase its own commands', async () => {
    const clock = new ManualClock(T0 - 5000);
    const at = (ms: number) => clock.advance(ms - clock.now());
    const battery = new RecordingBattery('battery');
    const started: string[] = [];
    const dispatcher = new Dispatcher({
      clock,
      log: silentLog,
      feedback: { started: (key) => started.push(key), aborted: () => undefined },
      audit: { setpoint: () => undefined },
      restoreLedger: { markChanged: () => undefined, markRestored: () => undefined, changedDevices: () => [] },
      devices: () => [{ id: 'battery', device: battery, settings: {} }],
      cycleMs: 1000,
    });
    // The home imports 3 kW with the battery idle; an order holds the site at 1 kW.
    for (let i = 0; i < 5; i++) {
      at(T0 - 5000 + i * 1000);
      await dispatcher.step(snapshot(T0 - 5000 + i * 1000, 3000, 0), []);
    }
    at(T0 + 200);
    const reading = snapshot(T0, 3000, 0);
    const order = setpointOrder(1000, T0 + 200);
    await dispatcher.step(reading, [order]);
    expect(battery.setpoints).toEqual([-2000]);
    expect(started).toEqual([order.key]);
    // Another step on the same reading (STARTED recorded, another order arrived): the reading does not
    // show the discharge yet, so nothing changes.
    at(T0 + 210);
    await dispatcher.step(reading, [order]);
    at(T0 + 400);
    await dispatcher.step(reading, [order]);
    expect(battery.setpoints).toEqual([-2000]);
    // The next reading shows it: the site at 1 kW, the battery discharging 2 kW. Still nothing to do.
    at(T0 + 1000);
    await dispatcher.step(snapshot(T0 + 1000, 1000, -2000), [order]);
    expect(battery.setpoints).toEqual([-2000]);
    // The household adds 1 kW: the loop follows.
    at(T0 + 2000);
    await dispatcher.step(snapshot(T0 + 2000, 2000, -2000), [order]);
    expect(battery.setpoints).toEqual([-2000, -3000]);
  });
});
