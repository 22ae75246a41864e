/**
 * One open connection of a bus, through modbus-serial (the only wire adapter):
 * - TCP: we open the socket ourselves (connect timeout on the injected clock, TCP_NODELAY,
 *   keep-alive) and hand it to modbus-serial with `linkTCP`. Owning the socket gives a 'close'
 *   event that always fires: modbus-serial's TcpPort swallows 'close' after a socket 'error'
 *   (it clears `openFlag` on error and only relays 'close' while the flag is set).
 * - RTU: `connectRTUBuffered` (modbus-serial's RTUBufferedPort over serialport); Modbus ASCII lines:
 *   `connectAsciiSerial` (its AsciiPort), with the same quiet-line rules. Both on serialport's Linux
 *   binding with a hung-up line reported as a disconnect (`serial-binding.ts`).
 *
 * No modbus-serial timer is ever set (`setTimeout` is not called): the bus times every request on
 * the injected clock, and ignores whatever modbus-serial reports for a request it gave up on.
 */
import net from 'node:net';
import modbusSerial from 'modbus-serial';
import { sleep, type Clock, type TimerHandle } from '../clock.js';
import { BadDataError, DisconnectedError } from '../errors.js';
import type { Log } from '../log.js';
import { serialBinding } from './serial-binding.js';
import type { BusConnection } from './types.js';

const ModbusRTU = modbusSerial.default;
export type ModbusClient = InstanceType<typeof ModbusRTU>;

/**
 * The private fields of modbus-serial 8's ports that we read (checked at runtime; when a future
 * version renames them the checks degrade to "nothing to flush / no partial frame").
 */
interface PortInternals {
  /** TcpPort: bytes received but not yet framed (a partial MBAP frame). */
  _clientRcvData?: unknown;
  /** RTUBufferedPort: bytes received but not yet matched to the pending request. */
  _buffer?: unknown;
  /** RTUBufferedPort / AsciiPort: the serialport instance. */
  _client?: SerialEvents;
  /** AsciiPort: the frame start character (':'). */
  _startOfSlaveFrameChar?: unknown;
}

/** The part of serialport's EventEmitter we use to wrap modbus-serial's own 'data' handler. */
interface SerialEvents {
  on?: (event: 'data', fn: (data: Buffer) => void) => void;
  listeners?: (event: 'data') => Function[];
  removeAllListeners?: (event: 'data') => void;
}

function portOf(client: ModbusClient): PortInternals | undefined {
  // `_port` is not in modbus-serial's typings; it is the port object set by connect*/link*.
  const port = (client as unknown as { _port?: unknown })._port;
  return typeof port === 'object' && port !== null ? (port as PortInternals) : undefined;
}

export interface Wire {
  readonly kind: 'tcp' | 'rtu';
  readonly client: ModbusClient;
  /**
   * Called before each request. RTU: drops stale bytes; after a failure, first waits until the line
   * has been quiet for `rtuQuietMs` (a late answer arriving meanwhile is discarded). Returns a
   * promise only when it has to wait.
   */
  prepare(): Promise<void> | undefined;
  /**
   * Called after a timeout or a bad frame. Returns true when the byte stream can no longer be
   * trusted and the connection must be dropped (TCP: a partial frame is pending, so the framing of
   * every later answer would be off).
   */
  afterFailure(): boolean;
  close(): Promise<void>;
}

export interface OpenWireOptions {
  clock: Clock;
  log: Log;
  connectTimeoutMs: number;
  rtuQuietMs: number;
  /** Aborts connecting, and any wait of this connection (aborted when the bus stops or drops it). */
  signal: AbortSignal;
  /** The connection was lost (not called after `close()`). */
  onLost(wire: Wire, error: DisconnectedError): void;
  /** A complete frame arrived that cannot be the answer (Modbus ASCII: bad LRC, not hex, too short,
   * another unit or function): the request on the wire fails with this error. */
  onBadFrame(wire: Wire, error: BadDataError): void;
}

export function describeConnection(connection: BusConnection): string {
  return 'tcp' in connection ? `tcp ${connection.tcp.host}:${connection.tcp.port}` : `rtu ${connection.rtu.path}`;
}

export function openWire(connection: BusConnection, options: OpenWireOptions): Promise<Wire> {
  return 'tcp' in connection ? openTcp(connection.tcp, options) : openRtu(connection.rtu, options);
}

/** Runs `start` with a clock timeout and abort; `cancel` undoes a late success. */
function withDeadline<T>(
  options: OpenWireOptions,
  what: string,
  start: () => Promise<T>,
  cancel: (value: T) => void,
  onGiveUp: () => void,
): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    let timer: TimerHandle | undefined;
    const giveUp = (error: DisconnectedError) => {
      if (settled) return;
      settled = true;
      if (timer !== undefined) options.clock.clearTimeout(timer);
      options.signal.removeEventListener('abort', onAbort);
      onGiveUp();
      reject(error);
    };
    const onAbort = () => giveUp(new DisconnectedError(`${what}: bus stopped while connecting`));
    if (options.signal.aborted) {
      onAbort();
      return;
    }
    options.signal.addEventListener('abort', onAbort, { once: true });
    timer = options.clock.setTimeout(
      () => giveUp(new DisconnectedError(`${what}: connect timed out after ${options.connectTimeoutMs} ms`)),
      options.connectTimeoutMs,
    );
    start().then(
      (value) => {
        if (settled) {
          cancel(value);
          return;
        }
        settled = true;
        options.clock.clearTimeout(timer!);
        options.signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        const message = error instanceof Error ? error.message : String(error);
        if (settled) return;
        settled = true;
        options.clock.clearTimeout(timer!);
        options.signal.removeEventListener('abort', onAbort);
        reject(new DisconnectedError(`${what}: connect failed: ${message}`, { cause: error }));
      },
    );
  });
}

async function openTcp(tcp: { host: string; port: number }, options: OpenWireOptions): Promise<Wire> {
  const what = `tcp ${tcp.host}:${tcp.port}`;
  const socket = new net.Socket();
  // Errors before linkTCP are reported through the connect promise; keep one listener for later
  // ones so that an 'error' never goes unhandled.
  socket.on('error', (error) => options.log.debug({ err: error.message }, 'socket error'));
  await withDeadline(
    options,
    what,
    () =>
      new Promise<void>((resolve, reject) => {
        socket.once('connect', () => resolve());
        socket.once('error', reject);
        socket.once('close', () => reject(new Error('closed while connecting')));
        socket.connect({ host: tcp.host, port: tcp.port });
      }),
    () => socket.destroy(),
    () => socket.destroy(),
  );
  socket.removeAllListeners('connect');
  socket.setNoDelay(true);
  socket.setKeepAlive(true, 10_000);

  const client = new ModbusRTU();
  client.on('error', (error) => options.log.debug({ err: String(error) }, 'modbus-serial error'));
  await client.linkTCP(socket, { port: tcp.port });

  let closing = false;
  const wire: Wire = {
    kind: 'tcp',
    client,
    prepare: () => undefined,
    afterFailure: () => {
      const pending = portOf(client)?._clientRcvData;
      return Buffer.isBuffer(pending) && pending.length > 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        if (socket.destroyed) {
          resolve();
          return;
        }
        socket.once('close', () => resolve());
        socket.destroy();
      }),
  };
  if (socket.destroyed) throw new DisconnectedError(`${what}: connection closed right after connecting`);
  socket.once('close', () => {
    if (!closing) options.onLost(wire, new DisconnectedError(`${what}: connection closed`));
  });
  return wire;
}

async function openRtu(rtu: Extract<BusConnection, { rtu: unknown }>['rtu'], options: OpenWireOptions): Promise<Wire> {
  const what = `rtu ${rtu.path}`;
  const client = new ModbusRTU();
  client.on('error', (error) => options.log.debug({ err: String(error) }, 'serial port error'));
  await withDeadline(
    options,
    what,
    () => {
      // modbus-serial hands these options to serialport, whose `binding` is not in its typings.
      const serialOptions = { baudRate: rtu.baudRate, parity: rtu.parity, dataBits: rtu.dataBits, stopBits: rtu.stopBits, ...(serialBinding && { binding: serialBinding }) };
      return rtu.framing === 'ascii' ? client.connectAsciiSerial(rtu.path, serialOptions) : client.connectRTUBuffered(rtu.path, serialOptions);
    },
    () => client.close(() => {}),
    () => {
      if (client.isOpen) client.close(() => {});
    },
  );

  const { clock } = options;
  const port = portOf(client);
  if (rtu.framing === 'ascii' && port !== undefined) guardAsciiFrames(client, port, what, () => wire, options);
  let lastByteAtMs = clock.now();
  let quietSinceMs: number | undefined; // set after a failure: wait for a quiet line before the next request
  port?._client?.on?.('data', () => {
    lastByteAtMs = clock.now();
  });
  const dropStaleBytes = () => {
    if (port !== undefined && Buffer.isBuffer(port._buffer)) port._buffer = Buffer.alloc(0);
  };
  /** Waits until no byte arrived for `rtuQuietMs` since the failure; bounded so that a chattering
   * line cannot block the bus for ever. */
  const waitQuiet = async (sinceMs: number) => {
    const deadlineMs = sinceMs + 10 * options.rtuQuietMs;
    for (;;) {
      const now = clock.now();
      const quietAtMs = Math.max(lastByteAtMs, sinceMs) + options.rtuQuietMs;
      if (now >= quietAtMs || now >= deadlineMs) break;
      await sleep(clock, Math.min(quietAtMs, deadlineMs) - now, options.signal);
    }
    dropStaleBytes();
  };

  let closing = false;
  const wire: Wire = {
    kind: 'rtu',
    client,
    prepare: () => {
      if (quietSinceMs === undefined) {
        dropStaleBytes();
        return undefined;
      }
      const since = quietSinceMs;
      quietSinceMs = undefined;
      return waitQuiet(since);
    },
    afterFailure: () => {
      quietSinceMs = clock.now();
      return false;
    },
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        if (!client.isOpen) {
          resolve();
          return;
        }
        client.close(() => resolve());
      }),
  };
  client.on('close', () => {
    if (!closing) options.onLost(wire, new DisconnectedError(`${what}: serial port closed`));
  });
  return wire;
}

/**
 * Modbus ASCII through modbus-serial's AsciiPort, made safe and explicit:
 * - AsciiPort decodes every ':' … CR LF frame inside serialport's 'data' event and throws on a frame
 *   shorter than its LRC (e.g. ':' CR LF from line noise) — an exception there is uncaught and would
 *   end the process. Its handler is wrapped: such a frame is dropped.
 * - It drops a frame with a bad LRC, or one that does not match the request (unit, function, length),
 *   without a word, so the request would only time out. A complete frame it did not accept fails the
 *   request on the wire at once with BadDataError (as a CRC error does on RTU).
 */
function guardAsciiFrames(client: ModbusClient, port: PortInternals, what: string, wire: () => Wire, options: OpenWireOptions): void {
  const serial = port._client;
  const originals = serial?.listeners?.('data');
  if (serial?.on === undefined || serial.removeAllListeners === undefined || originals === undefined || originals.length === 0) return;
  const startChar = typeof port._startOfSlaveFrameChar === 'number' ? port._startOfSlaveFrameChar : 0x3a;
  // AsciiPort emits 'data' on itself for a frame it accepts; modbus-serial's client listens there.
  let accepted = false;
  (port as unknown as { on(event: 'data', fn: () => void): void }).on('data', () => {
    accepted = true;
  });
  serial.removeAllListeners('data');
  serial.on('data', (chunk: Buffer) => {
    const before = Buffer.isBuffer(port._buffer) ? port._buffer : Buffer.alloc(0);
    const pending = Buffer.concat([before, chunk]);
    const start = pending.indexOf(startChar);
    const complete = start >= 0 && pending.indexOf('\r\n', start + 1, 'latin1') > start;
    accepted = false;
    let thrown: unknown;
    try {
      for (const fn of originals) (fn as (data: Buffer) => void).call(serial, chunk);
    } catch (error) {
      thrown = error;
      port._buffer = Buffer.alloc(0);
    }
    if (complete && !accepted && client.isOpen) {
      const frame = pending.subarray(start, pending.indexOf('\r\n', start + 1, 'latin1') + 2).toString('latin1');
      const why = thrown !== undefined ? 'malformed' : 'bad LRC, or not an answer to the request';
      options.log.debug({ frame: JSON.stringify(frame.slice(0, 80)) }, 'bad ASCII frame');
      options.onBadFrame(wire(), new BadDataError(`${what}: bad ASCII frame (${why}): ${JSON.stringify(frame.slice(0, 40))}`));
    }
  });
}
