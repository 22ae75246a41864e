/**
 * The aggregator simulator against the gateway's real order side over a real broker (aedes): uplink
 * (QoS 1 order subscription, persistent session), order queue, order book, status outbox. Every
 * status the aggregator sees is verified against the gateway address by the simulator.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrderSide, type OrderSide } from '../agent/dispatch/order-side.js';
import type { OrderExecution } from '../agent/dispatch/types.js';
import { startEmbeddedBroker, type EmbeddedBroker } from '../agent/embedded-broker.js';
import { openStore, type Store } from '../agent/store/index.js';
import { Uplink } from '../agent/uplink.js';
import { systemClock } from '../drivers/clock.js';
import { silentLog } from '../drivers/log.js';
import { addressOf, type Hex } from '../ledger-client/eip712.js';
import { AggregatorSimulator } from '../simulators/aggregator/aggregator.js';
import { tempDir, waitFor } from './helpers.js';

const CHAIN_ID = 31337;
const GATEWAY_KEY: Hex = `0x${'22'.repeat(32)}`;
const AGGREGATOR_KEY: Hex = `0x${'11'.repeat(32)}`;
const STRANGER_KEY: Hex = `0x${'44'.repeat(32)}`;
const GATEWAY = addressOf(GATEWAY_KEY);
const ZERO_ID = `0x${'00'.repeat(32)}`;

const dir = tempDir('flexgate-dispatch-e2e-');
let broker: EmbeddedBroker;
let store: Store;
let uplink: Uplink;
let side: OrderSide;
let aggregator: AggregatorSimulator;
const delivered = new Map<string, number>();
const execution: OrderExecution = { deliveredWh: (key) => delivered.get(key) ?? 0, safetyLimited: () => false };

function startUplink(): Uplink {
  const u = new Uplink({ url: broker.url, gateway: GATEWAY, version: '0.1.0', log: silentLog, now: () => Date.now() });
  u.onOrder((raw) => side.intake.push(raw));
  side.statuses.attachTransport(u.statusTransport());
  u.start();
  return u;
}

beforeAll(async () => {
  broker = await startEmbeddedBroker();
  store = openStore({ path: join(dir.path, 'flexgate.db'), clock: systemClock, log: silentLog });
  side = createOrderSide({
    db: store.database,
    clock: systemClock,
    log: silentLog,
    key: { privateKey: GATEWAY_KEY, address: GATEWAY },
    dispatch: { trustedAggregators: [addressOf(AGGREGATOR_KEY).toUpperCase().replace('0X', '0x')], siteMaxImportW: 17_000, siteMaxExportW: 10_000, statusResendMs: 5000 },
    chainId: CHAIN_ID,
    deltaRangeW: () => ({ minW: -5000, maxW: 5000 }),
    // the control loop's enqueue: the task runs later, never inside the MQTT callback
    enqueue: (task) => new Promise<void>((resolve) => setImmediate(() => resolve(task()))),
    execution,
  });
  side.start();
  uplink = startUplink();
  await uplink.waitConnected();
  aggregator = await AggregatorSimulator.start({ brokerUrl: broker.url, chainId: CHAIN_ID, privateKey: AGGREGATOR_KEY, gateway: GATEWAY, stateFile: join(dir.path, 'aggregator-state.json') });
});

afterAll(async () => {
  await aggregator.stop();
  await uplink.stop();
  await side.stop();
  store.close();
  await broker.close();
  dir.remove();
});

describe('aggregator ↔ gateway over MQTT', () => {
  it('order → RECEIVED; devices acknowledged → STARTED; CANCEL → CANCELLED with deliveredWh so far', async () => {
    const order = await aggregator.send({ signal: 'import-limit', valueW: 3000, durationMs: 15 * 60_000, rampMs: 30_000 });
    const id = order.message.orderId;
    await aggregator.waitForStatus(id, 'RECEIVED', 10_000);
    const [active] = side.book.activeOrders();
    expect(active).toMatchObject({ orderId: id, signal: 1, valueW: 3000, rampMs: 30_000 });
    side.book.started(active!.key, { atMs: Date.now(), safetyLimited: false });
    await aggregator.waitForStatus(id, 'STARTED', 10_000);
    delivered.set(active!.key, -120);
    await aggregator.cancel(id);
    const cancelled = await aggregator.waitForStatus(id, 'CANCELLED', 10_000, 1);
    expect(cancelled.message).toMatchObject({ deliveredWh: -120, reason: 0, gateway: GATEWAY });
    expect(side.book.activeOrders()).toEqual([]);
    // no RECEIVED for the CANCEL itself
    expect(aggregator.statuses.filter((s) => s.message?.orderId === id).map((s) => [s.message!.modification, s.message!.status])).toEqual([
      [0, 1],
      [0, 2],
      [1, 6],
    ]);
  });

  it('rejections reach the aggregator with their reason: garbage, a replayed sequence, an untrusted aggregator', async () => {
    await aggregator.publishRaw('{"type":"DispatchOrder"');
    expect((await aggregator.waitForStatus(ZERO_ID, 'INVALID', 10_000)).message).toMatchObject({ reason: 1, deliveredWh: 0 });
    const replay = await aggregator.send({ signal: 'export-limit', valueW: 100, durationMs: 60_000, message: { sequence: 5 } });
    expect((await aggregator.waitForStatus(replay.message.orderId, 'INVALID', 10_000)).message!.reason).toBe(6);
    const stranger = await AggregatorSimulator.start({ brokerUrl: broker.url, chainId: CHAIN_ID, privateKey: STRANGER_KEY, gateway: GATEWAY });
    try {
      const untrusted = await stranger.send({ signal: 'setpoint', valueW: 0, durationMs: 60_000 });
      expect((await stranger.waitForStatus(untrusted.message.orderId, 253, 10_000)).message!.reason).toBe(3);
    } finally {
      await stranger.stop();
    }
    const tooBig = await aggregator.send({ signal: 'import-limit', valueW: 50_000, durationMs: 60_000 });
    expect((await aggregator.waitForStatus(tooBig.message.orderId, 'NOT_APPLICABLE', 10_000)).message!.reason).toBe(9);
    expect(aggregator.statuses.every((s) => s.valid)).toBe(true);
  });

  it('an order sent while the gateway is offline is delivered and answered when it is back (persistent session)', async () => {
    await uplink.stop();
    const order = await aggregator.send({ signal: 'delta', valueW: -2000, durationMs: 10 * 60_000, startMs: Date.now() + 60_000, validForMs: 60_000 });
    await new Promise((r) => setTimeout(r, 100));
    expect(side.book.liveOrders().some((o) => o.orderId === order.message.orderId)).toBe(false);
    uplink = startUplink();
    await aggregator.waitForStatus(order.message.orderId, 'RECEIVED', 15_000);
    await waitFor('status outbox empty', () => side.statuses.pendingCount === 0);
  });
});
