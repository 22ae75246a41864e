/**
 * The bus against modbus-serial's own ServerTCP on loopback: normal behaviour, serialization,
 * priorities, coalescing, stop.
 */
import net from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import modbusSerial, { ServerTCP } from 'modbus-serial';
import { systemClock } from '../clock.js';
import { DisconnectedError, ModbusExceptionError } from '../errors.js';
import { silentLog } from '../log.js';
import { createModbusBus } from './bus.js';
import type { ModbusBus } from './types.js';

type Cb<T> = (err: Error | null, value: T) => void;
type Done = (err: Error | null) => void;

async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A device image per unit: register `a` of unit `u` holds `u * 1000 + a` until written. */
class Devices {
  readonly written = new Map<string, number>();
  /** Requests being served right now, and the most at any moment. */
  active = 0;
  maxActive = 0;
  /** Every request in the order the server saw it. */
  readonly log: string[] = [];
  delayMs = 0;
  private waiters: { n: number; resolve: () => void }[] = [];

  /** Resolves the moment the server has seen `n` requests (before it answers the n-th). */
  requests(n: number): Promise<void> {
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  reset(): void {
    this.written.clear();
    this.log.length = 0;
    this.delayMs = 0;
    this.maxActive = 0;
    this.waiters = [];
  }

  value(unitId: number, address: number): number {
    return this.written.get(`${unitId}:${address}`) ?? (unitId * 1000 + address) & 0xffff;
  }

  private serve<T>(what: string, work: () => T, cb: Cb<T>): void {
    this.log.push(what);
    for (const w of this.waiters) if (w.n === this.log.length) w.resolve();
    this.active++;
    this.maxActive = Math.max(this.maxActive, this.active);
    setTimeout(() => {
      this.active--;
      try {
        cb(null, work());
      } catch (err) {
        cb(err as Error, undefined as T);
      }
    }, this.delayMs);
  }

  vector() {
    return {
      getHoldingRegister: (addr: number, unitID: number, cb: Cb<number>) => this.serve(`r${unitID}:${addr}`, () => this.value(unitID, addr), cb),
      getMultipleHoldingRegisters: (addr: number, length: number, unitID: number, cb: Cb<number[]>) =>
        this.serve(`r${unitID}:${addr}`, () => Array.from({ length }, (_, i) => this.value(unitID, addr + i)), cb),
      getInputRegister: (addr: number, unitID: number, cb: Cb<number>) => this.serve(`i${unitID}:${addr}`, () => (addr + 7) & 0xffff, cb),
      getMultipleInputRegisters: (addr: number, length: number, unitID: number, cb: Cb<number[]>) =>
        this.serve(`i${unitID}:${addr}`, () => Array.from({ length }, (_, i) => (addr + i + 7) & 0xffff), cb),
      setRegister: (addr: number, value: number, unitID: number, cb: Done) =>
        this.serve(`w${unitID}:${addr}`, () => {
          if (addr >= 60000) throw Object.assign(new Error('read-only'), { modbusErrorCode: 3 });
          this.written.set(`${unitID}:${addr}`, value);
        }, cb),
      setRegisterArray: (addr: number, values: number[], unitID: number, cb: Done) =>
        this.serve(`w${unitID}:${addr}`, () => {
          if (addr >= 60000) throw Object.assign(new Error('read-only'), { modbusErrorCode: 3 });
          values.forEach((v, i) => this.written.set(`${unitID}:${addr + i}`, v));
        }, cb),
    };
  }
}

let port: number;
let devices: Devices;
let server: InstanceType<typeof ServerTCP>;
let bus: ModbusBus;

beforeAll(async () => {
  port = await freePort();
  devices = new Devices();
  server = new ServerTCP(devices.vector(), { host: '127.0.0.1', port, unitID: 255 });
  await new Promise<void>((resolve) => server.on('initialized', () => resolve()));
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

afterEach(async () => {
  await bus?.stop();
  devices.reset();
});

function newBus(timeoutMs = 1000): ModbusBus {
  bus = createModbusBus({ connection: { tcp: { host: '127.0.0.1', port } }, clock: systemClock, log: silentLog, timeoutMs });
  return bus;
}

describe('ModbusBus over TCP (modbus-serial ServerTCP)', () => {
  it('reads holding and input registers and writes with FC16 and FC6', async () => {
    const b = newBus();
    await b.start();
    expect(b.connected).toBe(true);
    const u = b.unit(3);
    expect(u.label).toBe(`tcp 127.0.0.1:${port} unit 3`);
    expect(Array.from(await u.readRegisters('holding', 100, 3))).toEqual([3100, 3101, 3102]);
    expect(Array.from(await u.readRegisters('input', 10, 2))).toEqual([17, 18]);
    await u.writeRegisters(200, [1, 2, 65535]);
    expect(Array.from(await u.readRegisters('holding', 200, 3))).toEqual([1, 2, 65535]);
    const fc6 = b.unit(4, { useFc6ForSingleRegister: true });
    await fc6.writeRegisters(5, [42]);
    expect(Array.from(await fc6.readRegisters('holding', 5, 1))).toEqual([42]);
    expect(b.stats).toMatchObject({ transactions: 6, timeouts: 0, exceptions: 0 });
    expect(u.stats.transactions).toBe(4);
  });

  it('surfaces an exception answer as ModbusExceptionError with its codes', async () => {
    const b = newBus();
    await b.start();
    const error = await b.unit(1).writeRegisters(60001, [1]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ModbusExceptionError);
    expect(error).toMatchObject({ functionCode: 16, exceptionCode: 3, retryable: false });
    expect(b.stats.exceptions).toBe(1);
    // a permanent answer is no sign of a dead device
    expect(b.unit(1).stats.consecutiveFailures).toBe(0);
  });

  it('keeps exactly one request in flight with many concurrent callers across units', async () => {
    devices.delayMs = 1;
    // Control: modbus-serial alone pipelines requests on TCP, and the server sees the overlap.
    const bare = new modbusSerial.default();
    await bare.connectTCP('127.0.0.1', { port });
    bare.setID(1);
    await Promise.all(Array.from({ length: 10 }, (_, i) => bare.readHoldingRegisters(i, 2)));
    await new Promise<void>((resolve) => bare.close(() => resolve()));
    expect(devices.maxActive).toBeGreaterThan(1);
    devices.maxActive = 0;
    devices.log.length = 0;

    const b = newBus();
    await b.start();
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 25; i++) {
      for (const unitId of [1, 2, 3, 4]) {
        const u = b.unit(unitId);
        const priority = (['poll', 'interactive', 'write'] as const)[(i + unitId) % 3]!;
        if (priority === 'write') {
          calls.push(u.writeRegisters(500 + i, [i]));
        } else {
          calls.push(
            u.readRegisters('holding', i, 2, { priority }).then((v) => {
              expect(Array.from(v)).toEqual([unitId * 1000 + i, unitId * 1000 + i + 1]);
            }),
          );
        }
      }
    }
    await Promise.all(calls);
    expect(devices.log.length).toBe(100);
    expect(devices.maxActive).toBe(1);
    expect(b.stats.transactions).toBe(100);
  });

  it('runs a write before queued polls: it waits only for the transaction on the wire', async () => {
    devices.delayMs = 5;
    const b = newBus();
    await b.start();
    const u = b.unit(1);
    const onWire = devices.requests(1);
    const polls = Array.from({ length: 6 }, (_, i) => u.readRegisters('holding', i, 1));
    await onWire; // poll 0 is on the wire (the server holds it for 5 ms)
    const interactive = u.readRegisters('holding', 99, 1, { priority: 'interactive' });
    const write = u.writeRegisters(300, [7]);
    await Promise.all([...polls, interactive, write]);
    expect(devices.log).toEqual(['r1:0', 'w1:300', 'r1:99', 'r1:1', 'r1:2', 'r1:3', 'r1:4', 'r1:5']);
  });

  it('reads adjacent ranges in the fewest transactions', async () => {
    const b = newBus();
    await b.start();
    const u = b.unit(2);
    const ranges = Array.from({ length: 10 }, (_, i) => ({ address: 1000 + 30 * i, count: 30 })); // 300 registers
    const before = b.stats.transactions;
    const values = await u.readRanges('holding', ranges);
    expect(b.stats.transactions - before).toBe(3);
    values.forEach((v, i) => {
      expect(v.length).toBe(30);
      expect(v[0]).toBe((2000 + 1000 + 30 * i) & 0xffff);
    });
  });

  it('abandons a queued request when its signal aborts, without sending it', async () => {
    devices.delayMs = 20;
    const b = newBus();
    await b.start();
    const u = b.unit(1);
    const first = u.readRegisters('holding', 1, 1);
    const controller = new AbortController();
    const second = u.readRegisters('holding', 2, 1, { signal: controller.signal });
    controller.abort(new Error('not needed any more'));
    await expect(second).rejects.toThrow('not needed any more');
    await first;
    expect(devices.log).toEqual(['r1:1']);
  });

  it('stop() rejects queued and in-flight requests with DisconnectedError and is idempotent', async () => {
    const unstarted = newBus();
    await expect(unstarted.unit(1).readRegisters('holding', 0, 1)).rejects.toBeInstanceOf(DisconnectedError);
    devices.delayMs = 50;
    const b = newBus();
    await b.start();
    const u = b.unit(1);
    const onWire = devices.requests(1);
    const pending = Promise.allSettled([u.readRegisters('holding', 0, 1), u.readRegisters('holding', 1, 1), u.writeRegisters(5, [1])]);
    await onWire;
    await Promise.all([b.stop(), b.stop()]);
    const results = await pending;
    for (const r of results) {
      expect(r.status).toBe('rejected');
      expect((r as PromiseRejectedResult).reason).toBeInstanceOf(DisconnectedError);
    }
    expect(b.connected).toBe(false);
    await expect(u.readRegisters('holding', 0, 1)).rejects.toBeInstanceOf(DisconnectedError);
    await b.stop();
  });

  it('stops when the signal given to start() aborts', async () => {
    const b = newBus();
    const controller = new AbortController();
    await b.start(controller.signal);
    expect(b.connected).toBe(true);
    controller.abort();
    expect(b.connected).toBe(false);
    await expect(b.unit(1).readRegisters('holding', 0, 1)).rejects.toBeInstanceOf(DisconnectedError);
    await b.start(); // and can be started again
    expect(Array.from(await b.unit(1).readRegisters('holding', 0, 1))).toEqual([1000]);
  });

  it('rejects requests it cannot send before touching the bus', async () => {
    const b = newBus();
    await b.start();
    const u = b.unit(1);
    await expect(u.readRegisters('holding', 0, 126)).rejects.toThrow(RangeError);
    await expect(u.readRegisters('holding', 65535, 2)).rejects.toThrow(RangeError);
    await expect(u.writeRegisters(0, [70000])).rejects.toThrow(RangeError);
    await expect(u.readRanges('holding', [{ address: 0, count: 0 }])).rejects.toThrow(RangeError);
    expect(() => b.unit(256)).toThrow(RangeError);
    expect(b.stats.transactions).toBe(0);
  });
});
