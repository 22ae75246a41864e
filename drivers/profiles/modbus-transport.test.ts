/**
 * The Modbus ProfileTransport against a scriptable Modbus TCP server on loopback (a real socket, a
 * server that frames every byte itself): the fewest transactions for all sources (registers and
 * coils, within the profile's largest read), decoding with word order and sentinels, and actions
 * with the function codes the profile declares — a sequence in order, stopping at the first failure.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { systemClock } from '../clock.js';
import { ModbusExceptionError, NotSupportedError, RefusedError, TimeoutError } from '../errors.js';
import { silentLog } from '../log.js';
import { createModbusBus } from '../modbus/bus.js';
import { answerPdu, coilAnswerPdu, exceptionPdu, startFaultServer, type FaultServer, type ModbusRequest, type TcpReply } from '../modbus/test-support.js';
import type { ModbusBus } from '../modbus/types.js';
import { parseProfileText } from './load.js';
import { createModbusProfileTransport } from './modbus-transport.js';
import type { ProfileTransport } from './transport.js';

/** A made-up meter-like device exercising every source kind (class load: on + readings + one control). */
const PROFILE = `
profile: test-device
class: load
vendor: Test
model: Every encoding
transport: modbus
modbus:
  maxReadRegisters: 20
  sources:
    on:        { address: 400, type: coil }
    alarm:     { address: 401, type: coil }
    fault:     { address: 405, type: coil }
    power:     { address: 100, type: input, encoding: int16 }
    energy:    { address: 101, type: input, encoding: uint32, wordOrder: low-first }
    counter:   { address: 103, type: input, encoding: uint64 }
    temp:      { address: 107, type: input, encoding: float32 }
    serial:    { address: 109, type: input, encoding: string, length: 12 }
    last:      { address: 121, type: input, encoding: uint16, sentinels: [65535] }   # 100..121: 22 registers, two reads of ≤ 20
    far:       { address: 140, type: input, encoding: uint16 }      # 18 unrequested registers away
    state:     { address: 200, type: holding, encoding: uint8-high }
    name:      { address: 201, type: holding, encoding: string, length: 3 }
    phase:     { address: 204, type: holding, encoding: uint16, sentinels: [1000], sentinelMeans: zero }
    ratio:     { address: 205, type: holding, encoding: float32 }
  actions:
    switch:     { address: 400, type: coil }
    setpointFc6: { address: 300, type: holding, functionCode: 6, encoding: int16, rawMin: -100, rawMax: 100 }
    setpoint32: { address: 302, type: holding, functionCode: 16, encoding: int32, wordOrder: low-first }
    ratioWrite: { address: 310, type: holding, encoding: float32 }
    sequence:
      writes:
        - { address: 320, functionCode: 6, value: 0 }
        - { address: 321, functionCode: 16, value: 7 }
        - { address: 322, type: coil, value: true }
readings:
  on: { source: on }
controls:
  on: { action: switch }
revert: { kind: none }
`;

let server: FaultServer | undefined;
let bus: ModbusBus | undefined;

afterEach(async () => {
  await bus?.stop();
  await server?.close();
  bus = undefined;
  server = undefined;
});

class Device {
  readonly input = new Map<number, number>();
  readonly holding = new Map<number, number>();
  readonly coils = new Map<number, boolean>();
  /** Function codes this device answers with exception 1; addresses whose writes get exception 2. */
  refuse = new Set<number>();
  refuseWriteAt = new Set<number>();
  maxRead = 125;
  handler = (req: ModbusRequest, reply: TcpReply): void => {
    if (this.refuse.has(req.functionCode)) return reply.pdu(exceptionPdu(req, 1));
    switch (req.functionCode) {
      case 1:
        return reply.pdu(coilAnswerPdu(req, Array.from({ length: req.count }, (_, i) => this.coils.get(req.address + i) ?? false)));
      case 3:
      case 4: {
        if (req.count > this.maxRead) return reply.pdu(exceptionPdu(req, 3));
        const map = req.functionCode === 3 ? this.holding : this.input;
        return reply.pdu(answerPdu(req, Array.from({ length: req.count }, (_, i) => map.get(req.address + i) ?? 0)));
      }
      case 5:
      case 6:
      case 16:
        if (this.refuseWriteAt.has(req.address)) return reply.pdu(exceptionPdu(req, 2));
        if (req.functionCode === 5) this.coils.set(req.address, req.values[0] === 0xff00);
        else req.values.forEach((v, i) => this.holding.set(req.address + i, v));
        return reply.pdu(answerPdu(req));
      default:
        return reply.pdu(exceptionPdu(req, 1));
    }
  };
}

async function start(text = PROFILE): Promise<{ device: Device; server: FaultServer; transport: ProfileTransport; bus: ModbusBus }> {
  const device = new Device();
  server = await startFaultServer(device.handler);
  bus = createModbusBus({ connection: { tcp: { host: '127.0.0.1', port: server.port } }, clock: systemClock, log: silentLog, timeoutMs: 300 });
  await bus.start();
  const profile = parseProfileText(text, 'test-device.yaml');
  // The unit has no read limit of its own: the transport applies the profile's.
  const transport = createModbusProfileTransport({ unit: bus.unit(1, { backoff: { failuresBeforeBackoff: 100 } }), profile });
  return { device, server, transport, bus };
}

const requestsOf = (s: FaultServer) => s.requests.map((r) => `${r.functionCode} ${r.address}+${r.count}`);

describe('Modbus profile transport: reading', () => {
  it('reads every source in the fewest transactions the device allows, and decodes each', async () => {
    const { device, server, transport } = await start();
    device.input.set(100, 0xfff6); // -10
    device.input.set(101, 0x5678).set(102, 0x0012); // low word first: 0x00125678
    device.input.set(103, 0).set(104, 0).set(105, 0x0001).set(106, 0x0000); // 65536
    device.input.set(107, 0x41bc).set(108, 0x0000); // 23.5
    'SN-0042'.split('').forEach((c, i) => device.input.set(109 + (i >> 1), (device.input.get(109 + (i >> 1)) ?? 0) | (c.charCodeAt(0) << (i % 2 === 0 ? 8 : 0))));
    device.input.set(121, 0xffff); // sentinel: unknown
    device.input.set(140, 42);
    device.holding.set(200, 0xc200);
    device.holding.set(201, 0x4142).set(202, 0x4300); // "ABC"
    device.holding.set(204, 1000); // sentinel meaning zero
    device.holding.set(205, 0x7fc0).set(206, 0); // NaN: not a value
    device.coils.set(400, true).set(405, true);
    const snapshot = await transport.read();
    expect(snapshot.values).toEqual({
      on: true,
      alarm: false,
      fault: true,
      power: -10,
      energy: 0x00125678,
      counter: 65536,
      temp: 23.5,
      serial: 'SN-0042',
      far: 42,
      state: 0xc2,
      name: 'ABC',
      phase: 0,
    });
    expect(snapshot.problems).toEqual({
      last: expect.stringMatching(/input 121 reads 65535: the device reports it as not available/),
      ratio: expect.stringMatching(/holding 205 reads NaN, not a finite number/),
    });
    // input 100..121 in two reads of ≤ 20 (cut between values), 140 apart (no gap allowance);
    // holding 200..206; coils 400..401 and 405.
    const inputReads = server.requests.filter((r) => r.functionCode === 4);
    expect(inputReads.map((r) => r.count).every((n) => n <= 20)).toBe(true);
    expect(inputReads.filter((r) => r.address < 140).reduce((n, r) => n + r.count, 0)).toBe(22);
    expect(requestsOf(server).filter((r) => !r.startsWith('4 1') || r === '4 140+1').sort()).toEqual(['1 400+2', '1 405+1', '3 200+7', '4 140+1'].sort());
    expect(server.requests).toHaveLength(6);
  });

  it('reads coils across small gaps, and registers across gaps, when the profile allows it', async () => {
    const { server, transport } = await start(PROFILE.replace('maxReadRegisters: 20', 'maxReadRegisters: 41\n  maxGapRegisters: 18'));
    await transport.read();
    expect(requestsOf(server).sort()).toEqual(['1 400+6', '3 200+7', '4 100+41'].sort());
  });

  it('a device that rejects a read fails the whole read with its typed error', async () => {
    const { device, transport } = await start();
    device.refuse.add(1);
    await expect(transport.read()).rejects.toMatchObject({ functionCode: 1, exceptionCode: 1 });
    device.refuse.clear();
    device.maxRead = 5;
    await expect(transport.read()).rejects.toBeInstanceOf(ModbusExceptionError);
  });

  it('no answer is a TimeoutError', async () => {
    const { server, transport } = await start();
    server.setHandler(() => {});
    await expect(transport.read()).rejects.toBeInstanceOf(TimeoutError);
  });
});

describe('Modbus profile transport: actions', () => {
  it('writes with the declared function code and encoding', async () => {
    const { device, server, transport } = await start();
    await transport.act('setpointFc6', -30);
    await transport.act('setpoint32', 0x00012345);
    await transport.act('ratioWrite', 0.5);
    await transport.act('switch', true);
    expect(device.holding.get(300)).toBe(0xffe2);
    expect([device.holding.get(302), device.holding.get(303)]).toEqual([0x2345, 0x0001]);
    expect([device.holding.get(310), device.holding.get(311)]).toEqual([0x3f00, 0x0000]);
    expect(device.coils.get(400)).toBe(true);
    expect(requestsOf(server)).toEqual(['6 300+1', '16 302+2', '16 310+2', '5 400+1']);
  });

  it('refuses a raw value outside the action range, or of the wrong kind, before anything is sent', async () => {
    const { server, transport } = await start();
    await expect(transport.act('setpointFc6', 101)).rejects.toBeInstanceOf(RefusedError);
    await expect(transport.act('setpointFc6', 'on')).rejects.toBeInstanceOf(RefusedError);
    await expect(transport.act('setpoint32', 2 ** 31)).rejects.toBeInstanceOf(RefusedError);
    await expect(transport.act('switch', 'on')).rejects.toBeInstanceOf(RefusedError);
    await expect(transport.act('nothing', 1)).rejects.toBeInstanceOf(NotSupportedError);
    expect(server.requests).toHaveLength(0);
  });

  it('runs a sequence in order, and stops at the first failure', async () => {
    const { device, server, transport } = await start();
    await transport.act('sequence', 0);
    expect(requestsOf(server)).toEqual(['6 320+1', '16 321+1', '5 322+1']);
    expect(device.holding.get(321)).toBe(7);
    expect(device.coils.get(322)).toBe(true);
    server.requests.length = 0;
    device.refuseWriteAt.add(321);
    await expect(transport.act('sequence', 0)).rejects.toMatchObject({ functionCode: 16, exceptionCode: 2 });
    expect(requestsOf(server)).toEqual(['6 320+1', '16 321+1']);
  });

  it('describes where the device is', async () => {
    const { transport, server } = await start();
    expect(transport.describe()).toBe(`modbus tcp 127.0.0.1:${server.port} unit 1`);
  });
});
