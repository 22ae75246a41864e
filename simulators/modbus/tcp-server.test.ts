import net from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RegisterImage } from './image.js';
import { ModbusTcpServer } from './tcp-server.js';
import { closeClient, failure, tcpClient, type Client } from './test-client.js';

function testImage(first: number): RegisterImage {
  const image = new RegisterImage();
  image.defineBlock(100, 10);
  image.set(100, Array.from({ length: 10 }, (_, i) => first + i));
  image.setWritable(105, 5);
  return image;
}

function rawRequest(transactionId: number, unitId: number, pdu: number[]): Buffer {
  const out = Buffer.alloc(7 + pdu.length);
  out.writeUInt16BE(transactionId, 0);
  out.writeUInt16BE(0, 2);
  out.writeUInt16BE(pdu.length + 1, 4);
  out[6] = unitId;
  Buffer.from(pdu).copy(out, 7);
  return out;
}

/** Sends raw bytes in the given pieces and collects `expectedBytes` of answer. */
async function rawExchange(port: number, pieces: Buffer[], expectedBytes: number): Promise<Buffer> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no answer')), 1000);
    socket.on('data', (d: Buffer) => {
      chunks.push(d);
      const all = Buffer.concat(chunks);
      if (all.length >= expectedBytes) {
        clearTimeout(timer);
        resolve(all);
      }
    });
  });
  for (const piece of pieces) {
    socket.write(piece);
    await new Promise((r) => setImmediate(r));
  }
  const answer = await done;
  socket.destroy();
  return answer;
}

describe('ModbusTcpServer', () => {
  let server: ModbusTcpServer;
  let clients: Client[] = [];
  const image1 = testImage(1000);
  const image2 = testImage(2000);

  beforeEach(async () => {
    server = new ModbusTcpServer();
    server.addUnit(1, image1);
    server.addUnit(2, image2);
    await server.start();
    clients = [];
  });
  afterEach(async () => {
    for (const c of clients) await closeClient(c);
    await server.stop();
  });
  async function client(unitId: number, timeoutMs = 300): Promise<Client> {
    const c = await tcpClient('127.0.0.1', server.port, unitId, timeoutMs);
    clients.push(c);
    return c;
  }

  it('listens on a free port and serves several unit ids (FC3, FC4)', async () => {
    expect(server.port).toBeGreaterThan(0);
    const c1 = await client(1);
    expect((await c1.readHoldingRegisters(100, 3)).data).toEqual([1000, 1001, 1002]);
    c1.setID(2);
    expect((await c1.readInputRegisters(108, 2)).data).toEqual([2008, 2009]);
  });

  it('writes with FC6 and FC16 and refuses read-only and undefined registers', async () => {
    const c = await client(1);
    await c.writeRegister(105, 7);
    await c.writeRegisters(106, [8, 9]);
    expect(image1.read(105, 3)).toEqual([7, 8, 9]);
    expect((await failure(c.writeRegister(104, 1))).modbusCode).toBe(2); // read-only
    expect((await failure(c.writeRegisters(108, [1, 2, 3]))).modbusCode).toBe(2); // runs past the block
    expect(image1.read(108, 2)).toEqual([1008, 1009]);
  });

  it('answers exceptions 1, 2, 3 and 0x0B for an absent unit', async () => {
    const c = await client(1);
    expect((await failure(c.readHoldingRegisters(99, 2))).modbusCode).toBe(2);
    expect((await failure(c.readHoldingRegisters(109, 2))).modbusCode).toBe(2);
    expect((await failure(c.readHoldingRegisters(100, 126))).modbusCode).toBe(3);
    expect((await failure(c.readCoils(100, 1))).modbusCode).toBe(1);
    c.setID(9);
    expect((await failure(c.readHoldingRegisters(100, 1))).modbusCode).toBe(0x0b);
  });

  it('answers requests pipelined in one chunk and split over chunks, echoing transaction ids', async () => {
    const a = rawRequest(0x1234, 1, [3, 0, 100, 0, 1]);
    const b = rawRequest(0xbeef, 2, [3, 0, 101, 0, 2]);
    const pipelined = await rawExchange(server.port, [Buffer.concat([a, b])], 11 + 13);
    expect(pipelined.readUInt16BE(0)).toBe(0x1234);
    expect(pipelined.readUInt16BE(9)).toBe(1000);
    expect(pipelined.readUInt16BE(11)).toBe(0xbeef);
    expect(pipelined[11 + 6]).toBe(2);
    expect([pipelined.readUInt16BE(11 + 9), pipelined.readUInt16BE(11 + 11)]).toEqual([2001, 2002]);
    const whole = Buffer.concat([a, b]);
    const split = await rawExchange(server.port, [whole.subarray(0, 3), whole.subarray(3, 15), whole.subarray(15)], 24);
    expect(split).toEqual(pipelined);
  });

  describe('faults', () => {
    it('no-answer: the client times out, other units still answer', async () => {
      server.setFault(1, { kind: 'no-answer' });
      const c = await client(1, 150);
      expect((await failure(c.readHoldingRegisters(100, 1))).errno).toBe('ETIMEDOUT');
      c.setID(2);
      expect((await c.readHoldingRegisters(100, 1)).data).toEqual([2000]);
      server.setFault(1, { kind: 'none' });
      c.setID(1);
      expect((await c.readHoldingRegisters(100, 1)).data).toEqual([1000]);
    });

    it('slow: the answer comes after delayMs', async () => {
      server.setFault(1, { kind: 'slow', delayMs: 120 });
      const c = await client(1, 1000);
      const t0 = performance.now();
      expect((await c.readHoldingRegisters(100, 1)).data).toEqual([1000]);
      expect(performance.now() - t0).toBeGreaterThanOrEqual(115);
      c.setTimeout(50);
      expect((await failure(c.readHoldingRegisters(100, 1))).errno).toBe('ETIMEDOUT');
    });

    it('exception: every request gets the given code', async () => {
      server.setFault(2, { kind: 'exception', code: 6 });
      const c = await client(2);
      expect((await failure(c.readHoldingRegisters(100, 1))).modbusCode).toBe(6);
      expect((await failure(c.writeRegister(105, 1))).modbusCode).toBe(6);
      expect(image2.read(105, 1)).toEqual([2005]);
    });

    it('drop-connection: the socket is destroyed on the request', async () => {
      server.setFault(1, { kind: 'drop-connection' });
      const c = await client(1);
      await failure(c.readHoldingRegisters(100, 1));
      await new Promise((r) => setTimeout(r, 20));
      expect(c.isOpen).toBe(false);
      expect(server.connectionCount).toBe(0);
    });

    it('garbage: random bytes or a wrong MBAP length never pass as an answer', async () => {
      server.setFault(1, { kind: 'garbage' });
      const c = await client(1, 150);
      await failure(c.readHoldingRegisters(100, 2));
      server.setFault(1, { kind: 'garbage', variant: 'bad-length' });
      const c2 = await client(1, 150);
      await failure(c2.readHoldingRegisters(100, 2));
      const raw = await rawExchange(server.port, [rawRequest(7, 1, [3, 0, 100, 0, 2])], 13);
      expect(raw.readUInt16BE(4)).not.toBe(raw.length - 6);
    });
  });
});
