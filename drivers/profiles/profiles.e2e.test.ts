/**
 * End to end: every shipped Modbus profile through the generic class layer and the real Modbus TCP
 * transport, against the simulators (simulators/devices/*), which encode the vendors' layouts with
 * their own code. Quirks: Phoenix's low-word-first values and coil, Lambda's FC16-only writes and
 * word-swapped energy, the SDM120's 40-register reads and float32s, Stiebel's SG Ready sequences.
 */
import { readFileSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { isEvCharger, isMeter, isSetpointHvac, isSgReadyHvac, type Device } from '../classes.js';
import { systemClock, type Clock } from '../clock.js';
import { BadDataError, DisconnectedError, ModbusExceptionError, RefusedError, TimeoutError } from '../errors.js';
import { silentLog } from '../log.js';
import { createModbusBus } from '../modbus/bus.js';
import type { ModbusBus } from '../modbus/types.js';
import { VirtualClock } from '../../simulators/clock.js';
import { HeatPump } from '../../simulators/devices/heat-pump.js';
import { StiebelWpm } from '../../simulators/devices/stiebel-wpm.js';
import { SimulatedHome } from '../../simulators/home.js';
import { ModbusTcpServer } from '../../simulators/modbus/tcp-server.js';
import { createProfileDevice } from './device.js';
import { loadProfile, parseProfileText, resolveProfilePath } from './load.js';
import { createModbusProfileTransport } from './modbus-transport.js';

describe('shipped Modbus profiles against the simulators', () => {
  let home: SimulatedHome | undefined;
  const buses: ModbusBus[] = [];
  const servers: ModbusTcpServer[] = [];
  afterEach(async () => {
    for (const b of buses.splice(0)) await b.stop();
    for (const s of servers.splice(0)) await s.stop();
    await home?.stop();
    home = undefined;
  });

  async function deviceAt(at: { host: string; port: number; unitId: number }, profileName: string, clock: Clock = systemClock, timeoutMs = 1000): Promise<{ device: Device; bus: ModbusBus }> {
    const profile = loadProfile(profileName);
    const bus = createModbusBus({ connection: { tcp: { host: at.host, port: at.port } }, clock: systemClock, log: silentLog, timeoutMs });
    await bus.start();
    buses.push(bus);
    const unit = bus.unit(at.unitId, { maxReadRegisters: profile.modbus!.maxReadRegisters, backoff: { failuresBeforeBackoff: 100 } });
    const device = createProfileDevice({ id: profileName, profile, transport: createModbusProfileTransport({ unit, profile }), clock, log: silentLog });
    return { device, bus };
  }

  async function flexibleHome(): Promise<{ home: SimulatedHome; clock: VirtualClock }> {
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 18), manual: true });
    home = await SimulatedHome.start({ clock, seed: 3, baseLoadW: 500, flexibleLoads: true, evEnergyWantedWh: 20_000 });
    clock.advance(1000);
    return { home, clock };
  }

  it('phoenix-ev-cc: reads the session (low word first), sets the current, pauses and restores', async () => {
    const { home, clock } = await flexibleHome();
    const { device, bus } = await deviceAt(home.device('ev').modbus!, 'phoenix-ev-cc');
    if (!isEvCharger(device)) throw new Error('expected an EV charger');
    const before = bus.stats.transactions;
    const r = await device.read();
    // One read per register kind plus the coil: input 100..129, holding 528, coil 400.
    expect(bus.stats.transactions - before).toBe(3);
    expect(r).toMatchObject({ plugged: true, charging: true, enabled: true, currentLimitA: 16 });
    expect(r.powerW).toBe(home.ev!.powerW);
    expect(r.powerW).toBe(3 * 230 * 16);
    // A session energy above 65 535 Wh would be garbage if the word order were wrong: check it decodes.
    home.ev!.vehicle!.energyWantedWh = 100_000;
    home.ev!.sessionEnergyWh = 70_123;
    clock.advance(1000);
    expect((await device.read()).sessionEnergyWh).toBe(Math.round(home.ev!.sessionEnergyWh));

    await device.setCurrentA(10);
    expect(home.ev!.offeredCurrentA).toBe(10);
    expect(home.ev!.powerW).toBe(3 * 230 * 10);
    await expect(device.setCurrentA(5)).rejects.toBeInstanceOf(RefusedError);
    await expect(device.setCurrentA(81)).rejects.toBeInstanceOf(RefusedError); // beyond the profile range (no installer limit given here)
    await device.pause();
    expect(home.ev!.enabled).toBe(false);
    expect(home.ev!.powerW).toBe(0);
    clock.advance(1000);
    expect(await device.read()).toMatchObject({ enabled: false, charging: false, plugged: true, powerW: 0 });
    await device.restore();
    expect(home.ev!.enabled).toBe(true);
    // The controller clamps to its installation maximum (register 300).
    expect(home.ev!.offeredCurrentA).toBe(Math.min(device.limits.maxCurrentA, home.ev!.maxCurrentA));
    expect(device.revert).toEqual({ kind: 'none' });
  });

  it('lambda-eu-l: reads temperatures, power and the word-swapped energy; offsets with FC16 within limits', async () => {
    const { home, clock } = await flexibleHome();
    const { device } = await deviceAt(home.device('heat-pump').modbus!, 'lambda-eu-l');
    if (!isSetpointHvac(device)) throw new Error('expected a setpoint HVAC');
    expect(isSgReadyHvac(device)).toBe(false);
    const hp = home.heatPump!;
    hp.energyWh = 5_123_456; // > 2^16: a wrong word order cannot pass
    clock.advance(1000);
    const r = await device.read();
    expect(r.powerW).toBe(hp.electricalPowerW);
    expect(r.energyWh).toBe(Math.round(hp.energyWh));
    expect(r.indoorC).toBeCloseTo(hp.indoorC, 1);
    expect(r.outdoorC).toBeCloseTo(hp.outdoorC, 1);
    expect(r.setpointOffsetC).toBe(0);
    expect(r.mode).toBe('automatic');
    const powerBefore = hp.electricalPowerW;
    // The device answers FC6 with exception 1: the profile writes FC16, so this works.
    await device.setSetpointOffsetC(-3);
    expect(hp.flowOffsetC).toBe(-3);
    expect(hp.electricalPowerW).toBeLessThan(powerBefore);
    await expect(device.setSetpointOffsetC(-3.5)).rejects.toBeInstanceOf(RefusedError); // beyond maxOffsetC (3 by default)
    await device.restore();
    expect(hp.flowOffsetC).toBe(0);
  });

  it('eastron-sdm120: float32 values in reads of at most 40 registers, kWh as Wh', async () => {
    const { home } = await flexibleHome();
    const { device, bus } = await deviceAt(home.device('hp-meter').modbus!, 'eastron-sdm120');
    if (!isMeter(device)) throw new Error('expected a meter');
    const before = bus.stats.transactions;
    const r = await device.read();
    // The meter refuses reads over addresses it does not have: 0x00, 0x0C and 0x46..0x4B (one read of 6).
    expect(bus.stats.transactions - before).toBe(3);
    expect(r.powerW).toBeCloseTo(home.hpMeter!.powerW, 3);
    expect(r.importWh).toBeCloseTo(home.hpMeter!.importWh, -1);
    expect(r.frequencyHz).toBe(50);
  });

  it('stiebel-wpm-sgready: SG Ready states as register sequences; a change sooner than 10 minutes is refused and writes nothing', async () => {
    const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 6), manual: true });
    const hp = new HeatPump({ clock, seed: 2 });
    const wpm = new StiebelWpm(hp);
    const server = new ModbusTcpServer();
    server.addUnit(1, wpm.image);
    await server.start();
    servers.push(server);
    const { device } = await deviceAt({ host: server.host, port: server.port, unitId: 1 }, 'stiebel-wpm-sgready', clock);
    if (!isSgReadyHvac(device)) throw new Error('expected an SG Ready HVAC');
    expect(device.minSwitchIntervalMs).toBe(600_000);
    expect((await device.read()).sgReady).toBe('normal');
    await device.setSgReady('blocked');
    expect(hp.sgReady).toBe(1);
    expect(hp.electricalPowerW).toBe(0);
    expect((await device.read()).sgReady).toBe('blocked');
    clock.advance(60_000);
    await expect(device.setSgReady('forced')).rejects.toBeInstanceOf(RefusedError);
    expect(hp.sgReady).toBe(1); // nothing written
    clock.advance(600_000);
    await device.setSgReady('forced');
    expect(hp.sgReady).toBe(4);
    expect(hp.electricalPowerW).toBe(3000);
    // Restoring to normal is always allowed.
    await device.restore();
    expect(hp.sgReady).toBe(2);
  });

  it('faults reach the read as typed errors, and the device reads again once they clear', async () => {
    const { home } = await flexibleHome();
    const { device } = await deviceAt(home.device('ev').modbus!, 'phoenix-ev-cc', systemClock, 300);
    const faults = home.faults('ev');
    faults.set({ kind: 'no-answer' });
    await expect(device.read()).rejects.toBeInstanceOf(TimeoutError);
    faults.set({ kind: 'exception', code: 4 });
    await expect(device.read()).rejects.toBeInstanceOf(ModbusExceptionError);
    faults.set({ kind: 'garbage', variant: 'bad-length' });
    await expect(device.read()).rejects.toMatchObject({ retryable: true });
    faults.set({ kind: 'slow', delayMs: 600 });
    await expect(device.read()).rejects.toBeInstanceOf(TimeoutError);
    faults.set({ kind: 'drop-connection' });
    await expect(device.read()).rejects.toBeInstanceOf(DisconnectedError);
    faults.clear();
    // The transport reconnects after dropping a stream it could not frame any more.
    let reading: unknown;
    for (let i = 0; i < 20 && reading === undefined; i++) {
      reading = await device.read().catch(() => undefined);
      if (reading === undefined) await new Promise((r) => setTimeout(r, 100));
    }
    expect(reading).toMatchObject({ plugged: true });
  });

  it('a sentinel makes a value unknown; a required value unknown fails the read with the reason', async () => {
    const { home, clock } = await flexibleHome();
    const at = home.device('heat-pump').modbus!;
    const text = readFileSync(resolveProfilePath('lambda-eu-l'), 'utf8')
      .replace('profile: lambda-eu-l', 'profile: lambda-test')
      .replace(/(outdoor: +\{ address: 2, +type: holding, encoding: int16)( \})/, '$1, sentinels: [-32768]$2')
      .replace(/(power: +\{ address: 103, +type: holding, encoding: int16)( \})/, '$1, sentinels: [32767]$2');
    expect(text).toContain('sentinels: [-32768]');
    expect(text).toContain('sentinels: [32767]');
    const profile = parseProfileText(text, 'lambda-test.yaml');
    const bus = createModbusBus({ connection: { tcp: { host: at.host, port: at.port } }, clock: systemClock, log: silentLog });
    await bus.start();
    buses.push(bus);
    const device = createProfileDevice({ id: 'hp', profile, transport: createModbusProfileTransport({ unit: bus.unit(1), profile }), clock, log: silentLog });
    home.lambda!.image.set(2, [0x8000]);
    const r = (await device.read()) as { outdoorC?: number; indoorC?: number };
    expect(r.outdoorC).toBeUndefined();
    expect(r.indoorC).toBeCloseTo(home.heatPump!.indoorC, 1);
    // powerW is optional for HVAC: unknown, not made up.
    home.lambda!.image.set(103, [0x7fff]);
    expect((await device.read()) as { powerW?: number }).not.toHaveProperty('powerW');
    // For a class that requires it, an unknown value fails the read and says why.
    const evText = readFileSync(resolveProfilePath('phoenix-ev-cc'), 'utf8').replace(
      'power:         { address: 120, type: input, encoding: uint32, wordOrder: low-first }',
      'power:         { address: 120, type: input, encoding: uint32, wordOrder: low-first, sentinels: [4294967295] }',
    );
    const evProfile = parseProfileText(evText, 'phoenix-test.yaml');
    const evAt = home.device('ev').modbus!;
    const evBus = createModbusBus({ connection: { tcp: { host: evAt.host, port: evAt.port } }, clock: systemClock, log: silentLog });
    await evBus.start();
    buses.push(evBus);
    const ev = createProfileDevice({ id: 'ev', profile: evProfile, transport: createModbusProfileTransport({ unit: evBus.unit(255), profile: evProfile }), clock, log: silentLog });
    await ev.read();
    home.evCharger!.image.set(120, [0xffff, 0xffff]);
    await expect(ev.read()).rejects.toThrow(BadDataError);
    await expect(ev.read()).rejects.toThrow(/no usable powerW \(.*4294967295.*\)/);
  });
});
