/**
 * The back-off numbers, on an injected clock that moves only when the test says so (the sockets
 * are real; only time is simulated).
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BackedOffError, TimeoutError } from '../errors.js';
import { silentLog } from '../log.js';
import { createModbusBus } from './bus.js';
import type { ModbusBus } from './types.js';
import { answerPdu, ManualClock, startFaultServer, waitFor, type FaultServer } from './test-support.js';

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

function track(bus: ModbusBus): ModbusBus {
  cleanups.push(() => bus.stop());
  return bus;
}

async function server(port: number, answers: (unitId: number) => boolean): Promise<FaultServer> {
  const s = await startFaultServer((req, reply) => {
    if (answers(req.unitId)) reply.pdu(answerPdu(req));
  }, port);
  cleanups.push(() => s.close());
  return s;
}

describe('ModbusBus back-off on an injected clock', () => {
  it('retries a refused connection after 0.5 s doubling to 30 s, and starts again at 0.5 s after a success', async () => {
    const clock = new ManualClock();
    const port = await unusedPort();
    const bus = track(createModbusBus({ connection: { tcp: { host: '127.0.0.1', port } }, clock, log: silentLog, connectTimeoutMs: 7777 }));
    await bus.start();
    for (const delayMs of [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]) {
      await waitFor(() => clock.pendingDelays().join() === String(delayMs));
      clock.advance(delayMs);
    }
    await waitFor(() => clock.pendingDelays().join() === '30000');
    expect(bus.stats.connectFailures).toBe(9);
    const first = await server(port, () => true);
    clock.advance(30_000);
    await waitFor(() => bus.connected);
    expect(Array.from(await bus.unit(1).readRegisters('holding', 8, 1))).toEqual([8]);
    await first.close();
    await waitFor(() => !bus.connected);
    expect(clock.pendingDelays()).toEqual([500]);
    await server(port, () => true);
    clock.advance(500);
    await waitFor(() => bus.connected);
    expect(bus.stats.reconnects).toBe(1);
  });

  it('backs a dead unit off after 3 timeouts for 1 s, doubling to 60 s, one probe per period', async () => {
    const clock = new ManualClock();
    const port = await unusedPort();
    const device = await server(port, (unitId) => unitId === 1);
    const bus = track(createModbusBus({ connection: { tcp: { host: '127.0.0.1', port } }, clock, log: silentLog }));
    await bus.start();
    const dead = bus.unit(2);
    const sentToDead = () => device.requests.filter((r) => r.unitId === 2).length;

    const timeOut = async () => {
      const request = dead.readRegisters('holding', 0, 1);
      const sent = sentToDead();
      await waitFor(() => sentToDead() === sent + 1);
      clock.advance(1000); // the default timeout
      await expect(request).rejects.toBeInstanceOf(TimeoutError);
    };
    for (let i = 0; i < 3; i++) await timeOut();
    expect(dead.stats).toMatchObject({ consecutiveFailures: 3, backoffMs: 1000, retryAtMs: clock.now() + 1000 });

    for (const backoffMs of [1000, 2000, 4000, 8000, 16_000, 32_000, 60_000, 60_000]) {
      expect(dead.stats.backoffMs).toBe(backoffMs);
      const sent = sentToDead();
      clock.advance(backoffMs - 1);
      const early = await dead.readRegisters('holding', 0, 1).catch((e: unknown) => e);
      expect(early).toBeInstanceOf(BackedOffError);
      expect((early as BackedOffError).retryAtMs).toBe(clock.now() + 1);
      clock.advance(1);
      await timeOut(); // the one probe
      expect(sentToDead()).toBe(sent + 1);
    }
    expect(dead.stats.backoffMs).toBe(60_000);
    // the healthy unit on the same bus is untouched
    expect(Array.from(await bus.unit(1).readRegisters('holding', 4, 1))).toEqual([4]);
    expect(bus.unit(1).stats.backoffMs).toBe(0);
  });
});
