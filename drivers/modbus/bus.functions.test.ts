/**
 * The function codes device profiles need beyond FC3/FC4/FC16, against a scriptable TCP server on
 * loopback that frames every byte itself: coils (FC1 read, FC5 write), the write function code chosen
 * per call (FC6 or FC16: some devices take only one of them), and a unit's largest read
 * (`maxReadRegisters`, e.g. an Eastron meter's 40) honoured by readRanges.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../clock.js';
import { BadDataError, ModbusExceptionError } from '../errors.js';
import { silentLog } from '../log.js';
import { createModbusBus } from './bus.js';
import { answerPdu, coilAnswerPdu, exceptionPdu, startFaultServer, type FaultServer, type ModbusRequest, type TcpReply } from './test-support.js';
import type { ModbusBus } from './types.js';

let server: FaultServer | undefined;
let bus: ModbusBus | undefined;

afterEach(async () => {
  await bus?.stop();
  await server?.close();
  bus = undefined;
  server = undefined;
});

/** A device with 16 coils (0..15 at 100..115), registers that read as their address, FC6/FC16 as told. */
function device(options: { refuse?: 6 | 16; maxRead?: number } = {}) {
  const coils = new Map<number, boolean>([[100, true], [102, true], [109, true]]);
  const registers = new Map<number, number>();
  const handler = (req: ModbusRequest, reply: TcpReply) => {
    switch (req.functionCode) {
      case 1: {
        if (req.address < 100 || req.address + req.count > 116) return reply.pdu(exceptionPdu(req, 2));
        return reply.pdu(coilAnswerPdu(req, Array.from({ length: req.count }, (_, i) => coils.get(req.address + i) ?? false)));
      }
      case 5:
        if (req.address < 100 || req.address > 115) return reply.pdu(exceptionPdu(req, 2));
        if (req.values[0] !== 0xff00 && req.values[0] !== 0) return reply.pdu(exceptionPdu(req, 3));
        coils.set(req.address, req.values[0] === 0xff00);
        return reply.pdu(answerPdu(req));
      case 3:
      case 4:
        if (options.maxRead !== undefined && req.count > options.maxRead) return reply.pdu(exceptionPdu(req, 3));
        return reply.pdu(answerPdu(req, Array.from({ length: req.count }, (_, i) => registers.get(req.address + i) ?? req.address + i)));
      case 6:
      case 16:
        if (options.refuse === req.functionCode) return reply.pdu(exceptionPdu(req, 1));
        req.values.forEach((v, i) => registers.set(req.address + i, v));
        return reply.pdu(answerPdu(req));
      default:
        return reply.pdu(exceptionPdu(req, 1));
    }
  };
  return { coils, registers, handler };
}

async function start(options: Parameters<typeof device>[0] = {}) {
  const d = device(options);
  server = await startFaultServer(d.handler);
  bus = createModbusBus({ connection: { tcp: { host: '127.0.0.1', port: server.port } }, clock: systemClock, log: silentLog, timeoutMs: 300 });
  await bus.start();
  return { ...d, server, bus };
}

describe('coils (FC1 read, FC5 write)', () => {
  it('reads coils as booleans, exactly as many as asked, in one transaction', async () => {
    const { bus, server } = await start();
    const unit = bus.unit(1);
    expect(await unit.readCoils(100, 3)).toEqual([true, false, true]);
    // Across a byte boundary of the packed answer.
    expect(await unit.readCoils(102, 9)).toEqual([true, false, false, false, false, false, false, true, false]);
    expect(server.requests.map((r) => `${r.functionCode} ${r.address}+${r.count}`)).toEqual(['1 100+3', '1 102+9']);
  });

  it('writes one coil with FC5 (0xFF00 on, 0x0000 off) and the device keeps it', async () => {
    const { bus, server, coils } = await start();
    const unit = bus.unit(1);
    await unit.writeCoil(101, true);
    await unit.writeCoil(100, false);
    expect(coils.get(101)).toBe(true);
    expect(coils.get(100)).toBe(false);
    expect(server.requests.map((r) => [r.functionCode, r.address, r.values[0]])).toEqual([
      [5, 101, 0xff00],
      [5, 100, 0],
    ]);
    expect(await unit.readCoils(100, 2)).toEqual([false, true]);
  });

  it('an exception to a coil request is a ModbusExceptionError with FC1 / FC5', async () => {
    const { bus } = await start();
    const unit = bus.unit(1);
    await expect(unit.readCoils(90, 2)).rejects.toMatchObject({ functionCode: 1, exceptionCode: 2 });
    await expect(unit.writeCoil(5, true)).rejects.toMatchObject({ functionCode: 5, exceptionCode: 2 });
    await expect(unit.writeCoil(5, true)).rejects.toBeInstanceOf(ModbusExceptionError);
  });

  it('a coil write answer that does not echo the request is bad data, not success', async () => {
    const { bus, server } = await start();
    server.setHandler((req, reply) => {
      const wrong = answerPdu(req);
      wrong.writeUInt16BE(0, 3); // says "off" to a write of "on"
      reply.pdu(wrong);
    });
    await expect(bus.unit(1).writeCoil(100, true)).rejects.toBeInstanceOf(BadDataError);
  });

  it('a coil write pre-empts queued polls like a register write', async () => {
    const { bus, server } = await start();
    const held: Array<() => void> = [];
    const d = device();
    server.setHandler((req, reply) => {
      if (held.length === 0 && req.functionCode === 3) held.push(() => d.handler(req, reply));
      else d.handler(req, reply);
    });
    const unit = bus.unit(1);
    const first = unit.readRegisters('holding', 0, 1);
    while (server.requests.length === 0) await new Promise((r) => setTimeout(r, 2));
    const polls = [unit.readRegisters('holding', 1, 1), unit.readCoils(100, 1)];
    const write = unit.writeCoil(103, true);
    held[0]!();
    await Promise.all([first, ...polls, write]);
    expect(server.requests.map((r) => r.functionCode)).toEqual([3, 5, 3, 1]);
  });

  it('rejects impossible coil requests before touching the bus', async () => {
    const { bus, server } = await start();
    const unit = bus.unit(1);
    await expect(unit.readCoils(0, 0)).rejects.toThrow(RangeError);
    await expect(unit.readCoils(0, 2001)).rejects.toThrow(RangeError);
    await expect(unit.readCoils(65535, 2)).rejects.toThrow(RangeError);
    await expect(unit.writeCoil(65536, true)).rejects.toThrow(RangeError);
    expect(server.requests).toHaveLength(0);
  });
});

describe('write function code per call', () => {
  it('functionCode 6 writes one register with FC6 on a unit that defaults to FC16', async () => {
    const { bus, server, registers } = await start({ refuse: 16 });
    const unit = bus.unit(1);
    await expect(unit.writeRegisters(528, [10])).rejects.toMatchObject({ functionCode: 16, exceptionCode: 1 });
    await unit.writeRegisters(528, [10], { functionCode: 6 });
    expect(registers.get(528)).toBe(10);
    expect(server.requests.map((r) => r.functionCode)).toEqual([16, 6]);
  });

  it('functionCode 16 writes one register with FC16 on a unit that defaults to FC6', async () => {
    const { bus, server, registers } = await start({ refuse: 6 });
    const unit = bus.unit(1, { useFc6ForSingleRegister: true });
    await expect(unit.writeRegisters(5050, [0xffe2])).rejects.toMatchObject({ functionCode: 6, exceptionCode: 1 });
    await unit.writeRegisters(5050, [0xffe2], { functionCode: 16 });
    expect(registers.get(5050)).toBe(0xffe2);
    expect(server.requests.map((r) => [r.functionCode, r.count])).toEqual([
      [6, 1],
      [16, 1],
    ]);
  });

  it('FC6 with more than one register is a caller error, never sent', async () => {
    const { bus, server } = await start();
    await expect(bus.unit(1).writeRegisters(0, [1, 2], { functionCode: 6 })).rejects.toThrow(RangeError);
    expect(server.requests).toHaveLength(0);
  });

  it('an FC6 answer that does not echo the value is bad data', async () => {
    const { bus, server } = await start();
    server.setHandler((req, reply) => reply.pdu(answerPdu({ ...req, values: [req.values[0]! + 1] })));
    await expect(bus.unit(1).writeRegisters(4001, [1], { functionCode: 6 })).rejects.toBeInstanceOf(BadDataError);
  });
});

describe('maxReadRegisters', () => {
  const meterRanges = [
    { address: 0, count: 30 },
    { address: 30, count: 30 },
    { address: 60, count: 2 },
  ];

  it('a unit option keeps every planned read within the device limit, in the fewest such reads', async () => {
    const { bus, server } = await start({ maxRead: 40 });
    const values = await bus.unit(1, { maxReadRegisters: 40 }).readRanges('input', meterRanges);
    expect(server.requests.every((r) => r.count <= 40)).toBe(true);
    expect(server.requests).toHaveLength(2); // 62 registers: two reads of ≤ 40
    expect(values.map((v) => [v[0], v.length])).toEqual([
      [0, 30],
      [30, 30],
      [60, 2],
    ]);
  });

  it('without it the same call is one read, which such a device refuses', async () => {
    const { bus, server } = await start({ maxRead: 40 });
    await expect(bus.unit(1).readRanges('input', meterRanges)).rejects.toMatchObject({ exceptionCode: 3 });
    expect(server.requests.map((r) => r.count)).toEqual([62]);
  });

  it('a per-call limit narrows the unit limit, never widens it', async () => {
    const { bus, server } = await start();
    const unit = bus.unit(1, { maxReadRegisters: 40 });
    await unit.readRanges('holding', meterRanges, { maxReadRegisters: 20 });
    expect(server.requests).toHaveLength(4); // 62 registers in reads of ≤ 20
    expect(server.requests.every((r) => r.count <= 20)).toBe(true);
    server.requests.length = 0;
    await unit.readRanges('holding', meterRanges, { maxReadRegisters: 125 });
    expect(server.requests.every((r) => r.count <= 40)).toBe(true);
  });

  it('an impossible limit is a RangeError', async () => {
    const { bus } = await start();
    expect(() => bus.unit(2, { maxReadRegisters: 0 })).toThrow(RangeError);
    expect(() => bus.unit(3, { maxReadRegisters: 126 })).toThrow(RangeError);
    await expect(bus.unit(1).readRanges('holding', meterRanges, { maxReadRegisters: 1.5 })).rejects.toThrow(RangeError);
  });
});
