import { SerialPort } from 'serialport';
import type { RegisterImage } from './image.js';
import { crcOk, withCrc } from './crc.js';
import { exceptionPdu, handlePdu, requestPduLength } from './pdu.js';
import { seededRandom } from '../rng.js';
import { UnitTable, type Fault } from './units.js';

export interface ModbusRtuServerOptions {
  /** Serial device the server listens on (e.g. one side of a PtyPair). */
  path: string;
  baudRate: number;
  /** Bits on the wire per character: start + 8 data + parity/stop. Default 11 (8E1 / 8N2). */
  bitsPerChar?: number;
  /** Seed of the random bytes the 'garbage' fault sends. */
  seed?: number;
  /** 'ascii': Modbus ASCII framing (':' + hex + LRC + CR LF), as ABL chargers speak. Default 'rtu'. */
  framing?: 'rtu' | 'ascii';
}

/** LRC of Modbus ASCII: the two's complement of the byte sum. */
export function lrc(bytes: Uint8Array): number {
  let sum = 0;
  for (const b of bytes) sum = (sum + b) & 0xff;
  return (-sum) & 0xff;
}

/** Real time one character takes on the wire, in ms. */
export function charTimeMs(baudRate: number, bitsPerChar = 11): number {
  return (bitsPerChar * 1000) / baudRate;
}

/** The 3.5-character silent interval that ends a frame; fixed 1.75 ms above 19200 baud (Modbus serial spec). */
export function frameGapMs(baudRate: number, bitsPerChar = 11): number {
  return baudRate > 19200 ? 1.75 : 3.5 * charTimeMs(baudRate, bitsPerChar);
}

/**
 * A Modbus serial server (RTU, or ASCII with `framing: 'ascii'`) on a serial device. A pseudo-terminal
 * delivers bytes instantly, so the server spends real wire time itself: an RTU request is processed
 * only after its bytes would have arrived at `baudRate` plus the 3.5-character gap (an ASCII request
 * once its last character, the LF, would have arrived), and the answer is written after its own
 * transmission time (ASCII: two characters per byte plus ':' and CR LF). Frames with a bad CRC / LRC,
 * or for unit ids it does not hold, are ignored. Unit id 0 (broadcast) writes reach every unit and
 * are not answered. Fault 'garbage' variant 'bad-crc' sends a wrong LRC in ASCII framing.
 */
export class ModbusRtuServer {
  readonly units = new UnitTable();
  readonly path: string;
  readonly baudRate: number;
  private readonly charMs: number;
  private readonly gapMs: number;
  private port: SerialPort | undefined;
  private rx: Buffer = Buffer.alloc(0);
  /** performance.now() at which the line is quiet again (last byte in or out finished). */
  private lineBusyUntilMs = 0;
  private frameTimer: NodeJS.Timeout | undefined;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly random: () => number;
  /** Frames dropped for a bad CRC or an incomplete frame (for tests and diagnostics). */
  droppedFrames = 0;
  readonly framing: 'rtu' | 'ascii';

  constructor(options: ModbusRtuServerOptions) {
    this.path = options.path;
    this.baudRate = options.baudRate;
    this.charMs = charTimeMs(options.baudRate, options.bitsPerChar);
    this.gapMs = frameGapMs(options.baudRate, options.bitsPerChar);
    this.random = seededRandom(options.seed ?? 1);
    this.framing = options.framing ?? 'rtu';
  }

  addUnit(unitId: number, image: RegisterImage): void {
    this.units.add(unitId, image);
  }

  setFault(unitId: number, fault: Fault): void {
    this.units.setFault(unitId, fault);
  }

  async start(): Promise<void> {
    if (this.port) throw new Error('already started');
    const port = new SerialPort({ path: this.path, baudRate: this.baudRate, autoOpen: false });
    await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
    port.on('data', (chunk: Buffer) => this.onBytes(chunk));
    port.on('error', () => undefined);
    this.port = port;
  }

  async stop(): Promise<void> {
    if (this.frameTimer) clearTimeout(this.frameTimer);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    const port = this.port;
    this.port = undefined;
    if (port?.isOpen) await new Promise<void>((resolve) => port.close(() => resolve()));
  }

  private later(fn: () => void, delayMs: number): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, Math.max(0, delayMs));
    this.timers.add(timer);
  }

  private onBytes(chunk: Buffer): void {
    const nowMs = performance.now();
    // The bytes occupy the line one after another from when it is free.
    this.lineBusyUntilMs = Math.max(nowMs, this.lineBusyUntilMs) + chunk.length * this.charMs;
    this.rx = this.rx.length === 0 ? chunk : Buffer.concat([this.rx, chunk]);
    if (this.framing === 'ascii') {
      // ASCII frames end with CR LF, not with silence; processed once their characters have arrived.
      this.later(() => this.onAsciiBytes(), Math.ceil(this.lineBusyUntilMs - nowMs));
      return;
    }
    if (this.frameTimer) clearTimeout(this.frameTimer);
    this.frameTimer = setTimeout(() => {
      this.frameTimer = undefined;
      this.onFrameEnd();
    }, Math.ceil(this.lineBusyUntilMs + this.gapMs - nowMs));
  }

  /** The line was silent for 3.5 characters: everything received forms one or more frames. */
  private onFrameEnd(): void {
    let rx = this.rx;
    this.rx = Buffer.alloc(0);
    while (rx.length > 0) {
      const pduLength = requestPduLength(rx.subarray(1));
      // Unknown function: the whole rest is taken as one frame.
      const frameLength = pduLength === undefined ? rx.length : 1 + pduLength + 2;
      if (rx.length < frameLength || rx.length < 4) {
        this.droppedFrames++;
        return;
      }
      const frame = rx.subarray(0, frameLength);
      rx = rx.subarray(frameLength);
      if (!crcOk(frame)) {
        // Lost sync: a real device discards the rest until the next silence.
        this.droppedFrames++;
        return;
      }
      this.onFrame(frame[0]!, frame.subarray(1, frame.length - 2));
    }
  }

  /**
   * Modbus ASCII: a frame is ':' + hex digits + CR LF; a ':' starts a new frame (whatever came before
   * it is dropped), the last byte of the decoded frame is its LRC. Bad hex or a bad LRC: dropped.
   */
  private onAsciiBytes(): void {
    for (;;) {
      const end = this.rx.indexOf('\r\n', 0, 'latin1');
      if (end < 0) {
        const start = this.rx.lastIndexOf(0x3a); // ':'
        this.rx = start < 0 ? Buffer.alloc(0) : this.rx.subarray(start);
        return;
      }
      const start = this.rx.subarray(0, end).lastIndexOf(0x3a);
      const hex = start < 0 ? '' : this.rx.subarray(start + 1, end).toString('latin1');
      this.rx = this.rx.subarray(end + 2);
      if (start < 0) continue; // CR LF without a frame start: line noise
      if (hex.length < 6 || hex.length % 2 !== 0 || !/^[0-9A-Fa-f]+$/.test(hex)) {
        this.droppedFrames++;
        continue;
      }
      const bytes = Buffer.from(hex, 'hex');
      if (lrc(bytes.subarray(0, bytes.length - 1)) !== bytes[bytes.length - 1]) {
        this.droppedFrames++;
        continue;
      }
      this.onFrame(bytes[0]!, bytes.subarray(1, bytes.length - 1));
    }
  }

  private onFrame(unitId: number, pdu: Buffer): void {
    if (unitId === 0) {
      if (pdu[0] === 6 || pdu[0] === 16) for (const unit of this.units.all()) handlePdu(unit.image, pdu);
      return;
    }
    const unit = this.units.get(unitId);
    if (!unit) return;
    const fault = unit.fault;
    switch (fault.kind) {
      case 'none':
        this.transmit(this.frame(unitId, handlePdu(unit.image, pdu)));
        return;
      case 'no-answer':
      case 'drop-connection':
        return;
      case 'slow':
        this.transmit(this.frame(unitId, handlePdu(unit.image, pdu)), fault.delayMs);
        return;
      case 'exception':
        this.transmit(this.frame(unitId, exceptionPdu(pdu[0] ?? 0, fault.code)));
        return;
      case 'garbage': {
        if (fault.variant === 'bad-crc') {
          const good = this.frame(unitId, handlePdu(unit.image, pdu));
          // RTU: a wrong CRC byte; ASCII: a wrong LRC digit (the character before CR LF).
          const at = this.framing === 'ascii' ? good.length - 3 : good.length - 1;
          good[at] = this.framing === 'ascii' ? (good[at] === 0x30 ? 0x31 : 0x30) : good[at]! ^ 0x5a;
          this.transmit(good);
        } else if (fault.variant === 'bad-length') {
          const good = this.frame(unitId, handlePdu(unit.image, pdu));
          this.transmit(good.subarray(0, Math.max(1, good.length - 3)));
        } else {
          const bytes = Buffer.alloc(3 + Math.floor(this.random() * 22));
          for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(this.random() * 256);
          this.transmit(bytes);
        }
        return;
      }
    }
  }

  private frame(unitId: number, pdu: Buffer): Buffer {
    const body = Buffer.concat([Buffer.from([unitId]), pdu]);
    if (this.framing === 'ascii') {
      const hex = Buffer.concat([body, Buffer.from([lrc(body)])]).toString('hex').toUpperCase();
      return Buffer.from(`:${hex}\r\n`, 'latin1');
    }
    return withCrc(body);
  }

  /** Writes `bytes` once they would have finished on the wire (after `extraDelayMs` of device latency). */
  private transmit(bytes: Buffer, extraDelayMs = 0): void {
    const nowMs = performance.now();
    const startMs = Math.max(nowMs + extraDelayMs, this.lineBusyUntilMs);
    this.lineBusyUntilMs = startMs + bytes.length * this.charMs;
    this.later(() => this.port?.write(bytes), Math.ceil(this.lineBusyUntilMs - nowMs));
  }
}
