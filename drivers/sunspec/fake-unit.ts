/**
 * FOR TESTS: an in-memory implementation of OUR `ModbusUnit` interface (drivers/modbus/types.ts),
 * backed by a register array. It is a fake of the project's own interface, not of a device or a
 * library: it lets the SunSpec unit tests check read plans and error paths without a bus. The
 * real transport and the simulated devices are exercised by the end-to-end tests in test/.
 *
 * Reads of registers that were never set answer like a device does: Modbus exception 2 (illegal
 * data address). Every transaction is recorded. readRanges plans its transactions with the real
 * transport's planner (`planReads` of drivers/modbus: adjacent ranges, and across gaps up to the
 * call's `maxGapRegisters`, ≤ 125 registers each), so `transactions` counts what a real bus would
 * carry. Unlike the real bus it does not split and retry a merged read the device rejects: that is
 * tested in drivers/modbus and end to end (sunspec.model-boundary.e2e.test.ts).
 */
import { ModbusExceptionError, TimeoutError } from '../errors.js';
import { planReads, sliceRanges } from '../modbus/plan.js';
import type { ModbusUnit, ReadOptions, RegisterKind, RegisterRange, RequestPriority, UnitStats } from '../modbus/types.js';

export type FakeTransaction =
  | { type: 'read'; kind: RegisterKind; address: number; count: number; priority: RequestPriority | undefined }
  | { type: 'write'; address: number; values: number[] };

export class FakeUnit implements ModbusUnit {
  readonly label: string;
  readonly registers = new Map<number, number>();
  readonly transactions: FakeTransaction[] = [];
  /** Each readRanges call with the ranges it was given. */
  readonly readRangesCalls: RegisterRange[][] = [];
  /** Reads overlapping these addresses time out (a device that does not answer there). */
  readonly timeoutAt = new Set<number>();
  /** Writes to these addresses are refused with exception 2. */
  readonly refuseWritesAt = new Set<number>();
  /**
   * While set, reads take the registers as they are when asked but answer only once this promise
   * resolves: a poll whose answer comes back after a write made meanwhile ended.
   */
  holdReadAnswers: Promise<void> | undefined;

  get stats(): UnitStats {
    return {
      transactions: this.transactions.length,
      timeouts: 0,
      exceptions: 0,
      badFrames: 0,
      backedOffRejections: 0,
      consecutiveFailures: 0,
      backoffMs: 0,
      retryAtMs: 0,
    };
  }

  constructor(readonly unitId = 1, label?: string) {
    this.label = label ?? `fake unit ${unitId}`;
  }

  /** Puts `values` at `address`, `address + 1`, ... */
  set(address: number, values: readonly number[]): this {
    values.forEach((v, i) => this.registers.set(address + i, v & 0xffff));
    return this;
  }

  get(address: number, count = 1): number[] {
    return Array.from({ length: count }, (_, i) => this.registers.get(address + i) ?? -1);
  }

  get writes(): { address: number; values: number[] }[] {
    return this.transactions.filter((t): t is Extract<FakeTransaction, { type: 'write' }> => t.type === 'write').map(({ address, values }) => ({ address, values }));
  }

  get reads(): Extract<FakeTransaction, { type: 'read' }>[] {
    return this.transactions.filter((t): t is Extract<FakeTransaction, { type: 'read' }> => t.type === 'read');
  }

  clearLog(): void {
    this.transactions.length = 0;
    this.readRangesCalls.length = 0;
  }

  async readRegisters(kind: RegisterKind, address: number, count: number, options?: ReadOptions): Promise<Uint16Array> {
    this.transactions.push({ type: 'read', kind, address, count, priority: options?.priority });
    if (count < 1 || count > 125) throw new ModbusExceptionError(`${this.label}: read of ${count} registers at ${address}: illegal data value`, 3, 3);
    for (let a = address; a < address + count; a++) {
      if (this.timeoutAt.has(a)) throw new TimeoutError(`${this.label}: no answer reading ${count} at ${address}`, 1000);
    }
    const out = new Uint16Array(count);
    for (let i = 0; i < count; i++) {
      const v = this.registers.get(address + i);
      if (v === undefined) throw new ModbusExceptionError(`${this.label}: read of ${count} at ${address}: illegal data address`, 3, 2);
      out[i] = v;
    }
    if (this.holdReadAnswers) await this.holdReadAnswers;
    return out;
  }

  async readRanges(kind: RegisterKind, ranges: readonly RegisterRange[], options?: ReadOptions): Promise<Uint16Array[]> {
    this.readRangesCalls.push(ranges.map((r) => ({ ...r })));
    const blocks = planReads(ranges, { maxGapRegisters: options?.maxGapRegisters ?? 0 });
    const data: Uint16Array[] = [];
    for (const b of blocks) data.push(await this.readRegisters(kind, b.address, b.count, options));
    return sliceRanges(ranges, blocks, data);
  }

  /** SunSpec devices have no coils: answered as a device would (exception 1). */
  readCoils(): Promise<boolean[]> {
    return Promise.reject(new ModbusExceptionError(`${this.label}: FC1: illegal function`, 1, 1));
  }

  writeCoil(): Promise<void> {
    return Promise.reject(new ModbusExceptionError(`${this.label}: FC5: illegal function`, 5, 1));
  }

  async writeRegisters(address: number, values: readonly number[]): Promise<void> {
    this.transactions.push({ type: 'write', address, values: [...values] });
    for (let a = address; a < address + values.length; a++) {
      if (this.refuseWritesAt.has(a) || !this.registers.has(a)) {
        throw new ModbusExceptionError(`${this.label}: write at ${address}: illegal data address`, 16, 2);
      }
    }
    this.set(address, values);
  }
}

/** ASCII packed two characters per register into `size` registers, zero padded (test input). */
export function asciiRegisters(text: string, size: number): number[] {
  const bytes = Buffer.alloc(size * 2);
  bytes.write(text, 'latin1');
  return Array.from({ length: size }, (_, i) => bytes.readUInt16BE(2 * i));
}

/** The two registers of a big-endian float32 (test input). */
export function float32Registers(value: number): number[] {
  const b = Buffer.alloc(4);
  b.writeFloatBE(value);
  return [b.readUInt16BE(0), b.readUInt16BE(2)];
}
