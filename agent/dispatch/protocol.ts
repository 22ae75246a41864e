/**
 * The numbers of PROTOCOL.md §3 the order book works with: signals, reasons (in the order the
 * gateway checks them), status codes, and the limits of the checks.
 */

export const SIGNALS = { CANCEL: 0, SITE_IMPORT_LIMIT: 1, SITE_EXPORT_LIMIT: 2, SITE_SETPOINT: 3, SITE_DELTA: 4 } as const;
export const SIGNAL_NAMES: Readonly<Record<number, string>> = { 0: 'CANCEL', 1: 'SITE_IMPORT_LIMIT', 2: 'SITE_EXPORT_LIMIT', 3: 'SITE_SETPOINT', 4: 'SITE_DELTA' };

/** Reasons of PROTOCOL.md §3; 1–10 are checked in this order, the first failing one is reported. */
export const REASONS = {
  MALFORMED: 1,
  BAD_SIGNATURE: 2,
  UNTRUSTED_AGGREGATOR: 3,
  WRONG_GATEWAY: 4,
  EXPIRED: 5,
  REPLAY: 6,
  CLOCK_SKEW: 7,
  UNSUPPORTED_SIGNAL: 8,
  OUT_OF_RANGE: 9,
  UNKNOWN_ORDER: 10,
  DEVICE_FAULT: 11,
  SAFETY_LIMIT: 12,
} as const;
export type ReasonName = keyof typeof REASONS;
export type RejectionReason = (typeof REASONS)[Exclude<ReasonName, 'DEVICE_FAULT' | 'SAFETY_LIMIT'>];
export const REASON_NAMES: Readonly<Record<number, ReasonName>> = Object.fromEntries(Object.entries(REASONS).map(([name, code]) => [code, name])) as Record<number, ReasonName>;

/** Status codes (IEEE 2030.5 responses where it has them; 10 ABORTED is flexgate's own). */
export const STATUSES = {
  RECEIVED: 1,
  STARTED: 2,
  COMPLETED: 3,
  CANCELLED: 6,
  SUPERSEDED: 7,
  ABORTED: 10,
  NOT_APPLICABLE: 252,
  INVALID: 253,
  EXPIRED: 254,
} as const;
export type StatusName = keyof typeof STATUSES;
export type StatusCode = (typeof STATUSES)[StatusName];
export const STATUS_NAMES: Readonly<Record<number, StatusName>> = Object.fromEntries(Object.entries(STATUSES).map(([name, code]) => [code, name])) as Record<number, StatusName>;

/** The status a rejection is sent with (PROTOCOL.md §3, the reason table). */
export const REJECTION_STATUS: Readonly<Record<RejectionReason, 252 | 253 | 254>> = {
  1: 253,
  2: 253,
  3: 253,
  4: 252,
  5: 254,
  6: 253,
  7: 253,
  8: 252,
  9: 252,
  10: 252,
};

/** CLOCK_SKEW: `issuedAt` may be at most this far ahead of the gateway's clock. */
export const CLOCK_SKEW_MS = 30_000;
/** OUT_OF_RANGE: the longest window. */
export const MAX_DURATION_MS = 24 * 60 * 60 * 1000;
/** OUT_OF_RANGE: the furthest ahead a window may start. */
export const MAX_START_AHEAD_MS = 48 * 60 * 60 * 1000;
