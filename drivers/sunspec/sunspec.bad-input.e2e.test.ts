/**
 * Bad input, end to end: broken and faulty devices served by the simulators' real Modbus TCP server
 * (simulators/modbus), read through the real bus (drivers/modbus) by createSunSpecDevice. Every case
 * must end in a typed error that names the device (and the model / register where there is one) —
 * never a crash, never a made-up value — and the bus must stay usable for the next read.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Meter, Pv } from '../classes.js';
import { systemClock } from '../clock.js';
import { BadDataError, DeviceError, ModbusExceptionError, NotSupportedError, TimeoutError } from '../errors.js';
import { silentLog } from '../log.js';
import { createModbusBus } from '../modbus/bus.js';
import type { ModbusBus, ModbusBusOptions } from '../modbus/types.js';
import { VirtualClock } from '../../simulators/clock.js';
import { SiteMeter } from '../../simulators/devices/meter.js';
import { RegisterImage } from '../../simulators/modbus/image.js';
import { ModbusTcpServer } from '../../simulators/modbus/tcp-server.js';
import { SunSpecDevice } from '../../simulators/sunspec/encoder.js';
import { asModelDefinition } from '../../simulators/sunspec/models.js';
import m113 from './models/model_113.json' with { type: 'json' };
import { createSunSpecDevice } from './device.js';

/** Unit ids on the simulated gateway. */
const UNIT = {
  notSunSpec: 1,
  meter203WrongL: 2,
  pv103WrongL: 3,
  noEndMarker: 4,
  zerosAfterMap: 5,
  lengthPast65535: 6,
  hole: 7,
  floatPv: 8,
  meter: 9,
  missing: 42, // no device behind the gateway with this id
} as const;

const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 5, 21, 12), manual: true });
let server: ModbusTcpServer;
let meter: SiteMeter;
let floatPv: SunSpecDevice;
const buses: ModbusBus[] = [];

function notSunSpecImage(): RegisterImage {
  // A device with its own register map: something at 0 and at 40000, nothing at 50000.
  const image = new RegisterImage();
  image.defineBlock(0, 100);
  image.set(0, [0x1234, 0x5678, 1, 2, 3]);
  image.defineBlock(40000, 100);
  return image;
}

function meter203(models: ConstructorParameters<typeof SunSpecDevice>[0], options: ConstructorParameters<typeof SunSpecDevice>[1] = {}): SunSpecDevice {
  const d = new SunSpecDevice(models, options);
  d.set(1, 'Mn', 'Broken');
  if (d.model(203).points.has('W_SF')) {
    d.setScaleFactors(203, { W_SF: 0 });
    d.set(203, 'W', 1500);
  }
  return d;
}

/** A meter whose image has no registers at 40110..40114 (inside model 203, which the meter reads). */
function meterWithHole(): RegisterImage {
  const full = meter203([1, 203]);
  const end = 40000 + full.layout.totalRegisters;
  const image = new RegisterImage();
  image.defineBlock(40000, 110);
  image.set(40000, full.image.read(40000, 110));
  image.defineBlock(40115, end - 40115);
  image.set(40115, full.image.read(40115, end - 40115));
  return image;
}

/** SunS, then model 1 claiming L = 30000: the next header would be at 70004. */
function lengthPast65535(): RegisterImage {
  const image = new RegisterImage();
  image.defineBlock(40000, 100);
  image.set(40000, [0x5375, 0x6e53, 1, 30000]);
  return image;
}

/** A device that answers 0 for everything after its last model (no end marker). */
function zerosAfterMap(): RegisterImage {
  const image = new RegisterImage();
  const d = meter203([1, 203], { image, endMarker: false });
  image.defineBlock(40000 + d.layout.totalRegisters - 2, 400);
  return image;
}

beforeAll(async () => {
  server = new ModbusTcpServer({ seed: 11 });
  server.addUnit(UNIT.notSunSpec, notSunSpecImage());
  server.addUnit(UNIT.meter203WrongL, meter203([1, { id: 203, length: 104 }]).image);
  const pv = new SunSpecDevice([1, { id: 103, length: 48 }]);
  pv.setScaleFactors(103, { W_SF: 0 });
  pv.set(103, 'W', 900);
  server.addUnit(UNIT.pv103WrongL, pv.image);
  server.addUnit(UNIT.noEndMarker, meter203([1, 203], { endMarker: false }).image);
  server.addUnit(UNIT.zerosAfterMap, zerosAfterMap());
  server.addUnit(UNIT.lengthPast65535, lengthPast65535());
  server.addUnit(UNIT.hole, meterWithHole());
  floatPv = new SunSpecDevice([1, { id: 113, definition: asModelDefinition(m113) }]);
  floatPv.set(1, 'Mn', 'FloatCo');
  server.addUnit(UNIT.floatPv, floatPv.image);
  // The simulators' site meter, not stepped (the clock is manual): its registers hold still.
  meter = new SiteMeter({ clock, baseLoadW: 700, initialImportWh: 5000, initialExportWh: 2000 });
  server.addUnit(UNIT.meter, meter.sunspec.image);
  await server.start();
});

afterAll(async () => {
  await server.stop();
});

afterEach(async () => {
  await Promise.all(buses.splice(0).map((b) => b.stop()));
  for (const u of [UNIT.meter, UNIT.floatPv]) server.setFault(u, { kind: 'none' });
});

async function newBus(options: Partial<ModbusBusOptions> = {}): Promise<ModbusBus> {
  const bus = createModbusBus({
    connection: { tcp: { host: server.host, port: server.port } },
    clock: systemClock,
    log: silentLog,
    timeoutMs: 500,
    reconnect: { initialMs: 20, maxMs: 100 },
    ...options,
  });
  buses.push(bus);
  await bus.start();
  return bus;
}

/** The error a promise rejects with (fails the test when it resolves: no value may be made up). */
async function errorOf(p: Promise<unknown>): Promise<DeviceError> {
  const outcome = await p.then(
    (value) => ({ value }),
    (error: unknown) => ({ error }),
  );
  if (!('error' in outcome)) throw new Error(`expected an error, got ${JSON.stringify(outcome.value)}`);
  expect(outcome.error).toBeInstanceOf(DeviceError);
  return outcome.error as DeviceError;
}

const createMeter = (bus: ModbusBus, unitId: number, id = `meter-${unitId}`) =>
  createSunSpecDevice({ id, deviceClass: 'meter', unit: bus.unit(unitId), log: silentLog });

describe('SunSpec bad input over Modbus TCP against simulated devices', () => {
  it('a device that is not SunSpec: NotSupportedError naming the device and every base tried', async () => {
    const bus = await newBus();
    const err = await errorOf(createMeter(bus, UNIT.notSunSpec, 'heat-pump'));
    expect(err).toBeInstanceOf(NotSupportedError);
    expect(err.retryable).toBe(false);
    expect(err.message).toMatch(/^heat-pump: tcp 127\.0\.0\.1:\d+ unit 1: no SunSpec marker "SunS" at /);
    expect(err.message).toContain('40000 (read 0x0000 0x0000, not "SunS")');
    expect(err.message).toContain('0 (read 0x1234 0x5678, not "SunS")');
    expect(err.message).toMatch(/50000 \(.*exception 2 \(illegal data address\)\)/);
  });

  it('a unit id the gateway does not reach (exception 0x0B): retryable, never "not SunSpec"', async () => {
    const bus = await newBus();
    const err = await errorOf(createMeter(bus, UNIT.missing, 'garage-meter'));
    expect(err).toBeInstanceOf(ModbusExceptionError);
    expect(err).toMatchObject({ exceptionCode: 11, functionCode: 3, retryable: true });
    expect(err.message).toMatch(/^garage-meter: tcp 127\.0\.0\.1:\d+ unit 42: no conclusive answer about SunSpec/);
    expect(err.message).toMatch(/40000 \(.*gateway target device failed to respond\).*, 0 \(.*, 50000 \(/);
    // The gateway's other units are unaffected.
    expect((await (await createMeter(bus, UNIT.meter)).read()).powerW).toBe(700);
  });

  it('a model whose L its definition does not allow (203, 103): BadDataError naming device, model and address', async () => {
    const bus = await newBus();
    const m = await errorOf(createMeter(bus, UNIT.meter203WrongL, 'm203'));
    expect(m).toBeInstanceOf(BadDataError);
    expect(m.message).toBe('m203: SunSpec model 203 at address 40070 has length L=104, which its definition does not allow');
    const p = await errorOf(createSunSpecDevice({ id: 'pv103', deviceClass: 'pv', unit: bus.unit(UNIT.pv103WrongL), log: silentLog }));
    expect(p).toBeInstanceOf(BadDataError);
    expect(p.message).toBe('pv103: SunSpec model 103 at address 40070 has length L=48, which its definition does not allow');
  });

  it('a broken model chain: no end marker, zeros after the map, an L running past 65535', async () => {
    const bus = await newBus();
    const noEnd = await errorOf(createMeter(bus, UNIT.noEndMarker, 'no-end'));
    expect(noEnd).toBeInstanceOf(BadDataError);
    // 203 at 40070 + 107 registers: the chain ends at 40177, where nothing can be read
    expect(noEnd.message).toMatch(/^no-end: tcp .* unit 4: SunSpec model chain has no end marker: reading 40177 failed \(.*illegal data address\)/);

    const zeros = await errorOf(createMeter(bus, UNIT.zerosAfterMap, 'zeros'));
    expect(zeros).toBeInstanceOf(BadDataError);
    expect(zeros.message).toMatch(/^zeros: tcp .* unit 5: more than 128 SunSpec models from 40000; the chain is broken \(no end marker\)/);

    const past = await errorOf(createMeter(bus, UNIT.lengthPast65535, 'past'));
    expect(past).toBeInstanceOf(BadDataError);
    expect(past.message).toMatch(/^past: tcp .* unit 6: SunSpec model 1 at 40002 has L=30000, which runs past address 65535$/);
  });

  it('registers out of range inside a model (exception 2): the error names device, model and registers', async () => {
    const bus = await newBus();
    const hole: Meter = await createMeter(bus, UNIT.hole, 'hole'); // discovery reads only the headers
    const err = await errorOf(hole.read());
    expect(err).toBeInstanceOf(ModbusExceptionError);
    expect(err).toMatchObject({ exceptionCode: 2, retryable: false });
    // 203 read from its ID register to TotWh_SF (offset 54): 55 registers
    expect(err.message).toMatch(/^hole: reading SunSpec model 203 at address 40070 \(registers 40070\+55\): tcp .* unit 7: FC3 exception 2 \(illegal data address\)$/);
    expect(err.cause).toBeInstanceOf(ModbusExceptionError);
  });

  it('unimplemented values: a required one is a BadDataError naming point and register, optional ones are absent', async () => {
    const bus = await newBus();
    const m: Meter = await createMeter(bus, UNIT.meter, 'site');
    expect(await m.read()).toEqual({ powerW: 700, importWh: 5000, exportWh: 2000, voltageV: 230, frequencyHz: 50 });

    const d = meter.sunspec;
    d.set(203, 'Hz', undefined); // 0x8000
    d.set(203, 'V_SF', undefined); // scale factor unimplemented (0x8000): PhV and PPV have no value
    d.set(203, 'TotWh_SF', undefined);
    expect(d.image.read(d.point(203, 'Hz').address, 1)).toEqual([0x8000]);
    const partial = await m.read();
    expect(partial).toEqual({ powerW: 700 });
    expect(Object.keys(partial)).toEqual(['powerW']); // absent, not NaN, not 0

    d.set(203, 'W', undefined);
    const err = await errorOf(m.read());
    expect(err).toBeInstanceOf(BadDataError);
    // 203 at 40070, W at offset 18
    expect(err.message).toBe('site: SunSpec model 203 point W at address 40088 is not implemented or its scale factor W_SF (reads as "no value")');

    d.set(203, 'W', -300);
    d.set(203, 'W_SF', undefined);
    expect((await errorOf(m.read())).message).toMatch(/point W at address 40088 is not implemented or its scale factor W_SF/);

    d.setScaleFactors(203, { W_SF: 0, V_SF: -1, TotWh_SF: 0 });
    d.set(203, 'Hz', 50);
    expect(await m.read()).toEqual({ powerW: -300, importWh: 5000, exportWh: 2000, voltageV: 230, frequencyHz: 50 });
    d.set(203, 'W', meter.powerW);
  });

  it('NaN and infinities in a float model (113): required W → BadDataError, optional WH → absent', async () => {
    const bus = await newBus();
    floatPv.set(113, 'W', 2500.5);
    floatPv.set(113, 'WH', 123456);
    const pv: Pv = await createSunSpecDevice({ id: 'float-pv', deviceClass: 'pv', unit: bus.unit(UNIT.floatPv), log: silentLog });
    expect(pv.describe()).toMatch(/^SunSpec FloatCo \(models 1,113\)/);
    expect(await pv.read()).toEqual({ powerW: 2500.5, energyWh: 123456 });

    floatPv.set(113, 'WH', Number.POSITIVE_INFINITY);
    expect(await pv.read()).toEqual({ powerW: 2500.5 });
    floatPv.set(113, 'W', Number.NaN);
    expect(floatPv.image.read(floatPv.point(113, 'W').address, 2)).toEqual([0x7fc0, 0]);
    const err = await errorOf(pv.read());
    expect(err).toBeInstanceOf(BadDataError);
    // 113 at 40070 (after the common model), W at offset 22
    expect(err.message).toBe('float-pv: SunSpec model 113 point W at address 40092 is not implemented (reads as "no value")');
    floatPv.set(113, 'W', Number.NEGATIVE_INFINITY);
    expect(await errorOf(pv.read())).toBeInstanceOf(BadDataError);
  });

  it('a garbage answer and a slow answer: typed errors, and the next read after the fault works', async () => {
    const bus = await newBus({ timeoutMs: 150 });
    const m: Meter = await createMeter(bus, UNIT.meter, 'site');
    const good = await m.read();
    expect(good.powerW).toBe(meter.powerW);

    // A correct answer whose MBAP length announces more bytes than come: no frame is complete in time
    // (and the bus reopens the connection, whose byte stream it can no longer frame). A garbage answer
    // that fails its check (CRC) is a BadDataError: see the RTU test.
    server.setFault(UNIT.meter, { kind: 'garbage', variant: 'bad-length' });
    const badLength = await errorOf(m.read());
    expect(badLength).toBeInstanceOf(TimeoutError);
    expect(badLength.retryable).toBe(true);
    expect(badLength.message).toMatch(/^site: reading SunSpec model 203 at address 40070 \(registers 40070\+55\): tcp .* unit 9: /);

    // Random bytes: whatever they announce, they are never taken for an answer.
    server.setFault(UNIT.meter, { kind: 'garbage' });
    const garbage = await errorOf(m.read());
    expect([BadDataError, TimeoutError].some((t) => garbage instanceof t)).toBe(true);
    expect(garbage.retryable).toBe(true);
    expect(garbage.message).toMatch(/^site: reading SunSpec model 203 at address 40070/);
    server.setFault(UNIT.meter, { kind: 'none' });
    expect(await m.read()).toEqual(good);

    // Slower than the timeout: TimeoutError; the late answer is never taken for the next read's.
    server.setFault(UNIT.meter, { kind: 'slow', delayMs: 300 });
    const slow = await errorOf(m.read());
    expect(slow).toBeInstanceOf(TimeoutError);
    expect(slow.message).toMatch(/^site: reading SunSpec model 203 at address 40070 \(registers 40070\+55\): tcp .* unit 9: FC3 40070\+55: no answer within 150 ms$/);
    server.setFault(UNIT.meter, { kind: 'none' });
    meter.sunspec.set(203, 'W', 1234);
    expect((await m.read()).powerW).toBe(1234);
    meter.sunspec.set(203, 'W', meter.powerW);
  });
});
