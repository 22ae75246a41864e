/**
 * Maps what modbus-serial 8 reports to the typed errors of drivers/errors.ts. The cases follow its
 * source (node_modules/modbus-serial/index.js):
 * - an exception response: `Error("Modbus exception N: …")` with `modbusCode = N`;
 * - `PortNotOpenError` (errno ECONNREFUSED, "Port Not Open"): the request was not sent;
 * - `TransactionTimedOutError` (errno ETIMEDOUT): only when its own timer is set, which we never do
 *   (the bus times requests on the injected clock), mapped for completeness;
 * - "CRC error", "Data length error, expected …", "Unexpected data error, expected address/code …",
 *   and exceptions thrown while parsing a short frame (RangeError from Buffer reads): bad data;
 * - `SerialPortError` and socket errors (ECONNRESET, EPIPE, …): the connection is gone;
 * - `BadAddressError` (unit or address undefined): a caller bug we prevent by validating first.
 */
import {
  BadDataError,
  DeviceError,
  DisconnectedError,
  MODBUS_EXCEPTION_NAMES,
  ModbusExceptionError,
  TimeoutError,
} from '../errors.js';

export interface WireErrorContext {
  /** e.g. "tcp 127.0.0.1:502 unit 1" */
  label: string;
  functionCode: number;
  timeoutMs: number;
}

const CONNECTION_ERROR_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ENOTCONN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EIO',
  'ENXIO',
  'EBADF',
  'ERR_STREAM_DESTROYED',
  'ERR_STREAM_WRITE_AFTER_END',
  'ERR_SOCKET_CLOSED',
]);

function field(err: unknown, name: string): unknown {
  return typeof err === 'object' && err !== null ? (err as Record<string, unknown>)[name] : undefined;
}

export function exceptionError(ctx: Pick<WireErrorContext, 'label' | 'functionCode'>, exceptionCode: number, cause?: unknown): ModbusExceptionError {
  const name = MODBUS_EXCEPTION_NAMES[exceptionCode] ?? 'unknown exception';
  const e = new ModbusExceptionError(`${ctx.label}: FC${ctx.functionCode} exception ${exceptionCode} (${name})`, ctx.functionCode, exceptionCode);
  if (cause !== undefined) Object.defineProperty(e, 'cause', { value: cause, enumerable: false });
  return e;
}

export function mapWireError(err: unknown, ctx: WireErrorContext): DeviceError {
  if (err instanceof DeviceError) return err;
  const modbusCode = field(err, 'modbusCode');
  if (typeof modbusCode === 'number') return exceptionError(ctx, modbusCode, err);

  const name = field(err, 'name');
  const message = String(field(err, 'message') ?? err);
  const errno = field(err, 'errno');
  const code = field(err, 'code');
  const where = `${ctx.label}: FC${ctx.functionCode}`;

  if (name === 'TransactionTimedOutError' || (errno === 'ETIMEDOUT' && message === 'Timed out')) {
    return new TimeoutError(`${where}: no answer within ${ctx.timeoutMs} ms`, ctx.timeoutMs);
  }
  if (name === 'PortNotOpenError' || message === 'Port Not Open') {
    return new DisconnectedError(`${where}: port not open`, { cause: err });
  }
  if (name === 'SerialPortError' || (typeof code === 'string' && CONNECTION_ERROR_CODES.has(code)) || (typeof errno === 'string' && CONNECTION_ERROR_CODES.has(errno))) {
    return new DisconnectedError(`${where}: connection error: ${message}`, { cause: err });
  }
  if (/^(CRC error|Data length error|Unexpected data error)/.test(message) || err instanceof RangeError) {
    return new BadDataError(`${where}: bad answer: ${message}`, { cause: err });
  }
  // Whatever else modbus-serial reports comes from checking or parsing an answer.
  return new BadDataError(`${where}: ${message}`, { cause: err });
}
