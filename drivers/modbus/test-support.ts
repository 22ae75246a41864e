/**
 * Real servers for the tests of this folder (not used by library code): a scriptable Modbus TCP
 * server on loopback for faults, a pseudo-terminal pair made with socat, and tiny RTU and ASCII
 * responders on one side of it. Written apart from the bus code on purpose: they frame bytes themselves.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SerialPort } from 'serialport';
import type { Clock, TimerHandle } from '../clock.js';

export interface ModbusRequest {
  /** MBAP transaction id (TCP only). */
  tid: number;
  unitId: number;
  functionCode: number;
  address: number;
  /** Register count for FC3/4/16, coil count for FC1, 1 for FC5/FC6. */
  count: number;
  /** Values of FC6/FC16; FC5: the raw coil value (0xFF00 on, 0x0000 off). */
  values: number[];
  receivedAtMs: number;
}

export function crc16(data: Uint8Array): number {
  let crc = 0xffff;
  for (const byte of data) {
    crc ^= byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? (crc >>> 1) ^ 0xa001 : crc >>> 1;
  }
  return crc;
}

function parsePdu(unitId: number, pdu: Buffer, tid: number): ModbusRequest {
  const functionCode = pdu[0]!;
  const address = pdu.length >= 3 ? pdu.readUInt16BE(1) : 0;
  let count = pdu.length >= 5 ? pdu.readUInt16BE(3) : 0;
  const values: number[] = [];
  if (functionCode === 6 || functionCode === 5) {
    values.push(count);
    count = 1;
  } else if (functionCode === 16) {
    for (let i = 0; i < count; i++) values.push(pdu.readUInt16BE(6 + 2 * i));
  }
  return { tid, unitId, functionCode, address, count, values, receivedAtMs: Date.now() };
}

/** The answer PDU of a request (without unit id / MBAP / CRC). */
export function answerPdu(req: ModbusRequest, registers?: readonly number[]): Buffer {
  if (req.functionCode === 3 || req.functionCode === 4) {
    const values = registers ?? Array.from({ length: req.count }, (_, i) => (req.address + i) & 0xffff);
    const pdu = Buffer.alloc(2 + 2 * values.length);
    pdu[0] = req.functionCode;
    pdu[1] = 2 * values.length;
    values.forEach((v, i) => pdu.writeUInt16BE(v, 2 + 2 * i));
    return pdu;
  }
  const pdu = Buffer.alloc(5);
  pdu[0] = req.functionCode;
  pdu.writeUInt16BE(req.address, 1);
  pdu.writeUInt16BE(req.functionCode === 6 || req.functionCode === 5 ? req.values[0]! : req.count, 3);
  return pdu;
}

/** The answer PDU of an FC1 request: `bits` packed LSB first. */
export function coilAnswerPdu(req: ModbusRequest, bits: readonly boolean[]): Buffer {
  const bytes = Math.ceil(bits.length / 8);
  const pdu = Buffer.alloc(2 + bytes);
  pdu[0] = 1;
  pdu[1] = bytes;
  bits.forEach((b, i) => {
    if (b) pdu[2 + (i >> 3)]! |= 1 << (i & 7);
  });
  return pdu;
}

export function exceptionPdu(req: ModbusRequest, code: number): Buffer {
  return Buffer.from([req.functionCode | 0x80, code]);
}

export interface TcpReply {
  /** Sends `pdu` framed with this request's transaction id (or `tid`). */
  pdu(pdu: Buffer, tid?: number): void;
  /** Sends raw bytes. */
  raw(bytes: Buffer): void;
  /** Closes the connection. */
  drop(): void;
}

export type TcpHandler = (req: ModbusRequest, reply: TcpReply) => void;

export interface FaultServer {
  readonly port: number;
  readonly requests: ModbusRequest[];
  /** Greatest number of requests received and not yet answered, at any moment. */
  readonly maxOutstanding: number;
  connections: number;
  setHandler(handler: TcpHandler): void;
  close(): Promise<void>;
}

/** A Modbus TCP server on loopback whose every answer the test scripts. */
export async function startFaultServer(handler: TcpHandler, port = 0): Promise<FaultServer> {
  const sockets = new Set<net.Socket>();
  let current = handler;
  let outstanding = 0;
  const state = {
    port: 0,
    requests: [] as ModbusRequest[],
    maxOutstanding: 0,
    connections: 0,
    setHandler: (h: TcpHandler) => {
      current = h;
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
  const server = net.createServer((socket) => {
    sockets.add(socket);
    state.connections++;
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    let buffer = Buffer.alloc(0);
    socket.on('data', (data) => {
      buffer = Buffer.concat([buffer, data]);
      while (buffer.length >= 7) {
        const length = buffer.readUInt16BE(4);
        if (buffer.length < 6 + length) break;
        const tid = buffer.readUInt16BE(0);
        const unitId = buffer[6]!;
        const pdu = buffer.subarray(7, 6 + length);
        buffer = buffer.subarray(6 + length);
        const req = parsePdu(unitId, Buffer.from(pdu), tid);
        state.requests.push(req);
        outstanding++;
        state.maxOutstanding = Math.max(state.maxOutstanding, outstanding);
        let answered = false;
        const settle = () => {
          if (!answered) {
            answered = true;
            outstanding--;
          }
        };
        current(req, {
          pdu: (answer, replyTid = tid) => {
            settle();
            if (socket.destroyed) return;
            const head = Buffer.alloc(7);
            head.writeUInt16BE(replyTid, 0);
            head.writeUInt16BE(0, 2);
            head.writeUInt16BE(answer.length + 1, 4);
            head[6] = unitId;
            socket.write(Buffer.concat([head, answer]));
          },
          raw: (bytes) => {
            settle();
            if (!socket.destroyed) socket.write(bytes);
          },
          drop: () => {
            settle();
            socket.destroy();
          },
        });
      }
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve());
  });
  state.port = (server.address() as net.AddressInfo).port;
  return state;
}

export function hasSocat(): boolean {
  return spawnSync('sh', ['-c', 'command -v socat'], { stdio: 'ignore' }).status === 0;
}

export interface PtyPair {
  /** The side the bus opens. */
  readonly busPath: string;
  /** The side the test's responder opens. */
  readonly devicePath: string;
  /** Stops socat (the links disappear; the directory stays for a restart). */
  stop(): Promise<void>;
  /** Removes the directory. */
  remove(): void;
}

/** A pseudo-terminal pair made with socat (raw, no echo); `dir` reuses the paths of an earlier pair. */
export async function startPtyPair(dir = mkdtempSync(join(tmpdir(), 'flexgate-modbus-pty-'))): Promise<PtyPair & { readonly dir: string }> {
  const busPath = join(dir, 'bus');
  const devicePath = join(dir, 'device');
  const child: ChildProcess = spawn('socat', ['-d', '-d', `pty,raw,echo=0,link=${busPath}`, `pty,raw,echo=0,link=${devicePath}`], {
    stdio: 'ignore',
  });
  const startedAt = Date.now();
  while (!(existsSync(busPath) && existsSync(devicePath))) {
    if (Date.now() - startedAt > 5000 || child.exitCode !== null) throw new Error('socat did not create the pty pair');
    await new Promise((r) => setTimeout(r, 20));
  }
  return {
    dir,
    busPath,
    devicePath,
    stop: async () => {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(busPath, { force: true });
      rmSync(devicePath, { force: true });
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}

export interface RtuReply {
  /** Sends unit id + `pdu` + CRC. */
  pdu(pdu: Buffer): void;
  /** Sends raw bytes (e.g. a frame with a wrong CRC). */
  raw(bytes: Buffer): void;
}

export interface RtuResponder {
  readonly requests: ModbusRequest[];
  /** Requests received while another was still unanswered (must stay 0). */
  readonly overlaps: number;
  setHandler(handler: (req: ModbusRequest, reply: RtuReply) => void): void;
  close(): Promise<void>;
}

export function rtuFrame(unitId: number, pdu: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([unitId]), pdu]);
  const out = Buffer.alloc(body.length + 2);
  body.copy(out);
  out.writeUInt16LE(crc16(body), body.length);
  return out;
}

/** A tiny RTU device on a serial path: frames requests by function code, checks their CRC. */
export async function startRtuResponder(path: string, handler: (req: ModbusRequest, reply: RtuReply) => void): Promise<RtuResponder> {
  const port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
  let current = handler;
  let outstanding = 0;
  const state = {
    requests: [] as ModbusRequest[],
    overlaps: 0,
    setHandler: (h: typeof handler) => {
      current = h;
    },
    close: () => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
  };
  let buffer = Buffer.alloc(0);
  port.on('data', (data: Buffer) => {
    buffer = Buffer.concat([buffer, data]);
    for (;;) {
      if (buffer.length < 8) return;
      const fc = buffer[1]!;
      const length = fc === 16 ? (buffer.length >= 7 ? 9 + buffer[6]! : Infinity) : 8;
      if (buffer.length < length) return;
      const frame = buffer.subarray(0, length);
      buffer = buffer.subarray(length);
      if (crc16(frame.subarray(0, length - 2)) !== frame.readUInt16LE(length - 2)) {
        buffer = Buffer.alloc(0); // lost sync: drop everything, like a device would
        return;
      }
      const req = parsePdu(frame[0]!, Buffer.from(frame.subarray(1, length - 2)), 0);
      state.requests.push(req);
      if (outstanding > 0) state.overlaps++;
      outstanding++;
      let answered = false;
      const settle = () => {
        if (!answered) {
          answered = true;
          outstanding--;
        }
      };
      current(req, {
        pdu: (pdu) => {
          settle();
          port.write(rtuFrame(req.unitId, pdu));
        },
        raw: (bytes) => {
          settle();
          port.write(bytes);
        },
      });
    }
  });
  return state;
}

/** LRC of Modbus ASCII: the two's complement of the byte sum. */
export function lrc(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return (0x100 - sum) & 0xff;
}

/** ':' + hex(unit id, pdu, LRC) + CR LF. */
export function asciiFrame(unitId: number, pdu: Buffer): Buffer {
  const body = Buffer.concat([Buffer.from([unitId]), pdu]);
  return Buffer.from(`:${Buffer.concat([body, Buffer.from([lrc(body)])]).toString('hex').toUpperCase()}\r\n`, 'latin1');
}

/** A tiny Modbus ASCII device on a serial path: frames requests by ':' … CR LF, checks their LRC.
 * `raw` replies send bytes as they are (garbage, a frame with a wrong LRC, line noise). */
export async function startAsciiResponder(path: string, handler: (req: ModbusRequest, reply: RtuReply) => void): Promise<RtuResponder & { readonly badFrames: number }> {
  const port = new SerialPort({ path, baudRate: 38400, parity: 'even', autoOpen: false });
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
  let current = handler;
  let outstanding = 0;
  const state = {
    requests: [] as ModbusRequest[],
    overlaps: 0,
    badFrames: 0,
    setHandler: (h: typeof handler) => {
      current = h;
    },
    close: () => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
  };
  let text = '';
  port.on('data', (data: Buffer) => {
    text += data.toString('latin1');
    for (;;) {
      const start = text.indexOf(':');
      if (start < 0) {
        text = '';
        return;
      }
      const end = text.indexOf('\r\n', start);
      if (end < 0) {
        text = text.slice(start);
        return;
      }
      const hex = text.slice(start + 1, end);
      text = text.slice(end + 2);
      const bytes = /^([0-9A-F]{2})+$/.test(hex) ? Buffer.from(hex, 'hex') : undefined;
      if (bytes === undefined || bytes.length < 3 || lrc(bytes.subarray(0, -1)) !== bytes[bytes.length - 1]) {
        state.badFrames++;
        continue;
      }
      const req = parsePdu(bytes[0]!, Buffer.from(bytes.subarray(1, -1)), 0);
      state.requests.push(req);
      if (outstanding > 0) state.overlaps++;
      outstanding++;
      let answered = false;
      const settle = () => {
        if (!answered) {
          answered = true;
          outstanding--;
        }
      };
      current(req, {
        pdu: (pdu) => {
          settle();
          port.write(asciiFrame(req.unitId, pdu));
        },
        raw: (bytes) => {
          settle();
          port.write(bytes);
        },
      });
    }
  });
  return state;
}

/** Polls `condition` every 5 ms until it holds or `timeoutMs` passes. */
export async function waitFor(condition: () => boolean, timeoutMs = 3000): Promise<void> {
  const startedAt = Date.now();
  while (!condition()) {
    if (Date.now() - startedAt > timeoutMs) throw new Error('waitFor: condition not met in time');
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** A clock that moves only when the test says so. */
export class ManualClock implements Clock {
  private nowMs = 1_700_000_000_000;
  private nextId = 1;
  private readonly timers = new Map<number, { atMs: number; delayMs: number; fn: () => void }>();

  now(): number {
    return this.nowMs;
  }

  setTimeout(fn: () => void, delayMs: number): TimerHandle {
    const id = this.nextId++;
    this.timers.set(id, { atMs: this.nowMs + delayMs, delayMs, fn });
    return id as unknown as TimerHandle; // the handle is opaque to callers
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle as unknown as number);
  }

  /** Delays of the timers still pending, in the order they were set. */
  pendingDelays(): number[] {
    return [...this.timers.values()].map((t) => t.delayMs);
  }

  /** Moves time forward, firing due timers in time order. */
  advance(ms: number): void {
    const targetMs = this.nowMs + ms;
    for (;;) {
      let next: [number, { atMs: number; fn: () => void }] | undefined;
      for (const entry of this.timers) if (entry[1].atMs <= targetMs && (next === undefined || entry[1].atMs < next[1].atMs)) next = entry;
      if (next === undefined) break;
      this.timers.delete(next[0]);
      this.nowMs = next[1].atMs;
      next[1].fn();
    }
    this.nowMs = targetMs;
  }
}
