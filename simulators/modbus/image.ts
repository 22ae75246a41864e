/**
 * A device's register image: blocks of 16-bit holding registers, a writable mask and write hooks.
 * FC3 and FC4 both read this one image.
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

interface Block {
  readonly start: number;
  readonly registers: Uint16Array;
  readonly writable: Uint8Array;
}

export class RegisterImage {
  private readonly blocks: Block[] = [];
  private readonly hooks: WriteHook[] = [];

  /** Defines `length` registers from `start`, all zero and read-only. Blocks may not overlap. */
  defineBlock(start: number, length: number): void {
    if (!Number.isInteger(start) || start < 0 || length < 1 || start + length > 0x10000) {
      throw new RangeError(`bad block ${start}+${length}`);
    }
    for (const b of this.blocks) {
      if (start < b.start + b.registers.length && b.start < start + length) {
        throw new RangeError(`block ${start}+${length} overlaps block at ${b.start}`);
      }
    }
    this.blocks.push({ start, registers: new Uint16Array(length), writable: new Uint8Array(length) });
    this.blocks.sort((a, b) => a.start - b.start);
  }

  private locate(address: number): { block: Block; index: number } | undefined {
    for (const block of this.blocks) {
      const index = address - block.start;
      if (index >= 0 && index < block.registers.length) return { block, index };
    }
    return undefined;
  }

  isDefined(address: number, count = 1): boolean {
    for (let a = address; a < address + count; a++) if (!this.locate(a)) return false;
    return true;
  }

  isWritable(address: number, count = 1): boolean {
    for (let a = address; a < address + count; a++) {
      const at = this.locate(a);
      if (!at || at.block.writable[at.index] !== 1) return false;
    }
    return true;
  }

  setWritable(address: number, count: number, writable = true): void {
    for (let a = address; a < address + count; a++) {
      const at = this.locate(a);
      if (!at) throw new RangeError(`register ${a} is not defined`);
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
   * Any register outside the blocks, or defined but not writable (read-only), gives 2 (illegal data
   * address); a hook refusing the value gives the hook's code (normally 3, illegal data value).
   */
  writeFromBus(address: number, values: readonly number[]): number | undefined {
    if (!this.isDefined(address, values.length)) return ExceptionCode.IllegalDataAddress;
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
