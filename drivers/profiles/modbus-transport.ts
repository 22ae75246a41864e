/**
 * The Modbus side of a profile (a ProfileTransport): reads every register source in the fewest
 * transactions the device allows (the bus's coalescing, within the profile's largest read and gap
 * allowance; coils likewise), decodes encodings, word order and sentinels, and carries out actions
 * with the function codes the device takes (a sequence of writes in order, stopping at the first
 * failure). Any failed transaction fails the read with its typed error: a partial picture of a
 * device is not a reading.
 */
import { NotSupportedError, RefusedError } from '../errors.js';
import type { ModbusUnit, RegisterKind, RegisterRange } from '../modbus/types.js';
import { planReads, sliceRanges } from '../modbus/plan.js';
import { decodeRegisters, encodeRegisters } from './codec.js';
import { encodingRegisters, isSequenceAction, type ModbusSection, type Profile, type RegisterSource, type ValueAction } from './schema.js';
import type { ProfileTransport, SourceSnapshot, SourceValue } from './transport.js';

export interface ModbusProfileTransportOptions {
  /** The device's unit on its bus (the agent's bus: this transport never starts or stops it). */
  unit: ModbusUnit;
  profile: Profile;
}

/** The most coils one FC1 request reads. */
const MAX_READ_COILS = 2000;

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
  private readonly coils: Array<{ name: string; range: RegisterRange }> = [];
  private readonly modbus: ModbusSection;

  constructor(
    private readonly unit: ModbusUnit,
    private readonly profile: Profile,
  ) {
    if (!profile.modbus) throw new RangeError(`profile ${profile.profile} is not a Modbus profile (transport ${profile.transport})`);
    this.modbus = profile.modbus;
    for (const [name, source] of Object.entries(this.modbus.sources)) {
      if (source.type === 'coil') {
        this.coils.push({ name, range: { address: source.address, count: 1 } });
        continue;
      }
      const count = encodingRegisters(source.encoding, source.length ?? 1);
      this.byKind[source.type].push({ name, source, range: { address: source.address, count } });
    }
  }

  async start(): Promise<void> {}

  async stop(): Promise<void> {}

  describe(): string {
    return `modbus ${this.unit.label}`;
  }

  async read(): Promise<SourceSnapshot> {
    const snapshot: SourceSnapshot = { values: {}, problems: {} };
    const reads: Promise<void>[] = [];
    for (const kind of ['holding', 'input'] as const) {
      const points = this.byKind[kind];
      if (points.length === 0) continue;
      reads.push(
        this.unit
          .readRanges(
            kind,
            points.map((p) => p.range),
            { maxGapRegisters: this.modbus.maxGapRegisters, maxReadRegisters: this.modbus.maxReadRegisters },
          )
          .then((blocks) => {
            points.forEach((p, i) => this.decodePoint(p, blocks[i]!, snapshot));
          }),
      );
    }
    if (this.coils.length > 0) reads.push(this.readCoils(snapshot));
    // Any failed read fails the poll (allSettled first, so no request is left unobserved).
    const results = await Promise.allSettled(reads);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    return snapshot;
  }

  /** Coil sources in the fewest FC1 requests: adjacent coils, and coils up to the gap allowance apart. */
  private async readCoils(out: SourceSnapshot): Promise<void> {
    const ranges = this.coils.map((c) => c.range);
    const blocks = planReads(ranges, { maxRegisters: MAX_READ_COILS, maxGapRegisters: this.modbus.maxGapRegisters });
    const answers = await Promise.all(blocks.map((b) => this.unit.readCoils(b.address, b.count)));
    // sliceRanges works on any per-address values: booleans as 0/1.
    const sliced = sliceRanges(ranges, blocks, answers.map((bits) => Uint16Array.from(bits, (b) => (b ? 1 : 0))));
    this.coils.forEach((c, i) => {
      out.values[c.name] = sliced[i]![0] === 1;
    });
  }

  private decodePoint(point: RegisterPoint, registers: Uint16Array, out: SourceSnapshot): void {
    const { source, name } = point;
    const value = decodeRegisters(registers, source.encoding, source.wordOrder);
    if (typeof value === 'number' && source.sentinels?.includes(value)) {
      if (source.sentinelMeans === 'zero') out.values[name] = 0;
      else out.problems[name] = `${this.unit.label}: ${source.type} ${source.address} reads ${value}: the device reports it as not available`;
      return;
    }
    if (typeof value === 'number' && !Number.isFinite(value)) {
      out.problems[name] = `${this.unit.label}: ${source.type} ${source.address} reads ${value}, not a finite number`;
      return;
    }
    out.values[name] = value;
  }

  async act(name: string, value: SourceValue): Promise<void> {
    const action = this.modbus.actions[name];
    if (!action) throw new NotSupportedError(`${this.unit.label}: profile ${this.profile.profile} has no action "${name}"`);
    if (isSequenceAction(action)) {
      // In order; the first failure rejects and the rest is not written.
      for (const w of action.writes) {
        if (w.type === 'coil') await this.unit.writeCoil(w.address, w.value === true || w.value === 1);
        else await this.unit.writeRegisters(w.address, [Number(w.value)], { functionCode: w.functionCode === 6 ? 6 : 16 });
      }
      return;
    }
    if (action.type === 'coil') {
      if (typeof value !== 'boolean' && value !== 0 && value !== 1) {
        throw new RefusedError(`${this.unit.label}: action ${name} writes coil ${action.address}: expected true or false, got ${JSON.stringify(value)}`);
      }
      await this.unit.writeCoil(action.address, value === true || value === 1);
      return;
    }
    await this.unit.writeRegisters(action.address, this.encode(name, action, value), { functionCode: action.functionCode === 6 ? 6 : 16 });
  }

  /** The registers of a value write: within the action's raw range and its encoding, or RefusedError. */
  private encode(name: string, action: ValueAction, value: SourceValue): number[] {
    const raw = typeof value === 'boolean' ? (value ? 1 : 0) : typeof value === 'number' ? value : Number.NaN;
    const where = `${this.unit.label}: action ${name} (holding ${action.address})`;
    if (!Number.isFinite(raw)) throw new RefusedError(`${where}: ${JSON.stringify(value)} is not a number`);
    if ((action.rawMin !== undefined && raw < action.rawMin) || (action.rawMax !== undefined && raw > action.rawMax)) {
      throw new RefusedError(`${where}: ${raw} is outside what the device accepts (${action.rawMin ?? '-∞'}..${action.rawMax ?? '∞'})`);
    }
    try {
      return encodeRegisters(action.encoding === 'float32' ? raw : Math.round(raw), action.encoding, action.wordOrder);
    } catch (err) {
      throw new RefusedError(`${where}: ${(err as Error).message}`);
    }
  }
}
