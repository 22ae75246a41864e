/**
 * The Eastron SDM120 front end over Modbus TCP (as behind an RS-485 gateway) with modbus-serial as
 * an independent client, decoded here from the vendor layout (/work/notes/vendor-layouts.md §5).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { VirtualClock } from '../clock.js';
import { ModbusTcpServer } from '../modbus/tcp-server.js';
import { closeClient, failure, tcpClient, type Client } from '../modbus/test-client.js';
import { Ticker } from '../ticker.js';
import { Sdm120 } from './sdm120.js';

/** float32 from two registers, high word first. */
function float32(words: number[], at = 0): number {
  const buf = Buffer.alloc(4);
  buf.writeUInt16BE(words[at]!, 0);
  buf.writeUInt16BE(words[at + 1]!, 2);
  return buf.readFloatBE(0);
}

describe('Sdm120 over Modbus TCP', () => {
  const clock = new VirtualClock({ startTimeMs: Date.UTC(2026, 0, 14, 12), manual: true });
  let circuitW = 1500;
  const meter = new Sdm120({ powerSource: () => circuitW, initialImportWh: 1_000_000, initialExportWh: 2000 });
  const ticker = new Ticker(clock, 1000);
  ticker.add(meter);
  const server = new ModbusTcpServer();
  server.addUnit(3, meter.image);
  let client: Client;

  beforeAll(async () => {
    ticker.start();
    await server.start();
    client = await tcpClient('127.0.0.1', server.port, 3);
  });
  afterAll(async () => {
    ticker.stop();
    await closeClient(client);
    await server.stop();
  });

  it('float32 input registers, high word first: voltage, current, power, frequency, energies', async () => {
    clock.advance(1000);
    const v = float32((await client.readInputRegisters(0x00, 2)).data);
    expect(v).toBeGreaterThan(227.9);
    expect(v).toBeLessThan(232.1);
    expect(float32((await client.readInputRegisters(0x06, 2)).data)).toBeCloseTo(1500 / v, 4);
    expect(float32((await client.readInputRegisters(0x0c, 2)).data)).toBe(1500);
    const block = (await client.readInputRegisters(0x46, 6)).data;
    expect(float32(block, 0)).toBe(50);
    expect(float32(block, 2)).toBeCloseTo(1000 + 1500 / 3600 / 1000, 3);
    expect(float32(block, 4)).toBeCloseTo(2, 5);
    expect(float32((await client.readInputRegisters(0x156, 2)).data)).toBeCloseTo(1002 + 1500 / 3600 / 1000, 3);
  });

  it('import and export kWh integrate the measured power', () => {
    const import0 = meter.importWh;
    const export0 = meter.exportWh;
    let importWh = 0;
    let exportWh = 0;
    for (let s = 0; s < 7200; s++) {
      circuitW = s < 3600 ? 2000 + (s % 100) : -800; // an hour consuming, an hour feeding back
      clock.advance(1000);
      // The meter integrates the power it measured at the previous tick.
      const heldW = s === 0 ? 1500 : s <= 3600 ? 2000 + ((s - 1) % 100) : -800;
      if (heldW > 0) importWh += heldW / 3600;
      else exportWh -= heldW / 3600;
    }
    expect(meter.importWh - import0).toBeCloseTo(importWh, 6);
    expect(meter.exportWh - export0).toBeCloseTo(exportWh, 6);
    circuitW = 1500;
    clock.advance(1000);
  });

  it('refuses reads of more than 40 registers (exception 3), FC3 (2), and reads that split a value or cover a gap (2)', async () => {
    expect((await failure(client.readInputRegisters(0x46, 41))).modbusCode).toBe(3);
    expect((await failure(client.readInputRegisters(0x46, 40))).modbusCode).toBe(2); // 40 passes the count, not the gap
    expect((await failure(client.readInputRegisters(0x0d, 2))).modbusCode).toBe(2); // starts inside power
    expect((await failure(client.readInputRegisters(0x0c, 1))).modbusCode).toBe(2); // ends inside power
    expect((await failure(client.readInputRegisters(0x46, 3))).modbusCode).toBe(2); // ends inside import
    expect((await failure(client.readInputRegisters(0x00, 8))).modbusCode).toBe(2); // 0x02..0x05 not there
    expect((await failure(client.readHoldingRegisters(0x0c, 2))).modbusCode).toBe(2);
    expect((await failure(client.writeRegisters(0x0c, [0, 0]))).modbusCode).toBe(2);
    expect((await client.readInputRegisters(0x46, 6)).data).toHaveLength(6);
  });
});
