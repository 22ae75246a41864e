/**
 * The Stiebel Eltron WPM (ISG) front end over Modbus TCP (unit 1) with modbus-serial as an
 * independent client, decoded here from the vendor layout (/work/notes/vendor-layouts.md §3).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { ModbusTcpServer } from '../modbus/tcp-server.js';
import { closeClient, failure, tcpClient, type Client } from '../modbus/test-client.js';
import { Ticker } from '../ticker.js';
import { HeatPump } from './heat-pump.js';
import { sgStateFromInputs, StiebelWpm } from './stiebel-wpm.js';

const int16 = (raw: number) => (raw >= 0x8000 ? raw - 0x10000 : raw);

describe('sgStateFromInputs', () => {
  it('maps (on, input 1, input 2) as the vendor documents', () => {
    expect(sgStateFromInputs(1, 0, 0)).toBe(2);
    expect(sgStateFromInputs(1, 1, 0)).toBe(3);
    expect(sgStateFromInputs(1, 0, 1)).toBe(1);
    expect(sgStateFromInputs(1, 1, 1)).toBe(4);
    expect(sgStateFromInputs(0, 1, 1)).toBe(2); // SG Ready off: inputs ignored
  });
});

describe('StiebelWpm over Modbus TCP', () => {
  const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 6), manual: true });
  const hp = new HeatPump({ clock, seed: 3, initialEnergyWh: 4_321_987 });
  const wpm = new StiebelWpm(hp, { clock });
  const ticker = new Ticker(clock, 1000);
  ticker.add(hp);
  ticker.add(wpm);
  const server = new ModbusTcpServer();
  server.addUnit(1, wpm.image);
  let client: Client;
  const state = async () => (await client.readInputRegisters(5000, 1)).data[0];

  beforeAll(async () => {
    ticker.start();
    await server.start();
    client = await tcpClient('127.0.0.1', server.port, 1);
  });
  afterAll(async () => {
    ticker.stop();
    await closeClient(client);
    await server.stop();
  });

  it('temperatures as int16 × 0.1 input registers, kWh counters, state normal', async () => {
    const temps = (await client.readInputRegisters(501, 21)).data;
    expect(int16(temps[0]!) / 10).toBeCloseTo(hp.indoorC, 1);
    expect(temps[1]).toBe(210);
    expect(int16(temps[6]!) / 10).toBeCloseTo(hp.outdoorC, 1);
    expect(hp.outdoorC).toBeLessThan(0);
    expect(int16(temps[16]!) / 10).toBeCloseTo(hp.flowC, 1); // 517 buffer
    expect(temps[20]).toBe(480); // 521 hot water
    expect((await client.readInputRegisters(3501, 2)).data).toEqual([4321, 1650]);
    expect((await client.readHoldingRegisters(4000, 3)).data).toEqual([1, 0, 0]); // SG Ready on (installer)
    expect(await state()).toBe(2);
    // No power register: the electrical power is for a sub-meter to measure.
    expect((await failure(client.readInputRegisters(500, 1))).modbusCode).toBe(2);
    expect((await failure(client.readHoldingRegisters(501, 1))).modbusCode).toBe(2);
  });

  it('SG Ready inputs with FC6: blocked stops the compressor, encouraged raises the target, forced runs it flat out', async () => {
    const normalW = hp.electricalPowerW;
    expect(normalW).toBeGreaterThan(500);
    await client.writeRegister(4002, 1); // (0,1) blocked
    expect(await state()).toBe(1);
    expect(hp.electricalPowerW).toBe(0);
    clock.advance(10 * 60_000);
    await client.writeRegister(4002, 0);
    await client.writeRegister(4001, 1); // (1,0) encouraged
    expect(await state()).toBe(3);
    expect(hp.targetC).toBe(22);
    expect(int16((await client.readInputRegisters(502, 1)).data[0]!)).toBe(210); // the setpoint itself is unchanged
    clock.advance(10 * 60_000);
    await client.writeRegisters(4001, [1, 1]); // (1,1) forced, FC16 works too
    expect(await state()).toBe(4);
    expect(hp.electricalPowerW).toBe(3000);
    clock.advance(10 * 60_000);
    await client.writeRegisters(4001, [0, 0]);
    expect(await state()).toBe(2);
    // No watchdog: the state stays as written.
    clock.advance(3600_000);
    expect(await state()).toBe(2);
    expect(wpm.stateChanges.map((c) => c.state)).toEqual([1, 2, 3, 4, 2]);
    // Writing 4002 = 0 then 4001 = 1 passed through normal for a moment: one change under 10 minutes.
    expect(wpm.tooSoonStateChanges).toBe(1);
  });

  it('4000 = 0 switches SG Ready off (inputs ignored); values other than 0/1 → exception 3', async () => {
    await client.writeRegister(4000, 0);
    await client.writeRegisters(4001, [1, 1]);
    expect(await state()).toBe(2);
    expect((await failure(client.writeRegister(4001, 2))).modbusCode).toBe(3);
    expect((await failure(client.writeRegister(5000, 4))).modbusCode).toBe(2); // an input register
    await client.writeRegister(4000, 1);
    expect(await state()).toBe(4);
    await client.writeRegisters(4001, [0, 0]);
  });

  it('the heating energy counter follows the integral of the electrical power (kWh)', async () => {
    const before = hp.energyWh;
    let integralWh = 0;
    for (let s = 0; s < 3 * 3600; s++) {
      integralWh += hp.electricalPowerW / 3600;
      clock.advance(1000);
    }
    expect(hp.energyWh - before).toBeCloseTo(integralWh, 6);
    expect((await client.readInputRegisters(3501, 1)).data[0]).toBe(Math.floor(hp.energyWh / 1000));
  });
});
