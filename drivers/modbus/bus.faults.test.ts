/**
 * The bus against small scripted Modbus TCP servers on loopback: silence, slowness, exceptions,
 * dropped connections, garbage, late answers with a stale transaction id, restarts, a dead unit on
 * a shared bus, and devices that reject merged reads.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../clock.js';
import { BackedOffError, BadDataError, DisconnectedError, ModbusExceptionError, TimeoutError } from '../errors.js';
import { silentLog } from '../log.js';
import { createModbusBus } from './bus.js';
import type { ModbusBus, ModbusBusOptions } from './types.js';
import { answerPdu, exceptionPdu, startFaultServer, waitFor, type FaultServer, type ModbusRequest, type TcpReply } from './test-support.js';

const servers: FaultServer[] = [];
const buses: ModbusBus[] = [];

afterEach(async () => {
  await Promise.all(buses.splice(0).map((b) => b.stop()));
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function serve(handler: (req: ModbusRequest, reply: TcpReply) => void, port?: number): Promise<FaultServer> {
  const server = await startFaultServer(handler, port);
  servers.push(server);
  return server;
}

function answer(req: ModbusRequest, reply: TcpReply): void {
  reply.pdu(answerPdu(req));
}

async function busFor(server: FaultServer, options: Partial<ModbusBusOptions> = {}): Promise<ModbusBus> {
  const bus = createModbusBus({
    connection: { tcp: { host: '127.0.0.1', port: server.port } },
    clock: systemClock,
    log: silentLog,
    timeoutMs: 50,
    reconnect: { initialMs: 20, maxMs: 100 },
    ...options,
  });
  buses.push(bus);
  await bus.start();
  return bus;
}

describe('ModbusBus over TCP, faults', () => {
  it('times out a request that gets no answer, typed, and keeps the connection usable', async () => {
    let silent = true;
    const server = await serve((req, reply) => {
      if (!silent) answer(req, reply);
    });
    const bus = await busFor(server);
    const u = bus.unit(1);
    const startedAt = Date.now();
    const error = await u.readRegisters('holding', 10, 2).catch((e: unknown) => e);
    const elapsedMs = Date.now() - startedAt;
    expect(error).toBeInstanceOf(TimeoutError);
    expect((error as TimeoutError).timeoutMs).toBe(50);
    expect(elapsedMs).toBeGreaterThanOrEqual(45);
    expect(elapsedMs).toBeLessThan(500);
    expect(bus.stats.timeouts).toBe(1);
    silent = false;
    expect(Array.from(await u.readRegisters('holding', 10, 2))).toEqual([10, 11]);
    expect(server.connections).toBe(1);
  });

  it('accepts a slow answer that comes within the timeout', async () => {
    const server = await serve((req, reply) => setTimeout(() => answer(req, reply), 30));
    const bus = await busFor(server, { timeoutMs: 200 });
    expect(Array.from(await bus.unit(1).readRegisters('input', 5, 1))).toEqual([5]);
  });

  it('ignores a late answer with a stale transaction id; the next request gets its own answer', async () => {
    const server = await serve((req, reply) => {
      if (req.address === 1) setTimeout(() => reply.pdu(answerPdu(req, [0xdead])), 150); // late: after the 100 ms timeout
      else setTimeout(() => reply.pdu(answerPdu(req, [0xbeef])), 80); // the stale answer arrives while this one is on the wire
    });
    const bus = await busFor(server, { timeoutMs: 100 });
    const u = bus.unit(1);
    await expect(u.readRegisters('holding', 1, 1)).rejects.toBeInstanceOf(TimeoutError);
    const second = await u.readRegisters('holding', 2, 1, {});
    expect(Array.from(second)).toEqual([0xbeef]);
    expect(server.requests[0]!.tid).not.toBe(server.requests[1]!.tid);
    expect(Array.from(await u.readRegisters('holding', 3, 1))).toEqual([0xbeef]);
    expect(server.connections).toBe(1);
  });

  it('surfaces exception codes: 1-3 are permanent and do not back the unit off, 4+ count as failures', async () => {
    const server = await serve((req, reply) => reply.pdu(exceptionPdu(req, req.functionCode === 3 ? 2 : 6)));
    const bus = await busFor(server);
    const u = bus.unit(9);
    for (let i = 0; i < 4; i++) {
      const error = await u.readRegisters('holding', 0, 1).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModbusExceptionError);
      expect(error).toMatchObject({ functionCode: 3, exceptionCode: 2, retryable: false });
    }
    expect(u.stats.backoffMs).toBe(0);
    const busy = await u.writeRegisters(0, [1]).catch((e: unknown) => e);
    expect(busy).toMatchObject({ functionCode: 16, exceptionCode: 6, retryable: true });
    expect((busy as Error).message).toContain('server device busy');
    expect(bus.stats.exceptions).toBe(5);
    expect(u.stats.consecutiveFailures).toBe(1);
  });

  it('fails the request on the wire with DisconnectedError when the connection drops, then reconnects', async () => {
    let drop = true;
    const server = await serve((req, reply) => {
      if (drop) {
        drop = false;
        reply.drop();
      } else answer(req, reply);
    });
    const bus = await busFor(server, { timeoutMs: 1000 });
    const u = bus.unit(1);
    const startedAt = Date.now();
    await expect(u.readRegisters('holding', 7, 1)).rejects.toBeInstanceOf(DisconnectedError);
    expect(Date.now() - startedAt).toBeLessThan(500); // not a timeout
    // a request made while disconnected waits for the reconnect
    expect(Array.from(await u.readRegisters('holding', 7, 1))).toEqual([7]);
    expect(bus.stats.reconnects).toBe(1);
    expect(server.connections).toBe(2);
  });

  it('maps a wrong-length answer to BadDataError, and garbage bytes to a timeout plus a fresh connection', async () => {
    let mode: 'long' | 'garbage' | 'ok' = 'long';
    const server = await serve((req, reply) => {
      if (mode === 'long') reply.pdu(answerPdu(req, [1, 2, 3]));
      else if (mode === 'garbage') reply.raw(Buffer.from('this is not modbus at all'));
      else answer(req, reply);
    });
    const bus = await busFor(server);
    const u = bus.unit(1);
    await expect(u.readRegisters('holding', 0, 2)).rejects.toBeInstanceOf(BadDataError);
    expect(bus.stats.badFrames).toBe(1);
    mode = 'garbage';
    // the garbage announces a huge frame: no answer in time, and the stream cannot be trusted
    await expect(u.readRegisters('holding', 0, 2)).rejects.toBeInstanceOf(TimeoutError);
    mode = 'ok';
    expect(Array.from(await u.readRegisters('holding', 40, 2))).toEqual([40, 41]);
    expect(server.connections).toBe(2);
  });

  it('reconnects with back-off after the server restarts', async () => {
    const first = await serve(answer);
    const port = first.port;
    const bus = await busFor(first, { timeoutMs: 100, reconnect: { initialMs: 20, maxMs: 80 } });
    const u = bus.unit(1);
    expect(Array.from(await u.readRegisters('holding', 1, 1))).toEqual([1]);
    await first.close();
    servers.splice(servers.indexOf(first), 1);
    await waitFor(() => !bus.connected);
    // down: requests wait for a connection at most their timeout
    await expect(u.readRegisters('holding', 1, 1)).rejects.toBeInstanceOf(DisconnectedError);
    await new Promise((r) => setTimeout(r, 200)); // a few failed attempts: 20, 40, 80, 80 ms apart
    expect(bus.stats.connectFailures).toBeGreaterThanOrEqual(2);
    const second = await serve(answer, port);
    await waitFor(() => bus.connected, 2000);
    expect(Array.from(await u.readRegisters('holding', 2, 1))).toEqual([2]);
    expect(bus.stats.reconnects).toBe(1);
    expect(second.connections).toBe(1);
  });

  it('backs off a dead unit so that a healthy unit on the same bus waits at most one timeout per period', async () => {
    const server = await serve((req, reply) => {
      if (req.unitId === 1) answer(req, reply); // unit 2 never answers
    });
    const backoff = { failuresBeforeBackoff: 3, initialMs: 200, maxMs: 400 };
    const bus = await busFor(server, { timeoutMs: 50, unitBackoff: backoff });
    const healthy = bus.unit(1);
    const dead = bus.unit(2);
    const healthyLatenciesMs: number[] = [];
    const deadErrors: unknown[] = [];
    const runForMs = 1500;
    const startedAt = Date.now();
    const loops: Promise<void>[] = [];
    // each unit polled every 10 ms, concurrently, as a control loop would
    loops.push(
      (async () => {
        while (Date.now() - startedAt < runForMs) {
          const t0 = Date.now();
          await healthy.readRegisters('holding', 0, 1);
          healthyLatenciesMs.push(Date.now() - t0);
          await new Promise((r) => setTimeout(r, 10));
        }
      })(),
      (async () => {
        while (Date.now() - startedAt < runForMs) {
          deadErrors.push(await dead.readRegisters('holding', 0, 1).catch((e: unknown) => e));
          await new Promise((r) => setTimeout(r, 10));
        }
      })(),
    );
    await Promise.all(loops);
    const deadOnWire = server.requests.filter((r) => r.unitId === 2).length;
    // 3 timeouts to detect it, then one probe per period: 200, 400, 400, ... ms
    expect(deadOnWire).toBeGreaterThanOrEqual(5);
    expect(deadOnWire).toBeLessThanOrEqual(3 + Math.ceil(runForMs / backoff.initialMs));
    expect(deadErrors.filter((e) => e instanceof BackedOffError).length).toBeGreaterThan(20);
    expect(deadErrors.every((e) => e instanceof BackedOffError || e instanceof TimeoutError)).toBe(true);
    const backedOff = deadErrors.find((e): e is BackedOffError => e instanceof BackedOffError)!;
    expect(backedOff.retryAtMs).toBeGreaterThan(startedAt);
    // the healthy unit never waited more than the one dead-unit timeout on the wire (+ slack for a busy machine)
    expect(Math.max(...healthyLatenciesMs)).toBeLessThan(50 + 40);
    expect(healthyLatenciesMs.length).toBeGreaterThan(40);
    expect(bus.stats.backedOffRejections).toBe(deadErrors.filter((e) => e instanceof BackedOffError).length);
    expect(dead.stats.backoffMs).toBe(400);
  });

  it('clears the back-off when the probe succeeds', async () => {
    let alive = false;
    const server = await serve((req, reply) => {
      if (alive) answer(req, reply);
    });
    const bus = await busFor(server, { timeoutMs: 30, unitBackoff: { failuresBeforeBackoff: 2, initialMs: 100 } });
    const u = bus.unit(5);
    await expect(u.readRegisters('holding', 0, 1)).rejects.toBeInstanceOf(TimeoutError);
    await expect(u.readRegisters('holding', 0, 1)).rejects.toBeInstanceOf(TimeoutError);
    // backed off: rejected at once, nothing sent
    const sent = server.requests.length;
    await expect(u.readRegisters('holding', 0, 1)).rejects.toBeInstanceOf(BackedOffError);
    expect(server.requests.length).toBe(sent);
    alive = true;
    await new Promise((r) => setTimeout(r, 110));
    // exactly one probe goes out; the others asking meanwhile are turned away
    const [probe, other] = await Promise.allSettled([u.readRegisters('holding', 3, 1), u.readRegisters('holding', 4, 1)]);
    expect(probe.status).toBe('fulfilled');
    expect((other as PromiseRejectedResult).reason).toBeInstanceOf(BackedOffError);
    expect(u.stats).toMatchObject({ backoffMs: 0, consecutiveFailures: 0 });
    expect(Array.from(await u.readRegisters('holding', 4, 1))).toEqual([4]);
  });

  it('splits a merged read the device rejects, learns the rejected joins, and does not merge there again', async () => {
    // A device with two register banks, 0..9 and 10..19, and 25..29; 20..24 do not exist.
    // A read must stay inside one bank, else exception 2.
    const banks = [
      [0, 10],
      [10, 20],
      [25, 30],
    ] as const;
    const server = await serve((req, reply) => {
      const end = req.address + req.count;
      const ok = banks.some(([s, e]) => req.address >= s && end <= e);
      reply.pdu(ok ? answerPdu(req) : exceptionPdu(req, 2));
    });
    const bus = await busFor(server);
    const u = bus.unit(1, { maxGapRegisters: 5 });
    const ranges = [
      { address: 0, count: 4 },
      { address: 4, count: 6 },
      { address: 10, count: 10 },
      { address: 25, count: 5 },
    ];
    const values = await u.readRanges('holding', ranges);
    ranges.forEach((r, i) => expect(Array.from(values[i]!)).toEqual(Array.from({ length: r.count }, (_, k) => r.address + k)));
    const firstRound = server.requests.map((r) => `${r.address}+${r.count}`);
    expect(firstRound[0]).toBe('0+30'); // merged across the gap first
    expect(bus.stats.exceptions).toBeGreaterThanOrEqual(1);

    // Remembered: the next poll reads each bank in one transaction, with no exception.
    server.requests.length = 0;
    const exceptions = bus.stats.exceptions;
    const again = await u.readRanges('holding', ranges);
    expect(again.map((v) => v[0])).toEqual([0, 4, 10, 25]);
    expect(server.requests.map((r) => `${r.address}+${r.count}`)).toEqual(['0+10', '10+10', '25+5']);
    expect(bus.stats.exceptions).toBe(exceptions);
    // A single range that is itself illegal still fails, with the device's code.
    await expect(u.readRanges('holding', [{ address: 21, count: 2 }])).rejects.toMatchObject({ exceptionCode: 2 });
  });

  it('merges across gaps only when the call asks (maxGapRegisters per call), splits a rejected gap join, remembers it', async () => {
    // Two register banks, 0..19 and 20..39; a read must stay inside one bank, else exception 2.
    // Every register holds its own address.
    const banks = [
      [0, 20],
      [20, 40],
    ] as const;
    const server = await serve((req, reply) => {
      const end = req.address + req.count;
      reply.pdu(banks.some(([s, e]) => req.address >= s && end <= e) ? answerPdu(req) : exceptionPdu(req, 2));
    });
    const bus = await busFor(server);
    const u = bus.unit(1); // unit default: no gap merging
    // Gaps of 6, 7 and 4 registers; the join at 22 (across the gap 15..21) spans the two banks.
    const ranges = [
      { address: 30, count: 5 },
      { address: 0, count: 4 },
      { address: 22, count: 4 },
      { address: 10, count: 5 },
    ];
    const expectExact = (values: Uint16Array[]) =>
      ranges.forEach((r, i) => expect(Array.from(values[i]!)).toEqual(Array.from({ length: r.count }, (_, k) => r.address + k)));
    const sent = () => server.requests.splice(0).map((r) => `${r.address}+${r.count}`);

    // Without the option: the unit's default (0), one transaction per range.
    expectExact(await u.readRanges('holding', ranges));
    expect(sent()).toEqual(['0+4', '10+5', '22+4', '30+5']);

    // With it: one merged read 0+35, rejected; the middle join (22) is forbidden and the two halves
    // are read within the same call.
    expectExact(await u.readRanges('holding', ranges, { maxGapRegisters: 10 }));
    expect(sent()).toEqual(['0+35', '0+15', '22+13']);
    expect(bus.stats.exceptions).toBe(1);
    expect(u.stats.consecutiveFailures).toBe(0); // exception 2 is an answer, not a failure

    // Remembered: the next call plans the split from the start, no exception.
    expectExact(await u.readRanges('holding', ranges, { maxGapRegisters: 10 }));
    expect(sent()).toEqual(['0+15', '22+13']);
    expect(bus.stats.exceptions).toBe(1);
    expect(bus.stats.transactions).toBe(4 + 3 + 2);

    // A gap too wide for this call's limit is not bridged.
    expectExact(await u.readRanges('holding', ranges, { maxGapRegisters: 5 }));
    expect(sent()).toEqual(['0+4', '10+5', '22+13']);

    await expect(u.readRanges('holding', ranges, { maxGapRegisters: -1 })).rejects.toThrow(RangeError);
    await expect(u.readRanges('holding', ranges, { maxGapRegisters: 1.5 })).rejects.toThrow(RangeError);
    expect(sent()).toEqual([]);
  });

  it('bisects a gap-merged read down to single ranges when the device rejects every read over a gap', async () => {
    // Only the requested registers exist: any read over a gap is exception 2.
    const ranges = [0, 10, 20, 30, 40, 50, 60, 70].map((address, i) => ({ address, count: 2 + (i % 3) }));
    const exists = (a: number) => ranges.some((r) => a >= r.address && a < r.address + r.count);
    const server = await serve((req, reply) => {
      let ok = true;
      for (let a = req.address; a < req.address + req.count; a++) ok &&= exists(a);
      reply.pdu(ok ? answerPdu(req) : exceptionPdu(req, 2));
    });
    const bus = await busFor(server);
    const u = bus.unit(1);
    const values = await u.readRanges('input', ranges, { maxGapRegisters: 20 });
    ranges.forEach((r, i) => expect(Array.from(values[i]!)).toEqual(Array.from({ length: r.count }, (_, k) => r.address + k)));
    // 1 + 2 + 4 rejected merged reads (a bisection over 7 joins), then the 8 single ranges.
    expect(bus.stats.exceptions).toBe(7);
    expect(bus.stats.transactions).toBe(7 + 8);
    server.requests.length = 0;
    await u.readRanges('input', ranges, { maxGapRegisters: 20 });
    expect(server.requests).toHaveLength(8);
    expect(bus.stats.exceptions).toBe(7);
    // Learned per register kind: holding registers are planned afresh.
    server.requests.length = 0;
    await u.readRanges('holding', ranges, { maxGapRegisters: 20 });
    expect(server.requests[0]).toMatchObject({ address: 0, count: 73 });
  });
});
