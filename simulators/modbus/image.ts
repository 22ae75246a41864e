/**
 * A device's register image: blocks of 16-bit registers, a writable mask, write hooks and coils.
 * A block belongs to the holding table (FC3 read, FC6/FC16 write), the input table (FC4 read only) or
 * both (the default: SunSpec devices answer FC3 and FC4 alike). Blocks never overlap, whatever table.
 */

export const ExceptionCode = {
  IllegalFunction: 1,
  IllegalDataAddress: 2,
  IllegalDataValue: 3,
  ServerDeviceFailure: 4,
  GatewayTargetFailedToRespond: 0x0b,
} as const;

/** A write that passed the address checks, before (validate) or after (apply) it lands in the image. */
export interface RegisterWrite {
  readonly address: number;
  readonly values: readonly number[];
}

export interface WriteHook {
  /** Return an exception code to refuse the write (nothing is written), or undefined to accept. */
  validate?(write: RegisterWrite): number | undefined;
  /** Called after the write is in the image. */
  apply?(write: RegisterWrite): void;
}

/** Which function codes see a block: 'holding' FC3 (and FC6/FC16), 'input' FC4, 'both' either. */
export type RegisterTable = 'holding' | 'input' | 'both';

interface Block {
  readonly start: number;
  readonly registers: Uint16Array;
  readonly writable: Uint8Array;
  readonly table: RegisterTable;
}

/** A coil write from the bus (FC5, or one coil of an FC15). */
export interface CoilWrite {
  readonly address: number;
  readonly value: boolean;
}

/** Device quirks of how the image answers on the bus. */
export interface ImageQuirks {
  /** Answer FC6 with exception 1 (devices that take writes only as FC16). */
  refuseFc6?: boolean;
  /** Largest register count of one read (e.g. 40 for Eastron meters); more → exception 3. */
  maxReadRegisters?: number;
  /** Reads that start or end inside a multi-register value are refused with exception 2: the
   * addresses where a value starts (every other defined register is inside one). */
  valueStarts?: ReadonlySet<number>;
}

export class RegisterImage {
  private readonly blocks: Block[] = [];
  private readonly hooks: WriteHook[] = [];
  private readonly coils = new Map<number, { value: boolean; writable: boolean }>();
  private readonly coilHooks: Array<(write: CoilWrite) => void> = [];
  quirks: ImageQuirks = {};

  /** Defines `count` coils from `start`, all off; `writable` ones accept FC5. */
  defineCoils(start: number, count: number, writable = true): void {
    for (let a = start; a < start + count; a++) this.coils.set(a, { value: false, writable });
  }

  /** True when the device has coils at all (devices without answer FC1/FC5 with exception 1). */
  get supportsCoils(): boolean {
    return this.coils.size > 0;
  }

  hasCoils(address: number, count: number): boolean {
    for (let a = address; a < address + count; a++) if (!this.coils.has(a)) return false;
    return true;
  }

  readCoils(address: number, count: number): boolean[] {
    const out: boolean[] = [];
    for (let a = address; a < address + count; a++) {
      const c = this.coils.get(a);
      if (!c) throw new RangeError(`coil ${a} is not defined`);
      out.push(c.value);
    }
    return out;
  }

  /** Sets a coil directly (device side). */
  setCoil(address: number, value: boolean): void {
    const c = this.coils.get(address);
    if (!c) throw new RangeError(`coil ${address} is not defined`);
    c.value = value;
  }

  onCoilWrite(hook: (write: CoilWrite) => void): void {
    this.coilHooks.push(hook);
  }

  /** A coil write from the bus: exception 2 for an undefined or read-only coil. */
  writeCoilFromBus(address: number, value: boolean): number | undefined {
    return this.writeCoilsFromBus(address, [value]);
  }

  /** Several coils from the bus (FC15): all written, or none (exception 2 if any is undefined or read-only). */
  writeCoilsFromBus(address: number, values: readonly boolean[]): number | undefined {
    for (let i = 0; i < values.length; i++) {
      const c = this.coils.get(address + i);
      if (!c || !c.writable) return ExceptionCode.IllegalDataAddress;
    }
    values.forEach((value, i) => {
      this.coils.get(address + i)!.value = value;
    });
    values.forEach((value, i) => {
      for (const hook of this.coilHooks) hook({ address: address + i, value });
    });
    return undefined;
  }

  /**
   * Defines `length` registers from `start`, all zero and read-only, in `table` (default 'both').
   * Blocks may not overlap.
   */
  defineBlock(start: number, length: number, table: RegisterTable = 'both'): void {
    if (!Number.isInteger(start) || start < 0 || length < 1 || start + length > 0x10000) {
      throw new RangeError(`bad block ${start}+${length}`);
    }
    for (const b of this.blocks) {
      if (start < b.start + b.registers.length && b.start < start + length) {
        throw new RangeError(`block ${start}+${length} overlaps block at ${b.start}`);
      }
    }
    this.blocks.push({ start, registers: new Uint16Array(length), writable: new Uint8Array(length), table });
    this.blocks.sort((a, b) => a.start - b.start);
  }

  private locate(address: number): { block: Block; index: number } | undefined {
    for (const block of this.blocks) {
      const index = address - block.start;
      if (index >= 0 && index < block.registers.length) return { block, index };
    }
    return undefined;
  }

  /**
   * True when every register of address..address+count−1 is defined; with `table`, only blocks a
   * request of that table sees count ('holding': FC3, 'input': FC4; 'both' blocks serve either).
   */
  isDefined(address: number, count = 1, table?: 'holding' | 'input'): boolean {
    for (let a = address; a < address + count; a++) {
      const at = this.locate(a);
      if (!at) return false;
      if (table !== undefined && at.block.table !== 'both' && at.block.table !== table) return false;
    }
    return true;
  }

  /** True when every register is defined, writable, and not in an input-only block. */
  isWritable(address: number, count = 1): boolean {
    for (let a = address; a < address + count; a++) {
      const at = this.locate(a);
      if (!at || at.block.table === 'input' || at.block.writable[at.index] !== 1) return false;
    }
    return true;
  }

  setWritable(address: number, count: number, writable = true): void {
    for (let a = address; a < address + count; a++) {
      const at = this.locate(a);
      if (!at) throw new RangeError(`register ${a} is not defined`);
      if (writable && at.block.table === 'input') throw new RangeError(`register ${a} is an input register`);
      at.block.writable[at.index] = writable ? 1 : 0;
    }
  }

  /** Reads registers; throws RangeError outside the defined blocks. */
  read(address: number, count: number): number[] {
    const out: number[] = [];
    for (let a = address; a < address + count; a++) {
      const at = this.locate(a);
      if (!at) throw new RangeError(`register ${a} is not defined`);
      out.push(at.block.registers[at.index]!);
    }
    return out;
  }

  /** Sets registers directly (device side: no writable check, no hooks). */
  set(address: number, values: readonly number[]): void {
    values.forEach((v, i) => {
      const at = this.locate(address + i);
      if (!at) throw new RangeError(`register ${address + i} is not defined`);
      at.block.registers[at.index] = v & 0xffff;
    });
  }

  addWriteHook(hook: WriteHook): () => void {
    this.hooks.push(hook);
    return () => {
      const i = this.hooks.indexOf(hook);
      if (i >= 0) this.hooks.splice(i, 1);
    };
  }

  /**
   * A write from the bus. Returns an exception code, or undefined when written.
   * Any register outside the holding blocks, or defined but not writable (read-only), gives 2 (illegal
   * data address); a hook refusing the value gives the hook's code (normally 3, illegal data value).
   */
  writeFromBus(address: number, values: readonly number[]): number | undefined {
    if (!this.isDefined(address, values.length, 'holding')) return ExceptionCode.IllegalDataAddress;
    if (!this.isWritable(address, values.length)) return ExceptionCode.IllegalDataAddress;
    const write: RegisterWrite = { address, values };
    for (const hook of this.hooks) {
      const code = hook.validate?.(write);
      if (code !== undefined) return code;
    }
    this.set(address, values);
    for (const hook of this.hooks) hook.apply?.(write);
    return undefined;
  }
}
