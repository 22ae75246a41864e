/**
 * The ABL eMH front end on a Modbus ASCII line over a socat pty pair (38400 8E1, unit 1), read and
 * written with modbus-serial's ASCII client and decoded here from the vendor layout
 * (/work/notes/vendor-layouts.md §2).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { PtyPair, socatAvailable } from '../modbus/pty.js';
import { ModbusRtuServer } from '../modbus/rtu-server.js';
import { asciiClient, closeClient, failure, type Client } from '../modbus/test-client.js';
import { Ticker } from '../ticker.js';
import { ablCurrentAFromDuty, ablDutyFromCurrentA, AblEvCharger } from './abl-ev.js';
import { EvCharging } from './ev.js';

const hasSocat = socatAvailable();
// Under CI a missing Debian package is a failure, not a skip (DESIGN.md: Real parts).
if (!hasSocat && process.env['CI'] === 'true') throw new Error('socat is not installed (apt-get install -y socat); CI must run the ABL tests');

describe('ABL duty cycle encoding', () => {
  it('per mille = I / 0.6 A × 10, as the vendor lists it: 6 A 100, 16 A 266, 32 A 533', () => {
    expect([6, 16, 32].map(ablDutyFromCurrentA)).toEqual([0x0064, 0x010a, 0x0215]);
    expect(ablCurrentAFromDuty(100)).toBeCloseTo(6, 9);
    expect(ablCurrentAFromDuty(266)).toBeCloseTo(15.96, 9);
    expect(ablCurrentAFromDuty(1000)).toBe(0);
  });
});

describe.skipIf(!hasSocat)('AblEvCharger on a Modbus ASCII line', () => {
  const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 18), manual: true });
  const ev = new EvCharging({ clock, arrivals: false });
  const abl = new AblEvCharger(ev);
  const ticker = new Ticker(clock, 1000);
  ticker.add(ev);
  ticker.add(abl);
  let pty: PtyPair;
  let line: ModbusRtuServer;
  let client: Client;
  const state = async () => (await client.readHoldingRegisters(0x0004, 1)).data[0]! >> 8;

  beforeAll(async () => {
    ticker.start();
    pty = await PtyPair.start();
    line = new ModbusRtuServer({ path: pty.pathA, baudRate: 38400, framing: 'ascii' });
    line.addUnit(1, abl.image);
    await line.start();
    client = await asciiClient(pty.pathB, 38400, 1, 500);
  });
  afterAll(async () => {
    ticker.stop();
    await closeClient(client);
    await line.stop();
    await pty.stop();
  });

  it('no vehicle: state 0xA1, phase currents at the 0x03E8 sentinel, setpoint 16 A as 266 per mille', async () => {
    expect((await client.readHoldingRegisters(0x0001, 2)).data).toEqual([0x0112, 0x0001]);
    expect((await client.readHoldingRegisters(0x0004, 2)).data).toEqual([0xa100, 0]);
    expect((await client.readHoldingRegisters(0x0014, 1)).data).toEqual([266]);
    expect((await client.readHoldingRegisters(0x002e, 5)).data).toEqual([0xa100, 0, 1000, 1000, 1000]);
  });

  it('a vehicle charging: 0xC2 and phase currents in 0.1 A; power only as currents × 230 V', async () => {
    ev.plugIn({ energyWantedWh: 20_000, socPct: 30 });
    clock.advance(1000);
    const status = (await client.readHoldingRegisters(0x002e, 5)).data;
    expect(status[0]! >> 8).toBe(0xc2);
    expect(status.slice(2)).toEqual([160, 160, 160]); // 266 ‰ → 15.96 A
    const powerW = status.slice(2).reduce((sum, dA) => sum + (dA / 10) * 230, 0);
    expect(Math.abs(powerW - ev.powerW)).toBeLessThanOrEqual(3 * 0.05 * 230); // 0.1 A resolution
    expect(ev.powerW).toBe(Math.round(3 * 230 * 15.96));
  });

  it('writes only with FC16: FC6 → exception 1, nothing changes', async () => {
    expect((await failure(client.writeRegister(0x0014, 100))).modbusCode).toBe(1);
    expect((await client.readHoldingRegisters(0x0014, 1)).data).toEqual([266]);
    expect((await failure(client.readInputRegisters(0x0004, 1))).modbusCode).toBe(2);
  });

  it('setpoint as a duty cycle: 100 = 6 A; below 6 A → exception 3; 1000 pauses (0xB2)', async () => {
    await client.writeRegisters(0x0014, [100]);
    expect(ev.offeredCurrentA).toBeCloseTo(6, 9);
    expect(ev.powerW).toBe(3 * 230 * 6);
    expect((await failure(client.writeRegisters(0x0014, [99]))).modbusCode).toBe(3);
    expect((await failure(client.writeRegisters(0x0014, [534]))).modbusCode).toBe(3);
    await client.writeRegisters(0x0014, [1000]);
    expect(ev.powerW).toBe(0);
    clock.advance(1000);
    expect(await state()).toBe(0xb2);
    expect((await client.readHoldingRegisters(0x002e, 5)).data.slice(2)).toEqual([0, 0, 0]); // plugged: measured, 0
    await client.writeRegisters(0x0014, [0x0215]); // 32 A: the vehicle takes its 16 A
    expect(ev.powerW).toBe(3 * 230 * 16);
    clock.advance(1000);
    expect(await state()).toBe(0xc2);
  });

  it('0x0005: 0xE0E0 disables (0xE0), 0xA1A1 enables; other values → exception 3; reads 0', async () => {
    await client.writeRegisters(0x0005, [0xe0e0]);
    expect(ev.powerW).toBe(0);
    expect(await state()).toBe(0xe0);
    expect((await client.readHoldingRegisters(0x0005, 1)).data).toEqual([0]);
    expect((await failure(client.writeRegisters(0x0005, [0x1234]))).modbusCode).toBe(3);
    clock.advance(3600_000); // no watchdog: still disabled an hour later
    expect(await state()).toBe(0xe0);
    await client.writeRegisters(0x0005, [0xa1a1]);
    expect(await state()).toBe(0xc2);
    expect(ev.powerW).toBeGreaterThan(0);
    // Unplugged: back to 0xA1 and the sentinels.
    ev.unplug();
    clock.advance(1000);
    expect((await client.readHoldingRegisters(0x002e, 5)).data).toEqual([0xa100, 0, 1000, 1000, 1000]);
  });

  it('has no power or energy register, and nothing in between its documented blocks', async () => {
    expect((await failure(client.readHoldingRegisters(0x0003, 1))).modbusCode).toBe(2);
    expect((await failure(client.readHoldingRegisters(0x0006, 1))).modbusCode).toBe(2);
    expect((await failure(client.readHoldingRegisters(0x0033, 1))).modbusCode).toBe(2);
  });
});
