/**
 * The contract between the Modbus transport (this folder) and everything that reads devices
 * through it (sunspec/, profiles/). One `ModbusBus` is one physical bus: a TCP endpoint
 * (host:port, possibly a gateway with several unit ids) or one RS-485 line. Exactly one request
 * is in flight per bus; writes go before polls.
 */
import type { Clock } from '../clock.js';
import type { Log } from '../log.js';

export type RegisterKind = 'holding' | 'input';

/** Priority of a request on its bus: lower runs first. Writes pre-empt polls. */
export type RequestPriority = 'write' | 'interactive' | 'poll';

export interface TcpConnection {
  tcp: { host: string; port: number };
}

export interface RtuConnection {
  rtu: {
    path: string;
    baudRate: number;
    parity: 'none' | 'even' | 'odd';
    dataBits: 7 | 8;
    stopBits: 1 | 2;
    /** Modbus ASCII instead of RTU framing on this line. Default 'rtu'. */
    framing?: 'rtu' | 'ascii';
  };
}

export type BusConnection = TcpConnection | RtuConnection;

export interface RegisterRange {
  address: number;
  count: number;
}

export interface ReadOptions {
  priority?: RequestPriority;
  /** Abort waiting in the queue (a request already on the wire runs to its end or timeout). */
  signal?: AbortSignal;
  /** `readRanges` only: read across gaps of up to this many unrequested registers when that saves a
   * transaction (this call only). Default: the unit's `maxGapRegisters`. Use it only where the
   * registers in the gaps are readable; a device that rejects such a read (exception 2) is handled
   * like a rejected adjacent join: split, retried and remembered. */
  maxGapRegisters?: number;
  /** `readRanges` only: the largest read of this call (e.g. a device profile's limit), never above
   * the unit's `maxReadRegisters`. Default: the unit's. */
  maxReadRegisters?: number;
}

export interface WriteOptions {
  /** Abort waiting in the queue (a request already on the wire runs to its end or timeout). */
  signal?: AbortSignal;
  /** `writeRegisters` only: FC6 (one register) or FC16, whatever the unit's default; devices that
   * take only one of them need it. */
  functionCode?: 6 | 16;
}

/** One device (unit id) on a bus. */
export interface ModbusUnit {
  readonly unitId: number;
  /** A human-readable bus/unit label for messages, e.g. "tcp 127.0.0.1:5020 unit 1". */
  readonly label: string;
  /** Counters and back-off state of this unit (a snapshot). */
  readonly stats: UnitStats;
  /** One read transaction (FC3 holding / FC4 input); count 1..125. */
  readRegisters(kind: RegisterKind, address: number, count: number, options?: ReadOptions): Promise<Uint16Array>;
  /** Reads many ranges in the fewest transactions: adjacent ranges (and, with `maxGapRegisters`,
   * ranges separated by small gaps) are merged (≤125 registers each), never across a join the device
   * rejected before; a merged read the device rejects with exception 2 is split, retried within the
   * same call and not merged there again. Returns one array per requested range, in order. */
  readRanges(kind: RegisterKind, ranges: readonly RegisterRange[], options?: ReadOptions): Promise<Uint16Array[]>;
  /** FC1: `count` coils from `address`. */
  readCoils(address: number, count: number, options?: ReadOptions): Promise<boolean[]>;
  /** FC5: one coil. Priority 'write'. */
  writeCoil(address: number, value: boolean, options?: WriteOptions): Promise<void>;
  /** FC16 write (FC6 when `values.length === 1` and the unit is configured for it, or when
   * `options.functionCode` says so). Priority 'write'. */
  writeRegisters(address: number, values: readonly number[], options?: WriteOptions): Promise<void>;
}

/** Per-unit back-off: after `failuresBeforeBackoff` consecutive failures (timeout, bad data,
 * exception ≥ 4) the unit's requests are rejected at once with BackedOffError until its retry time;
 * then one probe goes out; a failed probe doubles the period up to `maxMs`. */
export interface UnitBackoffOptions {
  /** Default 3. */
  failuresBeforeBackoff?: number;
  /** First back-off period; default 1000 ms. */
  initialMs?: number;
  /** Cap of the doubling; default 60 000 ms. */
  maxMs?: number;
}

export interface UnitOptions {
  /** Request timeout; default: the bus's `timeoutMs` (itself 1000 ms by default). */
  timeoutMs?: number;
  /** Use FC6 (write single register) for one-register writes instead of FC16. Default false. */
  useFc6ForSingleRegister?: boolean;
  /** Let `readRanges` read across gaps of up to this many unrequested registers when that saves a
   * transaction. Default 0 (only adjacent or overlapping ranges are merged). A call's
   * `ReadOptions.maxGapRegisters` overrides it. */
  maxGapRegisters?: number;
  /** Largest read `readRanges` plans for this unit (devices that accept fewer than 125, e.g. the
   * Eastron SDM120's 40); 1..125, default 125. `readRegisters` itself is not limited by it. */
  maxReadRegisters?: number;
  /** Overrides the bus's unit back-off policy for this unit. */
  backoff?: UnitBackoffOptions;
}

export interface ReconnectOptions {
  /** First delay after a lost connection or failed attempt; default 500 ms. */
  initialMs?: number;
  /** Cap of the doubling; default 30 000 ms. */
  maxMs?: number;
}

export interface ModbusBusOptions {
  connection: BusConnection;
  clock: Clock;
  log: Log;
  /** Default request timeout for units on this bus; default 1000 ms. */
  timeoutMs?: number;
  /** Time allowed to open the TCP socket / serial port; default 3000 ms. */
  connectTimeoutMs?: number;
  /** Reconnect back-off (doubling, reset after a successful connect). */
  reconnect?: ReconnectOptions;
  /** Default per-unit back-off policy. */
  unitBackoff?: UnitBackoffOptions;
  /** RTU only: after a timeout or a bad frame, the line must be quiet this long (late bytes are
   * discarded) before the next request goes out; default 50 ms. */
  rtuQuietMs?: number;
}

export interface BusStats {
  /** Requests put on the wire (whatever their outcome). */
  transactions: number;
  /** Requests that got no (matching) answer within their timeout. */
  timeouts: number;
  /** Modbus exception responses. */
  exceptions: number;
  /** Successful connects after a lost connection (the first connect is not counted). */
  reconnects: number;
  /** Unusable answers (CRC, length, address/function mismatch). */
  badFrames: number;
  /** Requests failed because the connection was lost or could not be made. */
  disconnects: number;
  /** Requests rejected without touching the bus because their unit was backed off. */
  backedOffRejections: number;
  /** Failed connect attempts. */
  connectFailures: number;
}

export interface UnitStats {
  transactions: number;
  timeouts: number;
  exceptions: number;
  badFrames: number;
  backedOffRejections: number;
  consecutiveFailures: number;
  /** Current back-off period, 0 when the unit is not backed off. */
  backoffMs: number;
  /** When the next probe may go out (epoch ms of the bus clock), 0 when not backed off. */
  retryAtMs: number;
}

export interface ModbusBus {
  readonly label: string;
  /** True while the connection is open. */
  readonly connected: boolean;
  /** The unit handle for `unitId` (the same object for the same id; options apply on first call). */
  unit(unitId: number, options?: UnitOptions): ModbusUnit;
  /** A snapshot of the bus counters. */
  readonly stats: BusStats;
  /** Opens the connection and keeps it open (reconnecting with back-off). Resolves after the first
   * connect attempt, whatever its outcome; never rejects because the device is unreachable.
   * Aborting `signal` stops the bus. */
  start(signal?: AbortSignal): Promise<void>;
  /** Rejects queued and in-flight requests with DisconnectedError, closes the connection, clears all
   * timers. Idempotent. */
  stop(): Promise<void>;
}
