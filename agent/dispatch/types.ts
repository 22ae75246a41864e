/**
 * The boundary between the order book (protocol side: verification, order state, statuses) and the
 * dispatcher (execution side: device setpoints, closed loop, restore). Both run inside the control
 * loop: an MQTT callback only queues the raw order.
 */
import type { Address, Hex } from '../../ledger-client/wire.js';

/** PROTOCOL.md §3 signals other than CANCEL. */
export const SITE_SIGNALS = { SITE_IMPORT_LIMIT: 1, SITE_EXPORT_LIMIT: 2, SITE_SETPOINT: 3, SITE_DELTA: 4 } as const;
export type SiteSignal = (typeof SITE_SIGNALS)[keyof typeof SITE_SIGNALS];

/** An accepted order whose window has begun (or is about to): what the dispatcher executes. */
export interface ActiveOrder {
  /** `${orderId}:${modification}`: one version of one order. */
  readonly key: string;
  readonly orderId: Hex;
  readonly modification: number;
  readonly aggregator: Address;
  readonly signal: SiteSignal;
  /** Site power in W, positive = import (PROTOCOL.md §1); for SITE_DELTA the change against the baseline. */
  readonly valueW: number;
  /** When the devices start moving: the window start (or receipt, for start 0) plus the random offset. */
  readonly effectiveStartMs: number;
  /** End of the window: start + durationMs (the random offset does not extend it). */
  readonly endMs: number;
  readonly rampMs: number;
  readonly priceMicros: number;
  /** When this version was accepted (for choosing between orders: the newest wins a conflict). */
  readonly acceptedAtMs: number;
}

/** What the dispatcher reports back to the order book, from inside the control loop. */
export interface DispatchFeedback {
  /** Every device setpoint of the order was acknowledged by its device (Modbus write / MQTT command confirmed). */
  started(key: string, info: { atMs: number; safetyLimited: boolean }): void;
  /** Actuation failed during the order: the order is given up, devices restored. */
  aborted(key: string, info: { atMs: number; deliveredWh: number }): void;
}

/** What the order book asks of the dispatcher. */
export interface OrderExecution {
  /** Energy by which the site's net import differed from the order's baseline so far (Wh, negative =
   * consumed less); 0 when the order never started. */
  deliveredWh(key: string): number;
  /** True when the order was cut back to keep a device within its limits at any time so far. */
  safetyLimited(key: string): boolean;
}

/** Durable record of devices flexgate has changed and not yet restored (for restore after a crash). */
export interface RestoreLedger {
  /** Made durable before the first write that changes the device. */
  markChanged(deviceId: string, atMs: number): void;
  /** After the device confirmed its restore. */
  markRestored(deviceId: string): void;
  changedDevices(): string[];
}

/**
 * Where the dispatcher records every setpoint it writes (one row each): the order book's audit log
 * (agent/store/audit-log.ts `AuditLog`) implements it. `orderKey` is the ActiveOrder's key, or
 * undefined for a write that belongs to no order (a restore after a restart).
 */
export interface SetpointAudit {
  setpoint(orderKey: string | undefined, deviceId: string, what: string, value: number, ok: boolean, error?: string): void;
}
