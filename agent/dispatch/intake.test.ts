import { describe, expect, it } from 'vitest';
import { silentLog } from '../../drivers/log.js';
import { OrderIntake } from './intake.js';

describe('order queue (MQTT callback → control loop)', () => {
  it('only copies and queues in the callback; submit runs later, in order, on its own copy of the bytes', async () => {
    const tasks: (() => void)[] = [];
    const submitted: string[] = [];
    const intake = new OrderIntake({
      enqueue: (task) => {
        tasks.push(task);
        return Promise.resolve();
      },
      submit: (raw) => submitted.push(Buffer.from(raw).toString()),
      log: silentLog,
    });
    const buffer = Buffer.from('first');
    intake.push(buffer);
    buffer.write('XXXXX'); // the client reuses its buffer
    intake.push(Buffer.from('second'));
    expect(submitted).toEqual([]);
    expect(intake.waiting).toBe(2);
    for (const t of tasks) t();
    expect(submitted).toEqual(['first', 'second']);
    expect(intake.waiting).toBe(0);
  });

  it('drops payloads beyond maxPending and counts them; cuts over-long payloads to 16 KiB + 1 byte', () => {
    const tasks: (() => void)[] = [];
    const sizes: number[] = [];
    const intake = new OrderIntake({ enqueue: (task) => (tasks.push(task), Promise.resolve()), submit: (raw) => sizes.push(raw.byteLength), log: silentLog, maxPending: 3 });
    for (let i = 0; i < 5; i++) intake.push(new Uint8Array(i === 0 ? 1_000_000 : 10));
    expect(intake.dropped).toBe(2);
    for (const t of tasks) t();
    expect(sizes).toEqual([16 * 1024 + 1, 10, 10]);
    intake.push(new Uint8Array(1));
    expect(intake.dropped).toBe(2);
  });
});
