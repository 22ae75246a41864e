/**
 * DESIGN.md: "on a 9600-baud RTU bus an order waits for at most the one transaction already on the
 * wire". A queue of long polls (40 registers, ~110 ms each at 9600 baud, paced by the simulator as a
 * real line would be) and a setpoint write issued at a random moment: the write goes out right after
 * the poll on the wire, ahead of every other queued poll.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { systemClock } from '../drivers/clock.js';
import { silentLog } from '../drivers/log.js';
import { createModbusBus } from '../drivers/modbus/index.js';
import type { ModbusBus } from '../drivers/modbus/types.js';
import { RegisterImage } from '../simulators/modbus/image.js';
import { PtyPair, socatAvailable } from '../simulators/modbus/pty.js';
import { charTimeMs, ModbusRtuServer } from '../simulators/modbus/rtu-server.js';
import { requirePackage } from './helpers.js';

const BAUD = 9600;
const present = requirePackage('socat', 'socat', socatAvailable);

describe.runIf(present)('a write on a 9600-baud RTU line', () => {
  let pty: PtyPair;
  let server: ModbusRtuServer;
  let bus: ModbusBus;
  const image = new RegisterImage();

  beforeAll(async () => {
    pty = await PtyPair.start();
    image.defineBlock(0, 200, 'holding');
    image.setWritable(100, 1);
    server = new ModbusRtuServer({ path: pty.pathA, baudRate: BAUD });
    server.addUnit(1, image);
    await server.start();
    bus = createModbusBus({ connection: { rtu: { path: pty.pathB, baudRate: BAUD, parity: 'none', dataBits: 8, stopBits: 1 } }, clock: systemClock, log: silentLog, timeoutMs: 1000 });
    await bus.start();
  });

  afterAll(async () => {
    await bus?.stop();
    await server?.stop();
    await pty?.stop();
  });

  it('waits for at most the one poll already on the wire, five times at random moments', async () => {
    const unit = bus.unit(1);
    // One poll: 8-byte request + 85-byte answer; the write: 11 + 8 bytes (11 bits per character).
    const pollMs = (8 + 85) * charTimeMs(BAUD);
    const writeMs = (11 + 8) * charTimeMs(BAUD);
    for (let trial = 0; trial < 5; trial++) {
      let pollsDone = 0;
      const polls = Array.from({ length: 10 }, () => unit.readRegisters('holding', 0, 40, { priority: 'poll' }).then(() => pollsDone++));
      await new Promise((r) => setTimeout(r, 150 + Math.random() * 200));
      const before = pollsDone;
      const t0 = performance.now();
      await unit.writeRegisters(100, [trial + 1]);
      const waitedMs = performance.now() - t0;
      const pollsBetween = pollsDone - before;
      expect(pollsBetween, `trial ${trial}: ${pollsBetween} polls completed while the write waited ${waitedMs.toFixed(0)} ms`).toBeLessThanOrEqual(1);
      expect(waitedMs).toBeLessThan(pollMs + writeMs + 80);
      expect(image.read(100, 1)).toEqual([trial + 1]);
      // The rest of the queue comes after it.
      await Promise.all(polls);
      expect(pollsDone - before).toBeGreaterThan(3);
    }
  }, 60_000);
});
