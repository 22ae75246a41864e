/**
 * What the simulated aggregator must remember between runs: the last sequence it sent per
 * (aggregator, gateway) — sequences must keep increasing, or the gateway says REPLAY — and the last
 * modification it sent per orderId (a CANCEL or a modification needs a higher one). Kept in a small
 * JSON file, written atomically (a temporary file renamed into place) before each order leaves.
 *
 * Sequences are max(last + 1, now in ms): time-based, so even a lost state file gives sequences
 * above any sent before while the clock is right.
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

interface StateFile {
  version: 1;
  /** `${aggregator}:${gateway}` → last sequence. */
  sequences: Record<string, number>;
  /** orderId → last modification. */
  modifications: Record<string, number>;
}

export class SequenceState {
  private data: StateFile = { version: 1, sequences: {}, modifications: {} };

  constructor(private readonly path: string | undefined) {
    if (path === undefined) return;
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw e;
    }
    const parsed = JSON.parse(text) as Partial<StateFile>;
    this.data = { version: 1, sequences: { ...parsed.sequences }, modifications: { ...parsed.modifications } };
  }

  lastSequence(aggregator: string, gateway: string): number | undefined {
    return this.data.sequences[`${aggregator.toLowerCase()}:${gateway.toLowerCase()}`];
  }

  /** The sequence for the next order: above the last one, and at least `nowMs`. */
  nextSequence(aggregator: string, gateway: string, nowMs: number): number {
    return Math.max((this.lastSequence(aggregator, gateway) ?? 0) + 1, Math.floor(nowMs));
  }

  modificationOf(orderId: string): number | undefined {
    return this.data.modifications[orderId.toLowerCase()];
  }

  /** Records an order about to be sent (and saves the file). */
  record(aggregator: string, gateway: string, sequence: number, orderId: string, modification: number): void {
    const key = `${aggregator.toLowerCase()}:${gateway.toLowerCase()}`;
    this.data.sequences[key] = Math.max(this.data.sequences[key] ?? 0, sequence);
    const id = orderId.toLowerCase();
    this.data.modifications[id] = Math.max(this.data.modifications[id] ?? -1, modification);
    this.save();
  }

  private save(): void {
    if (this.path === undefined) return;
    mkdirSync(dirname(this.path), { recursive: true });
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(this.data, null, 2)}\n`);
    renameSync(tmp, this.path);
  }
}
