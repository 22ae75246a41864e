/**
 * The Phoenix Contact front end read and written over Modbus TCP with modbus-serial as an
 * independent client, decoded here by hand from the vendor layout (/work/notes/vendor-layouts.md §1).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { ModbusTcpServer } from '../modbus/tcp-server.js';
import { closeClient, failure, tcpClient, type Client } from '../modbus/test-client.js';
import { Ticker } from '../ticker.js';
import { EvCharging } from './ev.js';
import { PhoenixEvCharger, uint32LowWordFirst } from './phoenix-ev.js';

/** uint32 from two registers, low word first. */
const lowFirst = (words: number[], at = 0) => words[at]! + words[at + 1]! * 0x10000;

describe('PhoenixEvCharger over Modbus TCP (unit 255)', () => {
  const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 18), manual: true });
  const ev = new EvCharging({ clock, arrivals: false, initialEnergyWh: 70_000 + 3 * 65_536 });
  const charger = new PhoenixEvCharger(ev);
  const ticker = new Ticker(clock, 1000);
  ticker.add(ev);
  ticker.add(charger);
  const server = new ModbusTcpServer();
  server.addUnit(255, charger.image);
  let client: Client;

  beforeAll(async () => {
    ticker.start();
    await server.start();
    client = await tcpClient('127.0.0.1', server.port, 255);
  });
  afterAll(async () => {
    ticker.stop();
    await closeClient(client);
    await server.stop();
  });

  it('encodes uint32 low word first', () => {
    expect(uint32LowWordFirst(0x12345678)).toEqual([0x5678, 0x1234]);
    expect(uint32LowWordFirst(-5)).toEqual([0, 0]);
  });

  it('no vehicle: state A (ASCII 65), nothing flowing; installation maximum 16 A in holding 300', async () => {
    expect((await client.readInputRegisters(100, 1)).data).toEqual([65]);
    expect((await client.readHoldingRegisters(300, 1)).data).toEqual([16]);
    expect((await client.readHoldingRegisters(528, 1)).data).toEqual([16]);
    expect((await client.readCoils(400, 1)).data[0]).toBe(true);
    const inputs = (await client.readInputRegisters(100, 30)).data;
    expect(lowFirst(inputs, 20)).toBe(0); // power
    expect(lowFirst(inputs, 8)).toBe(230); // voltage L1
  });

  it('a vehicle charging: state C, currents in mA, power and energy as uint32 low word first', async () => {
    ev.plugIn({ energyWantedWh: 40_000, socPct: 20 });
    clock.advance(3600_000); // an hour at 11 040 W
    const inputs = (await client.readInputRegisters(100, 30)).data;
    expect(inputs[0]).toBe('C'.charCodeAt(0));
    expect(lowFirst(inputs, 2)).toBe(3600); // charging time, s
    for (let i = 0; i < 3; i++) {
      expect(lowFirst(inputs, 8 + 2 * i)).toBe(230);
      expect(lowFirst(inputs, 14 + 2 * i)).toBe(16_000);
    }
    expect(lowFirst(inputs, 20)).toBe(11_040);
    // Session energy 11 040 Wh: above 65 535 would show the word order; the lifetime counter does.
    expect(lowFirst(inputs, 28)).toBe(Math.round(ev.sessionEnergyWh));
    expect(ev.sessionEnergyWh).toBeCloseTo(11_040, 6);
    const lifetime = (await client.readHoldingRegisters(904, 2)).data;
    expect(lowFirst(lifetime)).toBe(Math.round(ev.lifetimeEnergyWh));
    expect(lifetime[1]).toBe(4); // 70 000 + 196 608 + 11 040 = 277 648 = 4 × 65 536 + 15 504
    expect(lifetime[0]).toBe(15_504);
  });

  it('setpoint 528 with FC6: 6..80 A, clamped to register 300; below 6 A → exception 3', async () => {
    await client.writeRegister(528, 10);
    expect((await client.readHoldingRegisters(528, 1)).data).toEqual([10]);
    expect(ev.powerW).toBe(3 * 230 * 10);
    await client.writeRegister(528, 32);
    expect((await client.readHoldingRegisters(528, 1)).data).toEqual([16]);
    expect(ev.powerW).toBe(3 * 230 * 16);
    expect((await failure(client.writeRegister(528, 5))).modbusCode).toBe(3);
    expect((await failure(client.writeRegister(528, 81))).modbusCode).toBe(3);
    expect((await client.readHoldingRegisters(528, 1)).data).toEqual([16]);
    await client.writeRegisters(528, [8]); // FC16 is taken too
    expect(ev.offeredCurrentA).toBe(8);
    // Read-only and input registers do not take writes.
    expect((await failure(client.writeRegister(300, 32))).modbusCode).toBe(2);
    expect((await failure(client.writeRegister(100, 67))).modbusCode).toBe(2);
  });

  it('coil 400 pauses and resumes charging (FC5, FC15); no watchdog', async () => {
    await client.writeCoil(400, false);
    expect((await client.readCoils(400, 1)).data[0]).toBe(false);
    expect(ev.powerW).toBe(0);
    clock.advance(1000);
    expect((await client.readInputRegisters(100, 1)).data).toEqual(['B'.charCodeAt(0)]);
    expect(lowFirst((await client.readInputRegisters(120, 2)).data)).toBe(0);
    clock.advance(3600_000); // an hour later it is still paused
    expect(ev.powerW).toBe(0);
    await client.writeCoils(400, [true]);
    expect(ev.powerW).toBe(3 * 230 * 8);
    clock.advance(1000);
    expect((await client.readInputRegisters(100, 1)).data).toEqual(['C'.charCodeAt(0)]);
  });

  it('keeps input and holding apart: FC3 on an input register and FC4 on a holding register → exception 2', async () => {
    expect((await failure(client.readHoldingRegisters(100, 1))).modbusCode).toBe(2);
    expect((await failure(client.readInputRegisters(528, 1))).modbusCode).toBe(2);
    expect((await failure(client.readCoils(401, 1))).modbusCode).toBe(2);
  });
});
