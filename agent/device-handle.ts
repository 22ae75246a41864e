/**
 * One configured device as the control loop sees it: when it is due, its last good reading, and
 * whether it is online (with the reason when not). The driver object is created lazily, so a device
 * that is off when the agent starts (or not discoverable yet) does not stop the agent: it shows as
 * offline with the reason and is tried again on its schedule.
 */
import type { Device, DeviceClass } from '../drivers/classes.js';
import { isDeviceError } from '../drivers/errors.js';
import type { Log } from '../drivers/log.js';
import type { Availability, DeviceState, Reading } from './snapshot.js';

/** A read that failed this many times in a row marks an online device offline. */
export const FAILURES_BEFORE_OFFLINE = 2;

export interface DeviceHandleOptions {
  id: string;
  deviceClass: DeviceClass;
  pollIntervalMs: number;
  /** Creates the driver object (for SunSpec: discovery). Called again after a permanent failure. */
  connect: () => Promise<Device>;
  log: Log;
}

export type AvailabilityChange = { deviceId: string; tsMs: number; availability: Availability };

export class DeviceHandle {
  readonly id: string;
  readonly deviceClass: DeviceClass;
  readonly pollIntervalMs: number;
  nextPollAtMs = 0;
  private device: Device | undefined;
  private connecting: Promise<Device> | undefined;
  private consecutiveFailures = 0;
  private availability: Availability = { state: 'unknown' };
  private lastReading: Reading | undefined;
  private lastReadAtMs: number | undefined;
  private readonly log: Log;

  constructor(private readonly options: DeviceHandleOptions) {
    this.id = options.id;
    this.deviceClass = options.deviceClass;
    this.pollIntervalMs = options.pollIntervalMs;
    this.log = options.log;
  }

  isDue(nowMs: number): boolean {
    return nowMs >= this.nextPollAtMs;
  }

  /** Polls once. Never throws: failures become availability. Returns a change of availability, if any. */
  async poll(nowMs: () => number): Promise<{ reading?: Reading; change?: AvailabilityChange }> {
    const startedMs = nowMs();
    // Keep the schedule anchored to the start of the poll, not its end.
    this.nextPollAtMs = this.nextPollAtMs === 0 ? startedMs + this.pollIntervalMs : this.nextPollAtMs + this.pollIntervalMs;
    if (this.nextPollAtMs <= startedMs) this.nextPollAtMs = startedMs + this.pollIntervalMs;
    try {
      const device = await this.ensureConnected();
      const reading = await device.read();
      const tsMs = nowMs();
      this.lastReading = reading;
      this.lastReadAtMs = tsMs;
      this.consecutiveFailures = 0;
      if (this.availability.state !== 'online') {
        this.availability = { state: 'online', sinceMs: tsMs };
        this.log.info({ description: device.describe() }, 'device online');
        return { reading, change: { deviceId: this.id, tsMs, availability: this.availability } };
      }
      return { reading };
    } catch (err) {
      const tsMs = nowMs();
      this.consecutiveFailures++;
      const reason = describeFailure(err);
      if (isDeviceError(err) && (err.kind === 'not-supported' || err.kind === 'bad-data')) {
        // The device is not what we discovered (replaced, firmware update, wrong unit id): discover again.
        this.device = undefined;
      }
      const goOffline =
        this.availability.state === 'unknown' ||
        (this.availability.state === 'online' && this.consecutiveFailures >= FAILURES_BEFORE_OFFLINE) ||
        (this.availability.state === 'offline' && this.availability.reason !== reason);
      if (goOffline) {
        const sinceMs = this.availability.state === 'offline' ? this.availability.sinceMs : tsMs;
        this.availability = { state: 'offline', sinceMs, reason };
        this.log.warn({ reason }, 'device offline');
        return { change: { deviceId: this.id, tsMs, availability: this.availability } };
      }
      this.log.debug({ reason, consecutiveFailures: this.consecutiveFailures }, 'poll failed');
      return {};
    }
  }

  state(fresh: boolean): DeviceState {
    const state: DeviceState = { id: this.id, deviceClass: this.deviceClass, availability: this.availability, fresh };
    if (this.lastReading) state.reading = this.lastReading;
    if (this.lastReadAtMs !== undefined) state.readAtMs = this.lastReadAtMs;
    if (this.device) state.description = this.device.describe();
    return state;
  }

  get connectedDevice(): Device | undefined {
    return this.device;
  }

  private async ensureConnected(): Promise<Device> {
    if (this.device) return this.device;
    this.connecting ??= this.options.connect().finally(() => {
      this.connecting = undefined;
    });
    this.device = await this.connecting;
    return this.device;
  }
}

function describeFailure(err: unknown): string {
  // A backed-off request was never sent: the reason is the failure that caused the back-off.
  if (isDeviceError(err) && err.kind === 'backed-off' && err.cause instanceof Error) return describeFailure(err.cause);
  if (isDeviceError(err)) return err.message;
  if (err instanceof Error) return `unexpected error: ${err.message}`;
  return `unexpected error: ${String(err)}`;
}
