/**
 * The Lambda EU-L front end over Modbus TCP (unit 1) with modbus-serial as an independent client,
 * decoded here from the vendor layout (/work/notes/vendor-layouts.md §4).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { ModbusTcpServer } from '../modbus/tcp-server.js';
import { closeClient, failure, tcpClient, type Client } from '../modbus/test-client.js';
import { Ticker } from '../ticker.js';
import { HeatPump } from './heat-pump.js';
import { LAMBDA_EXCESS_WATCHDOG_MS, LambdaHeatPump } from './lambda-heat-pump.js';

const int16 = (raw: number) => (raw >= 0x8000 ? raw - 0x10000 : raw);
const int16Raw = (v: number) => v & 0xffff;

describe('LambdaHeatPump over Modbus TCP', () => {
  const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 6), manual: true });
  // 1 234 567 Wh = 0x0012_D687: the word order shows.
  const hp = new HeatPump({ clock, seed: 3, initialEnergyWh: 1_234_567 });
  const modern = new LambdaHeatPump(hp, { clock, firmware: '>=1.1.3' });
  const hpOld = new HeatPump({ clock, seed: 3, initialEnergyWh: 1_234_567 });
  const old = new LambdaHeatPump(hpOld, { clock, firmware: '<1.1.3' });
  const ticker = new Ticker(clock, 1000);
  for (const s of [hp, modern, hpOld, old]) ticker.add(s);
  const server = new ModbusTcpServer();
  server.addUnit(1, modern.image);
  server.addUnit(2, old.image);
  let client: Client;

  beforeAll(async () => {
    ticker.start();
    await server.start();
    client = await tcpClient('127.0.0.1', server.port, 1);
  });
  afterAll(async () => {
    ticker.stop();
    modern.stop();
    old.stop();
    await closeClient(client);
    await server.stop();
  });

  it('reads temperatures (int16 × 0.1), power and state from holding registers', async () => {
    client.setID(1);
    expect(int16((await client.readHoldingRegisters(2, 1)).data[0]!) / 10).toBeCloseTo(hp.outdoorC, 1);
    expect(hp.outdoorC).toBeLessThan(0); // a cold morning: the int16 sign shows
    const em = (await client.readHoldingRegisters(100, 4)).data;
    expect(em[1]).toBe(1); // automatik
    expect(int16(em[3]!)).toBe(hp.electricalPowerW);
    expect(hp.electricalPowerW).toBeGreaterThan(500);
    expect(int16((await client.readHoldingRegisters(1012, 1)).data[0]!)).toBe(hp.electricalPowerW);
    expect(int16((await client.readHoldingRegisters(5004, 1)).data[0]!) / 10).toBeCloseTo(hp.indoorC, 1);
    expect((await client.readHoldingRegisters(5006, 1)).data).toEqual([2]);
    expect((await client.readHoldingRegisters(5050, 2)).data).toEqual([0, 210]);
  });

  it('energy at 1020 as int32: low word first from firmware 1.1.3, high word first before', async () => {
    client.setID(1);
    const modernWords = (await client.readHoldingRegisters(1020, 2)).data;
    expect(modernWords).toEqual([Math.floor(hp.energyWh) & 0xffff, Math.floor(Math.floor(hp.energyWh) / 0x10000)]);
    expect(modernWords[1]).toBe(0x12);
    client.setID(2);
    const oldWords = (await client.readHoldingRegisters(1020, 2)).data;
    expect(oldWords).toEqual([0x12, Math.floor(hpOld.energyWh) & 0xffff]);
    expect(oldWords[0]! * 0x10000 + oldWords[1]!).toBe(Math.floor(hpOld.energyWh));
    client.setID(1);
  });

  it('holding only (FC4 → 2) and writes only with FC16 (FC6 → 1, nothing written)', async () => {
    expect((await failure(client.readInputRegisters(2, 1))).modbusCode).toBe(2);
    expect((await failure(client.writeRegister(5050, 20))).modbusCode).toBe(1);
    expect(hp.flowOffsetC).toBe(0);
    expect((await failure(client.writeRegisters(103, [100]))).modbusCode).toBe(2); // read only
    expect((await failure(client.readHoldingRegisters(200, 1))).modbusCode).toBe(2);
  });

  it('5050 flow offset (−10.0..+10.0 K) and 5051 room setpoint (15.0..40.0 °C) with FC16; out of range → 3', async () => {
    const beforeW = hp.electricalPowerW;
    await client.writeRegisters(5050, [int16Raw(25)]);
    expect(hp.flowOffsetC).toBe(2.5);
    expect(hp.electricalPowerW).toBeGreaterThan(beforeW);
    expect(int16((await client.readHoldingRegisters(103, 1)).data[0]!)).toBe(hp.electricalPowerW);
    await client.writeRegisters(5050, [int16Raw(-30), 200]);
    expect([hp.flowOffsetC, hp.roomSetpointC]).toEqual([-3, 20]);
    expect(hp.electricalPowerW).toBeLessThan(beforeW);
    expect((await client.readHoldingRegisters(5050, 2)).data).toEqual([int16Raw(-30), 200]);
    expect((await failure(client.writeRegisters(5050, [int16Raw(-101)]))).modbusCode).toBe(3);
    expect((await failure(client.writeRegisters(5051, [401]))).modbusCode).toBe(3);
    expect((await failure(client.writeRegisters(5051, [149]))).modbusCode).toBe(3);
    // No watchdog on the offset: it stays until written.
    clock.advance(3 * 3600_000);
    expect((await client.readHoldingRegisters(5050, 2)).data).toEqual([int16Raw(-30), 200]);
    await client.writeRegisters(5050, [0, 210]);
  });

  it('102 PV excess power: the heat pump takes it; 60 s without a write → 0 (watchdog); a rewrite re-arms it', async () => {
    await client.writeRegisters(102, [2800]);
    expect(hp.electricalPowerW).toBe(2800);
    expect(int16((await client.readHoldingRegisters(102, 2)).data[1]!)).toBe(2800);
    clock.advance(30_000);
    await client.writeRegisters(102, [2600]); // re-armed: 60 s from now
    clock.advance(59_000);
    expect((await client.readHoldingRegisters(102, 1)).data).toEqual([2600]);
    expect(hp.electricalPowerW).toBe(2600);
    expect(modern.watchdogRemainingMs()).toBe(1000);
    clock.advance(1000);
    expect((await client.readHoldingRegisters(102, 1)).data).toEqual([0]);
    expect(hp.excessPowerW).toBe(0);
    expect(hp.electricalPowerW).toBeLessThan(2600);
    expect(int16((await client.readHoldingRegisters(103, 1)).data[0]!)).toBe(hp.electricalPowerW);
    expect(LAMBDA_EXCESS_WATCHDOG_MS).toBe(60_000);
    // A negative excess (import) is no excess.
    await client.writeRegisters(102, [int16Raw(-500)]);
    expect(int16((await client.readHoldingRegisters(102, 1)).data[0]!)).toBe(-500);
    expect(hp.electricalPowerW).toBeLessThan(2600);
  });
});
