import type { RegisterImage } from './image.js';

/**
 * A fault injected on one unit id, settable at runtime:
 * - none: normal answers.
 * - no-answer: requests are swallowed; the client times out.
 * - slow: the answer is sent `delayMs` (real ms) later than it would be.
 * - exception: every request is answered with exception `code` (nothing is read or written).
 * - drop-connection: TCP: the connection is destroyed on every request while set; RTU: like no-answer.
 * - garbage: the answer is corrupt. variant 'random' (default): 3–24 random bytes; 'bad-crc' (serial): a
 *   correct frame whose CRC (RTU) or LRC (ASCII framing) is wrong; 'bad-length' (TCP): a correct answer whose MBAP length field is
 *   wrong. On TCP 'bad-crc' behaves as 'random'; on RTU 'bad-length' sends the frame cut short.
 */
export type Fault =
  | { kind: 'none' }
  | { kind: 'no-answer' }
  | { kind: 'slow'; delayMs: number }
  | { kind: 'exception'; code: number }
  | { kind: 'drop-connection' }
  | { kind: 'garbage'; variant?: 'random' | 'bad-crc' | 'bad-length' };

export type FaultKind = Fault['kind'];

export interface Unit {
  readonly unitId: number;
  readonly image: RegisterImage;
  fault: Fault;
}

/** The unit ids a server answers for (a gateway holds several devices), each with its fault. */
export class UnitTable {
  private readonly units = new Map<number, Unit>();

  add(unitId: number, image: RegisterImage): void {
    // 248-255 are reserved on RS-485 but used over TCP (e.g. 255 by gateways and EV controllers).
    if (!Number.isInteger(unitId) || unitId < 1 || unitId > 255) throw new RangeError(`bad unit id ${unitId}`);
    if (this.units.has(unitId)) throw new Error(`unit ${unitId} already present`);
    this.units.set(unitId, { unitId, image, fault: { kind: 'none' } });
  }

  get(unitId: number): Unit | undefined {
    return this.units.get(unitId);
  }

  all(): Unit[] {
    return [...this.units.values()];
  }

  setFault(unitId: number, fault: Fault): void {
    const unit = this.units.get(unitId);
    if (!unit) throw new Error(`no unit ${unitId}`);
    unit.fault = fault;
  }

  fault(unitId: number): Fault {
    const unit = this.units.get(unitId);
    if (!unit) throw new Error(`no unit ${unitId}`);
    return unit.fault;
  }
}
