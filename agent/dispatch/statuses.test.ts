import { createServer, type AddressInfo, type Socket } from 'node:net';
import { Aedes } from 'aedes';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLog } from '../../drivers/log.js';
import { signEnvelope, verifyEnvelope, type Envelope } from '../../ledger-client/eip712.js';
import { Uplink } from '../uplink.js';
import { waitFor } from '../../test/helpers.js';
import { CHAIN_ID, GATEWAY, MINUTE_MS, T0, makeSide, orderMessage, settle, signed, type TestSide } from './test-support.js';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

function side(options: Parameters<typeof makeSide>[0] = {}): TestSide {
  const s = makeSide(options);
  cleanups.push(() => s.close());
  return s;
}

describe('status outbox (recording transport, manual clock)', () => {
  it('signs each status with the gateway key for the configured chain; the envelope verifies', async () => {
    const s = side();
    s.book.submit(signed(orderMessage(T0)));
    await settle();
    const [payload] = s.transport.published;
    const result = verifyEnvelope(JSON.parse(payload!), { chainId: CHAIN_ID, expectedType: 'OrderStatus' });
    expect(result).toMatchObject({ ok: true, signer: GATEWAY.address });
  });

  it('stores a status unsigned with the decision, and signs it only once the loop is idle (the decision\'s device writes done)', async () => {
    let signatures = 0;
    let idle: () => void = () => undefined;
    const s = side({
      sign: (status) => {
        signatures++;
        return signEnvelope(GATEWAY.privateKey, 'OrderStatus', status, CHAIN_ID);
      },
      whenLoopIdle: () => new Promise<void>((resolve) => (idle = resolve)),
    });
    s.book.submit(signed(orderMessage(T0)));
    await settle();
    expect(s.dispatch.allStatuses().map((st) => [st.status, st.payload])).toEqual([[1, undefined]]);
    expect(signatures).toBe(0);
    expect(s.transport.published).toEqual([]);
    idle();
    await settle();
    expect(signatures).toBe(1);
    expect(s.transport.published).toEqual([s.dispatch.allStatuses()[0]!.payload]);
  });

  it('a loop that never gets idle holds a status back at most 250 ms', async () => {
    const s = side({ whenLoopIdle: () => new Promise<void>(() => undefined) });
    s.book.submit(signed(orderMessage(T0)));
    await settle();
    s.clock.advance(249);
    await settle();
    expect(s.transport.published).toEqual([]);
    s.clock.advance(1);
    await settle();
    expect(s.transport.messages().map((m) => m.status)).toEqual([1]);
  });

  it('while the uplink is down statuses wait in the store; after the reconnect they go out in order, each after the previous PUBACK', async () => {
    const s = side();
    s.transport.connected = false;
    // windows apart: no order supersedes another
    for (let i = 0; i < 3; i++) s.book.submit(signed(orderMessage(T0, { sequence: T0 + i, start: T0 + (i + 1) * 20 * MINUTE_MS })));
    s.book.submit('garbage');
    await settle();
    expect(s.transport.published).toEqual([]);
    expect(s.statuses.pendingCount).toBe(4);
    s.transport.mode = 'hold';
    s.transport.reconnect();
    await settle();
    expect(s.transport.published).toHaveLength(1); // the second waits for the first one's PUBACK
    s.transport.mode = 'ack';
    s.transport.releaseHeld();
    await settle();
    const stored = s.dispatch.allStatuses();
    expect(s.transport.published).toEqual(stored.map((st) => st.payload));
    expect(s.transport.messages().map((m) => m.status)).toEqual([1, 1, 1, 253]);
    expect(s.statuses.pendingCount).toBe(0);
  });

  it('a status without PUBACK is published again after resendMs, byte for byte, and marked sent once', async () => {
    const s = side();
    s.transport.mode = 'hold';
    s.book.submit(signed(orderMessage(T0)));
    s.book.submit(signed(orderMessage(T0, { sequence: T0 + 1, start: T0 + 20 * MINUTE_MS })));
    await settle();
    expect(s.transport.published).toHaveLength(1);
    s.clock.advance(30_000); // the ack timeout gives up, the resend timer publishes again
    await settle();
    s.clock.advance(1);
    await settle();
    expect(s.transport.published.length).toBeGreaterThanOrEqual(2);
    expect(new Set(s.transport.published).size).toBe(1); // still the first status: order is kept
    s.transport.mode = 'ack';
    s.transport.releaseHeld();
    s.clock.advance(30_000);
    await settle();
    s.clock.advance(1);
    await settle();
    const stored = s.dispatch.allStatuses();
    expect(stored.every((st) => st.sentAtMs !== undefined)).toBe(true);
    expect(stored[0]!.attempts).toBeGreaterThanOrEqual(2);
    const sentRows = s.audit.recent(50).filter((e) => e.kind === 'status_sent');
    expect(sentRows).toHaveLength(2);
  });

  it('a failing publish is retried at the next resend; nothing is marked sent without a PUBACK', async () => {
    const s = side();
    s.transport.mode = 'fail';
    s.book.submit(signed(orderMessage(T0)));
    await settle();
    expect(s.dispatch.allStatuses()[0]!.sentAtMs).toBeUndefined();
    s.transport.mode = 'ack';
    s.clock.advance(30_000);
    await settle();
    expect(s.dispatch.allStatuses()[0]!.sentAtMs).toBe(T0 + 30_000);
    expect(s.transport.published).toHaveLength(2);
  });
});

/** An aedes broker that records what is published on `topic` (seen at the broker: no subscriber race). */
async function recordingBroker(topic: string, port = 0): Promise<{ url: string; port: number; seen: string[]; close(): Promise<void> }> {
  const aedes = await Aedes.createBroker();
  const seen: string[] = [];
  aedes.on('publish', (packet, client) => {
    if (client && packet.topic === topic) seen.push(packet.payload.toString());
  });
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const actual = (server.address() as AddressInfo).port;
  let closing: Promise<void> | undefined;
  return {
    url: `mqtt://127.0.0.1:${actual}`,
    port: actual,
    seen,
    close: () =>
      (closing ??= new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => aedes.close(() => resolve()));
      })),
  };
}

describe('status outbox on a real broker (aedes) through the uplink', () => {

  it('statuses made during a broker outage are delivered after the reconnect, in order, and marked sent', async () => {
    const ackTopic = `flex/v1/gw/${GATEWAY.address}/ack`;
    let broker = await recordingBroker(ackTopic);
    const port = broker.port;
    cleanups.push(() => broker.close());
    const s = side({ nowMs: Date.now() });
    const uplink = new Uplink({ url: broker.url, gateway: GATEWAY.address, version: '0.0.0', log: silentLog, now: () => Date.now() });
    uplink.start();
    cleanups.push(() => uplink.stop());
    await uplink.waitConnected();
    s.statuses.attachTransport(uplink.statusTransport());

    s.book.submit(signed(orderMessage(s.clock.now(), { durationMs: 5 * MINUTE_MS })));
    await waitFor('first status acknowledged', () => s.statuses.pendingCount === 0);
    expect(broker.seen).toHaveLength(1);

    await broker.close();
    await waitFor('uplink noticed the outage', () => !uplink.connected);
    s.clock.advance(1000);
    for (let i = 1; i <= 3; i++) s.book.submit(signed(orderMessage(s.clock.now(), { sequence: s.clock.now() + i, start: s.clock.now() + i * 10 * MINUTE_MS, durationMs: 5 * MINUTE_MS })));
    await settle();
    expect(s.statuses.pendingCount).toBe(3);

    broker = await recordingBroker(ackTopic, port);
    await waitFor('statuses sent after the reconnect', () => s.statuses.pendingCount === 0, 15_000);
    const stored = s.dispatch.allStatuses().slice(1);
    expect(broker.seen).toEqual(stored.map((st) => st.payload));
    for (const payload of broker.seen) expect((JSON.parse(payload) as Envelope<'OrderStatus'>).message.status).toBe(1);
  });
});
