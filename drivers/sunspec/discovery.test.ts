/**
 * Discovery against FakeUnit, an in-memory fake of our own ModbusUnit interface (see fake-unit.ts).
 */
import { describe, expect, it } from 'vitest';
import { BadDataError, ModbusExceptionError, NotSupportedError, TimeoutError } from '../errors.js';
import { discoverSunSpec } from './discovery.js';
import { FakeUnit } from './fake-unit.js';
import type { ReadOptions, RegisterKind } from '../modbus/types.js';

/** A FakeUnit whose reads at the given addresses are answered with a Modbus exception. */
class ExceptionUnit extends FakeUnit {
  readonly exceptionAt = new Map<number, number>();
  override async readRegisters(kind: RegisterKind, address: number, count: number, options?: ReadOptions): Promise<Uint16Array> {
    const code = this.exceptionAt.get(address);
    if (code !== undefined) {
      this.transactions.push({ type: 'read', kind, address, count, priority: options?.priority });
      throw new ModbusExceptionError(`${this.label}: FC3 exception ${code}`, 3, code);
    }
    return super.readRegisters(kind, address, count, options);
  }
}

/** A model header followed by L zero registers. */
const model = (id: number, L: number) => [id, L, ...new Array<number>(L).fill(0)];
const SUNS = [0x5375, 0x6e53];
const END = [0xffff, 0];

describe('discoverSunSpec', () => {
  it('finds the marker at 40000 and walks the model chain to the end marker', async () => {
    const unit = new FakeUnit(1);
    unit.set(40000, [...SUNS, ...model(1, 66), ...model(103, 50), ...model(120, 26), ...model(64110, 10), ...model(123, 24), ...END]);
    const d = await discoverSunSpec(unit);
    expect(d.baseAddress).toBe(40000);
    expect(d.models).toEqual([
      { id: 1, address: 40002, length: 66 },
      { id: 103, address: 40070, length: 50 },
      { id: 120, address: 40122, length: 26 },
      { id: 64110, address: 40150, length: 10 }, // unknown (vendor) model: listed
      { id: 123, address: 40162, length: 24 },
    ]);
    // marker, five headers, end marker: 2 registers each
    expect(unit.reads.map((r) => [r.address, r.count])).toEqual([
      [40000, 2],
      [40002, 2],
      [40070, 2],
      [40122, 2],
      [40150, 2],
      [40162, 2],
      [40188, 2],
    ]);
  });

  it('tries the next base after a Modbus exception or a missing marker', async () => {
    const unit = new FakeUnit(3);
    unit.set(0, [0x1234, 0x5678]); // something at 0, but not SunSpec
    unit.set(50000, [...SUNS, ...model(1, 65), ...model(203, 105), ...END]);
    const d = await discoverSunSpec(unit);
    expect(d.baseAddress).toBe(50000);
    expect(d.models.map((m) => [m.id, m.address])).toEqual([
      [1, 50002],
      [203, 50069],
    ]);
    expect(unit.reads.slice(0, 3).map((r) => r.address)).toEqual([40000, 0, 50000]);
  });

  it('looks only where it is told to', async () => {
    const unit = new FakeUnit();
    unit.set(0, [...SUNS, ...model(1, 66), ...END]);
    const d = await discoverSunSpec(unit, { bases: [0] });
    expect(d.baseAddress).toBe(0);
    expect(unit.reads[0]!.address).toBe(0);
  });

  it('reports NotSupportedError naming the unit and every base tried', async () => {
    const unit = new FakeUnit(7, 'tcp 127.0.0.1:5020 unit 7');
    unit.set(0, [0, 0]);
    const err = await discoverSunSpec(unit).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(NotSupportedError);
    const message = (err as Error).message;
    expect(message).toContain('tcp 127.0.0.1:5020 unit 7');
    expect(message).toMatch(/40000 \(.*illegal data address\)/);
    expect(message).toMatch(/0 \(read 0x0000 0x0000, not "SunS"\)/);
    expect(message).toContain('50000');
  });

  it('lets a timeout through: a silent device is not "not SunSpec"', async () => {
    const unit = new FakeUnit();
    unit.timeoutAt.add(40000);
    await expect(discoverSunSpec(unit)).rejects.toBeInstanceOf(TimeoutError);
    expect(unit.reads).toHaveLength(1);
  });

  it('an exception ≥ 4 (busy, gateway target failed) is no answer about SunSpec: retryable, never NotSupportedError', async () => {
    const unit = new ExceptionUnit(42, 'tcp gw unit 42');
    for (const base of [40000, 0, 50000]) unit.exceptionAt.set(base, 11);
    const err = await discoverSunSpec(unit).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ModbusExceptionError);
    expect(err).toMatchObject({ exceptionCode: 11, retryable: true });
    expect((err as Error).message).toMatch(/^tcp gw unit 42: no conclusive answer about SunSpec .*40000 .*, 0 .*, 50000 /);
    // a base that answers still wins
    unit.exceptionAt.delete(50000);
    unit.set(50000, [...SUNS, ...model(1, 66), ...END]);
    expect((await discoverSunSpec(unit)).baseAddress).toBe(50000);
    // busy in the middle of the chain: passed through, not taken for a missing end marker
    const busy = new ExceptionUnit();
    busy.set(40000, [...SUNS, ...model(1, 66), ...model(103, 50), ...END]);
    busy.exceptionAt.set(40070, 6);
    await expect(discoverSunSpec(busy)).rejects.toMatchObject({ exceptionCode: 6, retryable: true });
    expect(busy.reads.map((r) => r.address)).toEqual([40000, 40002, 40070]);
  });

  it('accepts an end marker of a single register', async () => {
    const unit = new FakeUnit();
    unit.set(40000, [...SUNS, ...model(1, 66), 0xffff]); // nothing after the 0xFFFF
    const d = await discoverSunSpec(unit);
    expect(d.models.map((m) => m.id)).toEqual([1]);
    expect(unit.reads.slice(-2).map((r) => [r.address, r.count])).toEqual([
      [40070, 2],
      [40070, 1],
    ]);
  });

  it('rejects a chain without end marker', async () => {
    const unit = new FakeUnit();
    unit.set(40000, [...SUNS, ...model(1, 66), ...model(103, 50)]);
    await expect(discoverSunSpec(unit)).rejects.toThrow(BadDataError);
    await expect(discoverSunSpec(unit)).rejects.toThrow(/no end marker: reading 40122/);
  });

  it('rejects a model whose length runs past address 65535', async () => {
    const unit = new FakeUnit();
    unit.set(40000, [...SUNS, ...model(1, 66), 103, 60000]);
    await expect(discoverSunSpec(unit)).rejects.toThrow(/model 103 at 40070 has L=60000, which runs past address 65535/);
  });

  it('stops a chain that never ends (bounded number of models)', async () => {
    const unit = new FakeUnit();
    const chain: number[] = [...SUNS];
    for (let i = 0; i < 300; i++) chain.push(64000, 0); // 300 empty vendor models
    unit.set(40000, chain);
    await expect(discoverSunSpec(unit, { maxModels: 50 })).rejects.toThrow(/more than 50 SunSpec models/);
    expect(unit.reads.length).toBeLessThanOrEqual(53);
  });
});
