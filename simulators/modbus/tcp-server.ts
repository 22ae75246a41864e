import net from 'node:net';
import type { RegisterImage } from './image.js';
import { ExceptionCode } from './image.js';
import { exceptionPdu, handlePdu } from './pdu.js';
import { seededRandom } from '../rng.js';
import { UnitTable, type Fault } from './units.js';

export interface ModbusTcpServerOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 0: a free port, readable from `port` after start(). */
  port?: number;
  /** Seed of the random bytes the 'garbage' fault sends. */
  seed?: number;
}

const MBAP_HEADER_BYTES = 7;

/**
 * A Modbus TCP server (MBAP framing) holding one or more unit ids, as a gateway does. Requests
 * pipelined in one chunk or split over chunks are all answered, each with its transaction id.
 * A unit id the server does not hold is answered with exception 0x0B (gateway target failed to respond).
 * A frame with a protocol id other than 0 or an impossible length closes the connection.
 */
export class ModbusTcpServer {
  readonly units = new UnitTable();
  readonly host: string;
  private readonly requestedPort: number;
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  private readonly pendingTimers = new Set<NodeJS.Timeout>();
  private readonly random: () => number;
  private boundPort = 0;

  constructor(options: ModbusTcpServerOptions = {}) {
    this.host = options.host ?? '127.0.0.1';
    this.requestedPort = options.port ?? 0;
    this.random = seededRandom(options.seed ?? 1);
  }

  /** The listening port (after start()). */
  get port(): number {
    return this.boundPort;
  }

  /** Open client connections. */
  get connectionCount(): number {
    return this.sockets.size;
  }

  addUnit(unitId: number, image: RegisterImage): void {
    this.units.add(unitId, image);
  }

  setFault(unitId: number, fault: Fault): void {
    this.units.setFault(unitId, fault);
  }

  async start(): Promise<void> {
    if (this.server) throw new Error('already started');
    const server = net.createServer((socket) => this.onConnection(socket));
    this.server = server;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.requestedPort, this.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    const address = server.address();
    if (address && typeof address === 'object') this.boundPort = address.port;
  }

  async stop(): Promise<void> {
    for (const t of this.pendingTimers) clearTimeout(t);
    this.pendingTimers.clear();
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    const server = this.server;
    this.server = undefined;
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private onConnection(socket: net.Socket): void {
    this.sockets.add(socket);
    socket.setNoDelay(true);
    let pending: Buffer = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => {
      pending = pending.length === 0 ? chunk : Buffer.concat([pending, chunk]);
      while (pending.length >= MBAP_HEADER_BYTES) {
        const protocolId = pending.readUInt16BE(2);
        const length = pending.readUInt16BE(4);
        if (protocolId !== 0 || length < 2 || length > 254) {
          socket.destroy();
          return;
        }
        if (pending.length < 6 + length) break;
        const frame = pending.subarray(0, 6 + length);
        pending = pending.subarray(6 + length);
        this.onFrame(socket, frame);
        if (socket.destroyed) return;
      }
    });
    socket.on('error', () => socket.destroy());
    socket.on('close', () => this.sockets.delete(socket));
  }

  private onFrame(socket: net.Socket, frame: Buffer): void {
    const transactionId = frame.readUInt16BE(0);
    const unitId = frame[6]!;
    const pdu = frame.subarray(MBAP_HEADER_BYTES);
    const unit = this.units.get(unitId);
    if (!unit) {
      this.send(socket, transactionId, unitId, exceptionPdu(pdu[0] ?? 0, ExceptionCode.GatewayTargetFailedToRespond));
      return;
    }
    const fault = unit.fault;
    switch (fault.kind) {
      case 'none':
        this.send(socket, transactionId, unitId, handlePdu(unit.image, pdu));
        return;
      case 'no-answer':
        return;
      case 'slow': {
        const response = handlePdu(unit.image, pdu);
        const timer = setTimeout(() => {
          this.pendingTimers.delete(timer);
          this.send(socket, transactionId, unitId, response);
        }, fault.delayMs);
        this.pendingTimers.add(timer);
        return;
      }
      case 'exception':
        this.send(socket, transactionId, unitId, exceptionPdu(pdu[0] ?? 0, fault.code));
        return;
      case 'drop-connection':
        socket.destroy();
        return;
      case 'garbage': {
        if (fault.variant === 'bad-length') {
          const response = handlePdu(unit.image, pdu);
          this.send(socket, transactionId, unitId, response, response.length + 1 + 3);
        } else {
          const bytes = Buffer.alloc(3 + Math.floor(this.random() * 22));
          for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(this.random() * 256);
          if (socket.writable) socket.write(bytes);
        }
        return;
      }
    }
  }

  private send(socket: net.Socket, transactionId: number, unitId: number, pdu: Buffer, mbapLength?: number): void {
    if (!socket.writable) return;
    const out = Buffer.alloc(MBAP_HEADER_BYTES + pdu.length);
    out.writeUInt16BE(transactionId, 0);
    out.writeUInt16BE(0, 2);
    out.writeUInt16BE(mbapLength ?? pdu.length + 1, 4);
    out[6] = unitId;
    pdu.copy(out, MBAP_HEADER_BYTES);
    socket.write(out);
  }
}
