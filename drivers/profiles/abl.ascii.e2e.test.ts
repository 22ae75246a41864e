/**
 * End to end: the ABL eMH1 profile over Modbus ASCII at 38400 8E1 on a real serial line (a socat
 * pseudo-terminal pair), against the ABL simulator (simulators/devices/abl-ev.ts, written from the
 * vendor's layout). Quirks: ASCII framing with LRC, FC16-only writes, the state code in a high byte,
 * the duty-cycle current encoding with its 1000 "no current" sentinel, and power derived from the
 * phase currents (1000 = not measured while no vehicle is connected).
 * Needs the Debian package socat: skipped with a message without it, failed under CI=true.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isEvCharger, type EvCharger } from '../classes.js';
import { systemClock } from '../clock.js';
import { RefusedError, TimeoutError } from '../errors.js';
import { silentLog } from '../log.js';
import { createModbusBus } from '../modbus/bus.js';
import type { ModbusBus } from '../modbus/types.js';
import { VirtualClock } from '../../simulators/clock.js';
import { AblEvCharger } from '../../simulators/devices/abl-ev.js';
import { EvCharging } from '../../simulators/devices/ev.js';
import { PtyPair, socatAvailable } from '../../simulators/modbus/pty.js';
import { ModbusRtuServer } from '../../simulators/modbus/rtu-server.js';
import { Ticker } from '../../simulators/ticker.js';
import { createProfileDevice } from './device.js';
import { loadProfile } from './load.js';
import { createModbusProfileTransport } from './modbus-transport.js';

const hasSocat = socatAvailable();
if (!hasSocat && process.env.CI === 'true') throw new Error('socat is not installed (apt-get install -y socat); CI must run the serial tests');
if (!hasSocat) console.warn('socat is not installed: the Modbus ASCII tests are not run (apt-get install -y socat)');

describe.runIf(hasSocat)('abl-emh1 over Modbus ASCII at 38400 8E1', () => {
  const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 18), manual: true });
  const ev = new EvCharging({ clock, maxCurrentA: 16, phases: 3 });
  const abl = new AblEvCharger(ev);
  const ticker = new Ticker(clock, 1000);
  ticker.add(ev);
  ticker.add(abl);
  ticker.start();
  let pty: PtyPair;
  let server: ModbusRtuServer;
  let bus: ModbusBus;
  let device: EvCharger;

  beforeAll(async () => {
    pty = await PtyPair.start();
    server = new ModbusRtuServer({ path: pty.pathA, baudRate: 38400, framing: 'ascii' });
    server.addUnit(1, abl.image);
    await server.start();
    const profile = loadProfile('abl-emh1');
    const serial = profile.modbus!.serial!;
    expect(serial).toMatchObject({ baudRate: 38400, parity: 'even', framing: 'ascii' });
    bus = createModbusBus({
      connection: { rtu: { path: pty.pathB, baudRate: serial.baudRate, parity: serial.parity, dataBits: serial.dataBits, stopBits: serial.stopBits, framing: 'ascii' } },
      clock: systemClock,
      log: silentLog,
      timeoutMs: 500,
    });
    await bus.start();
    const d = createProfileDevice({ id: 'abl', profile, transport: createModbusProfileTransport({ unit: bus.unit(1, { backoff: { failuresBeforeBackoff: 100 } }), profile }), clock, log: silentLog });
    if (!isEvCharger(d)) throw new Error('expected an EV charger');
    device = d;
  });

  afterAll(async () => {
    ticker.stop();
    await bus?.stop();
    await server?.stop();
    await pty?.stop();
  });

  it('reads an empty box: no vehicle, power 0 from "not measured" currents', async () => {
    expect(await device.read()).toMatchObject({ plugged: false, charging: false, enabled: true, powerW: 0, currentLimitA: expect.closeTo(16, 0) });
  });

  it('reads a charging vehicle, power from the phase currents', async () => {
    ev.plugIn({ energyWantedWh: 20_000 });
    clock.advance(1000);
    const r = await device.read();
    expect(r).toMatchObject({ plugged: true, charging: true, enabled: true });
    expect(r.powerW).toBeCloseTo(ev.powerW, -2); // 0.1 A resolution × 3 phases
  });

  it('sets the current as a duty cycle (FC16 only: the box refuses FC6), pauses and restores', async () => {
    await device.setCurrentA(10);
    expect(abl.dutyPerMille).toBe(166);
    // The vehicle reads the duty cycle as IEC 61851 says (0.6 A per percent): 16.6 ‰ → 9.96 A.
    expect(ev.offeredCurrentA).toBeCloseTo(9.96, 5);
    await expect(device.setCurrentA(40)).rejects.toBeInstanceOf(RefusedError);
    await device.pause();
    expect(abl.disabled).toBe(true);
    expect(ev.powerW).toBe(0);
    clock.advance(1000);
    expect(await device.read()).toMatchObject({ plugged: false, enabled: false, powerW: 0 });
    await device.restore();
    expect(abl.disabled).toBe(false);
    // No installer limit given here: the safe default of 16 A (the profile would allow 32): duty 266 ‰.
    expect(abl.dutyPerMille).toBe(Math.round(16 * 16.6));
    expect(ev.offeredCurrentA).toBeCloseTo((266 * 0.6) / 10, 5);
  });

  it('a corrupt LRC and no answer surface as typed errors; the line recovers', async () => {
    server.setFault(1, { kind: 'garbage', variant: 'bad-crc' });
    await expect(device.read()).rejects.toMatchObject({ retryable: true });
    server.setFault(1, { kind: 'no-answer' });
    await expect(device.read()).rejects.toBeInstanceOf(TimeoutError);
    server.setFault(1, { kind: 'none' });
    await new Promise((r) => setTimeout(r, 100));
    expect((await device.read()).plugged).toBe(true);
  });
});
