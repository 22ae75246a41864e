/**
 * The durable list of devices flexgate has changed and not yet restored (schema step 4, table
 * `changed_devices`): the dispatcher marks a device BEFORE the first write that changes it and clears
 * it once the device confirmed its restore, so that after a crash or a power cut the agent knows
 * which devices to put back to normal (DESIGN.md: devices are never left curtailed).
 *
 * Each call is one statement committed on its own (fsynced, synchronous = FULL) unless the caller
 * holds a transaction.
 */
import type BetterSqlite3 from 'better-sqlite3';
import type { RestoreLedger } from '../dispatch/types.js';

export class SqliteRestoreLedger implements RestoreLedger {
  private readonly mark: BetterSqlite3.Statement;
  private readonly clear: BetterSqlite3.Statement;
  private readonly list: BetterSqlite3.Statement;
  private readonly since: BetterSqlite3.Statement;

  constructor(db: BetterSqlite3.Database) {
    // The first change counts: a device changed again before its restore keeps its first time.
    this.mark = db.prepare('INSERT INTO changed_devices (device_id, changed_at_ms) VALUES (?, ?) ON CONFLICT (device_id) DO NOTHING');
    this.clear = db.prepare('DELETE FROM changed_devices WHERE device_id = ?');
    this.list = db.prepare('SELECT device_id FROM changed_devices ORDER BY changed_at_ms, device_id').pluck();
    this.since = db.prepare('SELECT changed_at_ms FROM changed_devices WHERE device_id = ?').pluck();
  }

  markChanged(deviceId: string, atMs: number): void {
    this.mark.run(deviceId, Math.trunc(atMs));
  }

  markRestored(deviceId: string): void {
    this.clear.run(deviceId);
  }

  /** Devices changed and not restored, the longest-changed first. */
  changedDevices(): string[] {
    return this.list.all() as string[];
  }

  /** When the device was first changed (unix ms), or undefined when it is not marked. */
  changedSinceMs(deviceId: string): number | undefined {
    const v: unknown = this.since.get(deviceId);
    return typeof v === 'number' ? v : undefined;
  }
}
