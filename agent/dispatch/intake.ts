/**
 * The order queue between the MQTT callback and the control loop (DESIGN.md: orders are queued into
 * the loop, never acted on inside an MQTT callback). `push` only copies the bytes and queues a task
 * on the loop; the task runs `submit` in the loop's serial section.
 *
 * Bounded: beyond `maxPending` payloads waiting, further ones are dropped (logged and counted), so
 * a flood on the order topic cannot grow the agent's memory without end. A dropped order gets no
 * status and is not in the audit log; an aggregator that gets no answer sends it again.
 */
import type { Log } from '../../drivers/log.js';

export interface OrderIntakeOptions {
  /** The control loop's `enqueue`: runs the task in the loop's serial section. */
  enqueue: (task: () => void) => Promise<unknown>;
  /** The order book's `submit`. */
  submit: (raw: Uint8Array) => unknown;
  log: Log;
  /** Default 1000 payloads (at most 16 MiB of 16 KiB orders; larger payloads are cut to 16 KiB + 1 byte). */
  maxPending?: number;
}

/** A payload longer than this is MALFORMED whatever follows; the rest of it need not be kept. */
const KEEP_BYTES = 16 * 1024 + 1;

export class OrderIntake {
  private pending = 0;
  private droppedCount = 0;

  constructor(private readonly options: OrderIntakeOptions) {}

  /** Orders dropped because the queue was full, since start. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** Payloads waiting for the loop. */
  get waiting(): number {
    return this.pending;
  }

  /** From the MQTT callback: copy and queue. Never throws. */
  push(payload: Uint8Array): void {
    const max = this.options.maxPending ?? 1000;
    if (this.pending >= max) {
      this.droppedCount++;
      this.options.log.warn({ dropped: this.droppedCount, waiting: this.pending }, 'order queue full: order dropped');
      return;
    }
    // A copy: the client may reuse its buffer. An over-long payload keeps one byte past the limit, so
    // it is still rejected as over 16 KiB (its audit row then shows 16 385 bytes).
    const bytes = Uint8Array.from(payload.byteLength > KEEP_BYTES ? payload.subarray(0, KEEP_BYTES) : payload);
    this.pending++;
    this.options
      .enqueue(() => {
        this.pending--;
        this.options.submit(bytes);
      })
      .catch((err: unknown) => this.options.log.error({ err }, 'order task failed'));
  }
}
