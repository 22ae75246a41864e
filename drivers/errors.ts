/**
 * Typed errors of device access. Every error says whether a retry can help:
 * permanent errors (not supported, bad configuration) are never retried, transient ones
 * (timeout, disconnected, stale data, busy) are retried with back-off.
 */
export type DeviceErrorKind =
  | 'timeout'
  | 'modbus-exception'
  | 'disconnected'
  | 'not-supported'
  | 'stale'
  | 'bad-data'
  | 'backed-off'
  | 'refused';

export abstract class DeviceError extends Error {
  abstract readonly kind: DeviceErrorKind;
  abstract readonly retryable: boolean;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** No answer within the request timeout. */
export class TimeoutError extends DeviceError {
  readonly kind = 'timeout';
  readonly retryable = true;
  constructor(message: string, readonly timeoutMs: number) {
    super(message);
  }
}

/** Modbus exception codes (Modbus Application Protocol V1.1b3 §7). */
export const MODBUS_EXCEPTION_NAMES: Readonly<Record<number, string>> = {
  1: 'illegal function',
  2: 'illegal data address',
  3: 'illegal data value',
  4: 'server device failure',
  5: 'acknowledge',
  6: 'server device busy',
  8: 'memory parity error',
  10: 'gateway path unavailable',
  11: 'gateway target device failed to respond',
};

/** The device answered with a Modbus exception. Codes 1-3 are permanent for that request. */
export class ModbusExceptionError extends DeviceError {
  readonly kind = 'modbus-exception';
  readonly retryable: boolean;
  constructor(message: string, readonly functionCode: number, readonly exceptionCode: number) {
    super(message);
    this.retryable = exceptionCode >= 4;
  }
}

/** The connection to the bus (TCP socket, serial port) is down or was lost mid-request. */
export class DisconnectedError extends DeviceError {
  readonly kind = 'disconnected';
  readonly retryable = true;
}

/** The device does not offer what was asked (no SunSpec marker, missing model, read-only point). */
export class NotSupportedError extends DeviceError {
  readonly kind = 'not-supported';
  readonly retryable = false;
}

/** The device answered, but with something that cannot be a valid value (garbage frame, wrong length, unimplemented value where one is required). */
export class BadDataError extends DeviceError {
  readonly kind = 'bad-data';
  readonly retryable = true;
}

/** A value is older than its maximum age. */
export class StaleDataError extends DeviceError {
  readonly kind = 'stale';
  readonly retryable = true;
}

/** The device failed repeatedly and is in back-off: the request was not sent, to spare the bus. */
export class BackedOffError extends DeviceError {
  readonly kind = 'backed-off';
  readonly retryable = true;
  constructor(message: string, readonly retryAtMs: number, options?: { cause?: unknown }) {
    super(message, options);
  }
}

export function isDeviceError(e: unknown): e is DeviceError {
  return e instanceof DeviceError;
}

/** The device (or its driver, on the device's behalf) refuses this change now: a minimum switching
 * time has not passed, or the value is outside what the device accepts. Not retried as such. */
export class RefusedError extends DeviceError {
  readonly kind = 'refused';
  readonly retryable = false;
}
