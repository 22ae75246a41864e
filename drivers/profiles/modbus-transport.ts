/**
 * The Modbus side of a profile: reads every register source in the fewest transactions (the bus's
 * coalescing, within the device's largest read), decodes encodings, word order and sentinels, and
 * carries out actions with the function codes the device takes.
 */
import { BadDataError, RefusedError } from '../errors.js';
import type { ModbusUnit, RegisterKind, RegisterRange } from '../modbus/types.js';
import { decodeRegisters, encodeRegisters } from './codec.js';
import { encodingRegisters, isSequenceAction, type Profile, type RegisterSource } from './schema.js';

type ModbusSection = NonNullable<Profile['modbus']>;
import type { ProfileTransport, SourceSnapshot, SourceValue } from './transport.js';

export interface ModbusProfileTransportOptions {
  unit: ModbusUnit;
  profile: Profile;
}

interface RegisterPoint {
  name: string;
  source: RegisterSource;
  range: RegisterRange;
}

export function createModbusProfileTransport(options: ModbusProfileTransportOptions): ProfileTransport {
  return new ModbusProfileTransport(options.unit, options.profile);
}

class ModbusProfileTransport implements ProfileTransport {
  private readonly byKind: Record<RegisterKind, RegisterPoint[]> = { holding: [], input: [] };
  private readonly coils: Array<{ name: string; address: number }> = [];
  private readonly modbus: ModbusSection;

  constructor(
    private readonly unit: ModbusUnit,
    private readonly profile: Profile,
  ) {
    if (!profile.modbus) throw new RangeError(`profile ${profile.profile} is not a Modbus profile`);
    this.modbus = profile.modbus;
    for (const [name, source] of Object.entries(this.modbus.sources)) {
      if (source.type === 'coil') {
        this.coils.push({ name, address: source.address });
        continue;
      }
      const count = encodingRegisters(source.encoding, source.length ?? 1);
      this.byKind[source.type].push({ name, source, range: { address: source.address, count } });
    }
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  describe(): string {
    return `${this.profile.vendor} ${this.profile.model} (profile ${this.profile.profile}) on ${this.unit.label}`;
  }

  async read(): Promise<SourceSnapshot> {
    const snapshot: SourceSnapshot = { values: {}, problems: {} };
    const reads: Promise<void>[] = [];
    for (const kind of ['holding', 'input'] as const) {
      const points = this.byKind[kind];
      if (points.length === 0) continue;
      reads.push(
        this.unit.readRanges(kind, points.map((p) => p.range), { maxGapRegisters: this.modbus.maxGapRegisters }).then((blocks) => {
          points.forEach((p, i) => this.decodePoint(p, blocks[i]!, snapshot));
        }),
      );
    }
    for (const coil of this.coils) {
      reads.push(
        this.unit.readCoils(coil.address, 1).then((bits) => {
          snapshot.values[coil.name] = bits[0]!;
        }),
      );
    }
    // Any failed read fails the poll: a partial picture of a device is not a reading.
    await Promise.all(reads);
    return snapshot;
  }

  private decodePoint(point: RegisterPoint, registers: Uint16Array, out: SourceSnapshot): void {
    const { source, name } = point;
    let value: number | string;
    try {
      value = decodeRegisters(registers, source.encoding, source.wordOrder);
    } catch (err) {
      throw new BadDataError(`${this.unit.label}: source ${name}: ${(err as Error).message}`);
    }
    if (typeof value === 'number' && source.sentinels?.includes(value)) {
      if (source.sentinelMeans === 'zero') out.values[name] = 0;
      else out.problems[name] = `the device reports it as not available (${value})`;
      return;
    }
    if (typeof value === 'number' && !Number.isFinite(value)) {
      out.problems[name] = `not a finite number (${value})`;
      return;
    }
    out.values[name] = value;
  }

  async act(name: string, value: SourceValue): Promise<void> {
    const action = this.modbus.actions[name];
    if (!action) throw new RefusedError(`${this.unit.label}: the profile has no action "${name}"`);
    if (isSequenceAction(action)) {
      for (const w of action.writes) {
        if (w.type === 'coil') await this.unit.writeCoil(w.address, w.value === true || w.value === 1);
        else await this.unit.writeRegisters(w.address, [typeof w.value === 'boolean' ? (w.value ? 1 : 0) : w.value], { functionCode: w.functionCode === 6 ? 6 : 16 });
      }
      return;
    }
    if (action.type === 'coil') {
      if (typeof value !== 'boolean' && value !== 0 && value !== 1) throw new RefusedError(`${this.unit.label}: action ${name} writes a coil: expected true or false, got ${String(value)}`);
      await this.unit.writeCoil(action.address, value === true || value === 1);
      return;
    }
    const raw = typeof value === 'boolean' ? (value ? 1 : 0) : Number(value);
    if (!Number.isFinite(raw)) throw new RefusedError(`${this.unit.label}: action ${name}: ${String(value)} is not a number`);
    if ((action.rawMin !== undefined && raw < action.rawMin) || (action.rawMax !== undefined && raw > action.rawMax)) {
      throw new RefusedError(`${this.unit.label}: action ${name}: ${raw} is outside what the device accepts (${action.rawMin ?? '-∞'}..${action.rawMax ?? '∞'})`);
    }
    let registers: number[];
    try {
      registers = encodeRegisters(action.encoding === 'float32' ? raw : Math.round(raw), action.encoding, action.wordOrder);
    } catch (err) {
      throw new RefusedError(`${this.unit.label}: action ${name}: ${(err as Error).message}`);
    }
    const functionCode = action.functionCode === 6 ? 6 : 16;
    if (functionCode === 6 && registers.length !== 1) throw new RefusedError(`${this.unit.label}: action ${name}: FC6 writes one register, the value needs ${registers.length}`);
    await this.unit.writeRegisters(action.address, registers, { functionCode });
  }
}
