/**
 * Modbus ASCII framing of the serial server, over a real socat pty pair: frames checked byte for byte
 * against hand-computed ones, and read through modbus-serial's own ASCII client.
 */
import { SerialPort } from 'serialport';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegisterImage } from './image.js';
import { PtyPair, socatAvailable } from './pty.js';
import { charTimeMs, lrc, ModbusRtuServer } from './rtu-server.js';
import { asciiClient, closeClient, failure, type Client } from './test-client.js';

const hasSocat = socatAvailable();
// Under CI a missing Debian package is a failure, not a skip (DESIGN.md: Real parts).
if (!hasSocat && process.env['CI'] === 'true') throw new Error('socat is not installed (apt-get install -y socat); CI must run the ASCII tests');

describe('lrc', () => {
  it('is the two’s complement of the byte sum', () => {
    expect(lrc(Buffer.from([0x01, 0x03, 0x00, 0x14, 0x00, 0x01]))).toBe(0xe7); // sum 0x19
    expect(lrc(Buffer.from([0x11, 0x03, 0x00, 0x6b, 0x00, 0x03]))).toBe(0x7e); // the spec's example
    expect(lrc(Buffer.from([]))).toBe(0);
  });
});

/** Opens the agent's side of the line raw and exchanges one frame (or times out with what came). */
async function rawExchange(path: string, frame: string, waitMs = 300): Promise<string> {
  const port = new SerialPort({ path, baudRate: 38400, autoOpen: false, lock: false });
  await new Promise<void>((resolve, reject) => port.open((e) => (e ? reject(e) : resolve())));
  const chunks: Buffer[] = [];
  port.on('data', (d: Buffer) => chunks.push(d));
  port.write(Buffer.from(frame, 'latin1'));
  const deadline = Date.now() + waitMs;
  while (Date.now() < deadline && !Buffer.concat(chunks).includes('\r\n')) await new Promise((r) => setTimeout(r, 5));
  await new Promise<void>((resolve) => port.close(() => resolve()));
  return Buffer.concat(chunks).toString('latin1');
}

describe.skipIf(!hasSocat)('ModbusRtuServer with ASCII framing over a socat pty pair', () => {
  const baudRate = 38400;
  let pty: PtyPair;
  let server: ModbusRtuServer;
  let client: Client;
  const image = new RegisterImage();
  image.defineBlock(0x0010, 50, 'holding');
  image.set(0x0014, [0x010a]);
  image.setWritable(0x0014, 2);

  beforeAll(async () => {
    pty = await PtyPair.start();
    server = new ModbusRtuServer({ path: pty.pathA, baudRate, framing: 'ascii' });
    server.addUnit(1, image);
    await server.start();
  });
  afterAll(async () => {
    await closeClient(client);
    await server.stop();
    await pty.stop();
  });

  it('answers a hand-made frame with the frame the spec gives: ":" + uppercase hex + LRC + CR LF', async () => {
    // 01 03 0014 0001, LRC E7 → 01 03 02 010A, LRC = −(1+3+2+1+0x0A) = 0xEF
    expect(await rawExchange(pty.pathB, ':010300140001E7\r\n')).toBe(':010302010AEF\r\n');
    // Lower-case hex is accepted; an exception is framed the same way: 01 83 02, LRC 0x7A.
    expect(await rawExchange(pty.pathB, ':010300000001fb\r\n')).toBe(':0183027A\r\n');
  });

  it('drops a frame with a bad LRC, bad hex or noise before the colon', async () => {
    const dropped = server.droppedFrames;
    expect(await rawExchange(pty.pathB, ':010300140001E8\r\n', 150)).toBe('');
    expect(await rawExchange(pty.pathB, ':01030014000ZE7\r\n', 150)).toBe('');
    expect(server.droppedFrames).toBe(dropped + 2);
    // Line noise, then a good frame: only the frame after the last ':' counts.
    expect(await rawExchange(pty.pathB, '\x00\xff:0103:010300140001E7\r\n')).toBe(':010302010AEF\r\n');
  });

  it('reads and writes through modbus-serial’s ASCII client; faults apply', async () => {
    client = await asciiClient(pty.pathB, baudRate, 1, 300);
    expect((await client.readHoldingRegisters(0x0014, 1)).data).toEqual([0x010a]);
    await client.writeRegisters(0x0014, [100, 1000]);
    expect(image.read(0x0014, 2)).toEqual([100, 1000]);
    expect((await failure(client.readHoldingRegisters(0x0100, 1))).modbusCode).toBe(2);
    server.setFault(1, { kind: 'exception', code: 4 });
    expect((await failure(client.readHoldingRegisters(0x0014, 1))).modbusCode).toBe(4);
    // 'bad-crc' in ASCII: a frame whose LRC is wrong; the client throws it away and times out.
    server.setFault(1, { kind: 'garbage', variant: 'bad-crc' });
    expect((await failure(client.readHoldingRegisters(0x0014, 1))).message).toMatch(/timed out/i);
    server.setFault(1, { kind: 'none' });
    expect((await client.readHoldingRegisters(0x0014, 1)).data).toEqual([100]);
  });

  it('the bad-crc fault frames a wrong LRC on the wire', async () => {
    await closeClient(client);
    server.setFault(1, { kind: 'garbage', variant: 'bad-crc' });
    const answer = await rawExchange(pty.pathB, ':010300140001E7\r\n');
    server.setFault(1, { kind: 'none' });
    expect(answer).toMatch(/^:010302[0-9A-F]{4}[0-9A-F]{2}\r\n$/);
    const bytes = Buffer.from(answer.slice(1, -2), 'hex');
    expect(lrc(bytes.subarray(0, -1))).not.toBe(bytes.at(-1));
  });
});

describe.skipIf(!hasSocat)('ASCII wire time', () => {
  it('two characters per byte: a 40-register read at 9600 baud takes at least its wire time', async () => {
    const baudRate = 9600;
    const pty = await PtyPair.start();
    const image = new RegisterImage();
    image.defineBlock(0, 40, 'holding');
    const server = new ModbusRtuServer({ path: pty.pathA, baudRate, framing: 'ascii' });
    server.addUnit(1, image);
    await server.start();
    const client = await asciiClient(pty.pathB, baudRate, 1, 2000);
    try {
      // request ':' + 2×(1+1+2+2+1) + CR LF = 17 chars; answer ':' + 2×(1+1+1+80+1) + CR LF = 171
      const wireMs = (17 + 171) * charTimeMs(baudRate);
      expect(wireMs).toBeCloseTo((188 * 11 * 1000) / 9600, 6); // ≈ 215 ms (an RTU frame: ≈ 105 ms)
      const t0 = performance.now();
      expect((await client.readHoldingRegisters(0, 40)).data).toHaveLength(40);
      const elapsedMs = performance.now() - t0;
      expect(elapsedMs).toBeGreaterThanOrEqual(wireMs);
      expect(elapsedMs).toBeLessThan(wireMs + 250);
    } finally {
      await closeClient(client);
      await server.stop();
      await pty.stop();
    }
  });
});
