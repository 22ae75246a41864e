/**
 * Devices flexgate changed and had not restored when it last stopped (the restore ledger, written
 * before every change of a device that has no revert timer of its own) are put back to normal at
 * start: each as soon as it is reachable, retried every control cycle until it confirms.
 */
import { isBattery, isControllable, isPv, type Device } from '../drivers/classes.js';
import type { Log } from '../drivers/log.js';
import type { RestoreLedger } from './dispatch/types.js';

/** Back to normal: PV limit off, battery setpoint off, others their class's normal state. */
export async function restoreDevice(device: Device): Promise<void> {
  if (isPv(device)) return device.clearLimit();
  if (isBattery(device)) return device.clearSetpoint();
  if (isControllable(device)) return device.restore();
}

export class PendingRestores {
  private readonly pending: Set<string>;
  private running = false;

  constructor(
    private readonly ledger: RestoreLedger,
    private readonly deviceOf: (id: string) => Device | undefined,
    private readonly log: Log,
    private readonly onRestored?: (deviceId: string) => void,
  ) {
    this.pending = new Set(ledger.changedDevices());
    if (this.pending.size > 0) log.warn({ devices: [...this.pending] }, 'devices were left changed when flexgate last stopped: restoring them');
  }

  get size(): number {
    return this.pending.size;
  }

  has(deviceId: string): boolean {
    return this.pending.has(deviceId);
  }

  /** Tries every pending device that is connected; never throws. */
  async run(): Promise<void> {
    if (this.running || this.pending.size === 0) return;
    this.running = true;
    try {
      await Promise.all(
        [...this.pending].map(async (id) => {
          const device = this.deviceOf(id);
          if (!device) return;
          try {
            await restoreDevice(device);
            this.ledger.markRestored(id);
            this.pending.delete(id);
            this.log.info({ device: id }, 'device restored to normal');
            this.onRestored?.(id);
          } catch (err) {
            this.log.warn({ device: id, err: err instanceof Error ? err.message : String(err) }, 'could not restore the device yet; trying again');
          }
        }),
      );
    } finally {
      this.running = false;
    }
  }
}
