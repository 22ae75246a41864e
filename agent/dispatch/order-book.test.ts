import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { signEnvelope, type DispatchOrder } from '../../ledger-client/eip712.js';
import { tempDir } from '../store/test-helpers.js';
import { ManualClock } from '../store/test-clock.js';
import { STATUSES } from './protocol.js';
import { AGGREGATOR, AGGREGATOR_2, GATEWAY, MINUTE_MS, T0, makeSide, newOrderId, orderMessage, settle, signed, type TestSide } from './test-support.js';

const sides: TestSide[] = [];
const dirs: { cleanup(): void }[] = [];
afterEach(async () => {
  for (const s of sides.splice(0)) await s.close();
  for (const d of dirs.splice(0)) d.cleanup();
});

function side(options: Parameters<typeof makeSide>[0] = {}): TestSide {
  const s = makeSide(options);
  sides.push(s);
  return s;
}

/** [orderId-suffix-free] status, reason, modification, deliveredWh, at of what was published. */
function published(s: TestSide): [number, number, number, number, number][] {
  return s.transport.messages().map((m) => [m.status, m.reason, m.modification, m.deliveredWh, m.at]);
}

function send(s: TestSide, patch: Partial<DispatchOrder> = {}, key = AGGREGATOR.privateKey): { order: DispatchOrder; result: ReturnType<TestSide['book']['submit']> } {
  const now = s.clock.now();
  const order = orderMessage(now, { sequence: now * 10 + Math.floor(Math.random() * 9), ...patch });
  return { order, result: s.book.submit(signed(order, key)) };
}

describe('accepting an order', () => {
  it('raises the sequence and stores the order and its RECEIVED before publishing it; active in its window', async () => {
    const s = side();
    const seen: { sequence: number | undefined; statuses: number }[] = [];
    const publish = s.transport.publishStatus.bind(s.transport);
    s.transport.publishStatus = (payload) => {
      seen.push({ sequence: s.dispatch.lastSequence(AGGREGATOR.address, GATEWAY.address), statuses: s.dispatch.allStatuses().length });
      return publish(payload);
    };
    const { order, result } = send(s, { start: T0 + MINUTE_MS, sequence: 42 });
    expect(result.verdict).toMatchObject({ ok: true, kind: 'new' });
    await settle();
    expect(seen).toEqual([{ sequence: 42, statuses: 1 }]);
    expect(published(s)).toEqual([[STATUSES.RECEIVED, 0, 0, 0, T0]]);
    expect(s.dispatch.allStatuses()[0]!.sentAtMs).toBe(T0);
    expect(s.book.activeOrders(T0)).toEqual([]);
    expect(s.book.nextChangeAtMs(T0)).toBe(T0 + MINUTE_MS);
    const [active] = s.book.activeOrders(T0 + MINUTE_MS);
    expect(active).toEqual({
      key: `${order.orderId}:0`,
      orderId: order.orderId,
      modification: 0,
      aggregator: AGGREGATOR.address,
      signal: 1,
      valueW: 3000,
      effectiveStartMs: T0 + MINUTE_MS,
      endMs: T0 + 16 * MINUTE_MS,
      rampMs: 0,
      priceMicros: 0,
      acceptedAtMs: T0,
    });
    expect(s.book.activeOrders(T0 + 16 * MINUTE_MS)).toEqual([]);
  });

  it('start 0 = the time of receipt; STARTED once when the dispatcher reports it (reason 12 when safety-limited); COMPLETED at the end', async () => {
    const s = side();
    const { order } = send(s, { start: 0, durationMs: 10 * MINUTE_MS });
    const key = `${order.orderId}:0`;
    expect(s.book.activeOrders(T0).map((o) => [o.effectiveStartMs, o.endMs])).toEqual([[T0, T0 + 10 * MINUTE_MS]]);
    s.clock.advance(2000);
    s.execution.delivered.set(key, -3);
    s.book.started(key, { atMs: T0 + 1500, safetyLimited: true });
    s.book.started(key, { atMs: T0 + 1900, safetyLimited: false }); // again: no second STARTED
    s.clock.advance(10 * MINUTE_MS);
    s.execution.delivered.set(key, -412.4);
    expect(s.book.nextChangeAtMs()).toBe(s.clock.now()); // the end is due
    expect(s.book.tick()).toBe(1);
    expect(s.book.activeOrders()).toEqual([]);
    await settle();
    expect(published(s)).toEqual([
      [STATUSES.RECEIVED, 0, 0, 0, T0],
      [STATUSES.STARTED, 12, 0, -3, T0 + 1500],
      [STATUSES.COMPLETED, 12, 0, -412, T0 + 10 * MINUTE_MS],
    ]);
    expect(s.dispatch.order(key)).toMatchObject({ state: 'completed', deliveredWh: -412, safetyLimited: true, startedAtMs: T0 + 1500, endedAtMs: T0 + 10 * MINUTE_MS });
    // a modification of an order that has ended
    expect(s.book.submit(signed({ ...order, modification: 1, sequence: order.sequence + 1, issuedAt: s.clock.now(), validUntil: s.clock.now() + 1000, start: s.clock.now() + 1000 })).verdict).toMatchObject({
      ok: false,
      reasonName: 'UNKNOWN_ORDER',
    });
  });

  it('ABORTED (reason 11) when the dispatcher gives up, with its deliveredWh; the order then ends', async () => {
    const s = side();
    const { order } = send(s);
    const key = `${order.orderId}:0`;
    s.book.started(key, { atMs: T0 + 100, safetyLimited: false });
    s.book.aborted(key, { atMs: T0 + 5000, deliveredWh: -7 });
    s.book.aborted(key, { atMs: T0 + 6000, deliveredWh: -8 });
    await settle();
    expect(published(s)).toEqual([
      [1, 0, 0, 0, T0],
      [2, 0, 0, 0, T0 + 100],
      [10, 11, 0, -7, T0 + 5000],
    ]);
    expect(s.book.activeOrders()).toEqual([]);
    expect(s.book.tick(T0 + 60 * MINUTE_MS)).toBe(0);
  });
});

describe('modification, supersession, CANCEL', () => {
  it('a higher modification replaces the live version at once: RECEIVED, then SUPERSEDED for the earlier one', async () => {
    const s = side();
    const { order } = send(s, { sequence: 100, durationMs: 30 * MINUTE_MS });
    s.book.started(`${order.orderId}:0`, { atMs: T0, safetyLimited: false });
    s.clock.advance(MINUTE_MS);
    s.execution.delivered.set(`${order.orderId}:0`, -20);
    const now = s.clock.now();
    const v1 = { ...order, modification: 1, sequence: 101, issuedAt: now, validUntil: now + 10_000, valueW: 2000 };
    expect(s.book.submit(signed(v1)).verdict).toMatchObject({ ok: true, kind: 'modification' });
    await settle();
    expect(published(s).slice(2)).toEqual([
      [STATUSES.RECEIVED, 0, 1, 0, now],
      [STATUSES.SUPERSEDED, 0, 0, -20, now],
    ]);
    expect(s.book.activeOrders().map((o) => [o.key, o.valueW])).toEqual([[`${order.orderId}:1`, 2000]]);
    // the earlier version again (fresh sequence): REPLAY; the same modification again: REPLAY
    expect(s.book.submit(signed({ ...order, sequence: 102, issuedAt: now, validUntil: now + 1 })).verdict).toMatchObject({ reasonName: 'REPLAY' });
    expect(s.book.submit(signed({ ...v1, sequence: 103 })).verdict).toMatchObject({ reasonName: 'REPLAY' });
    // a higher modification with a sequence not above the last: REPLAY
    expect(s.book.submit(signed({ ...v1, modification: 2, sequence: 50 })).verdict).toMatchObject({ reasonName: 'REPLAY' });
  });

  it('a new overlapping order of the same aggregator takes over at its own start; the earlier one gets SUPERSEDED then', async () => {
    const s = side();
    const { order: a } = send(s, { sequence: 1, durationMs: 60 * MINUTE_MS, valueW: 4000 });
    const { order: other } = send(s, { sequence: 1, durationMs: 60 * MINUTE_MS, aggregator: AGGREGATOR_2.address, valueW: 5000 }, AGGREGATOR_2.privateKey);
    const { order: b } = send(s, { sequence: 2, start: T0 + 20 * MINUTE_MS, durationMs: 10 * MINUTE_MS, valueW: 1000 });
    const keys = (t: number) => s.book.activeOrders(t).map((o) => o.key);
    expect(keys(T0 + 19 * MINUTE_MS)).toEqual([`${a.orderId}:0`, `${other.orderId}:0`]);
    expect(s.book.nextChangeAtMs(T0 + MINUTE_MS)).toBe(T0 + 20 * MINUTE_MS);
    s.clock.advance(20 * MINUTE_MS);
    s.execution.delivered.set(`${a.orderId}:0`, -100);
    expect(s.book.tick()).toBe(1);
    expect(keys(s.clock.now())).toEqual([`${other.orderId}:0`, `${b.orderId}:0`]);
    await settle();
    const superseded = s.transport.messages().filter((m) => m.status === STATUSES.SUPERSEDED);
    expect(superseded).toEqual([expect.objectContaining({ orderId: a.orderId, modification: 0, deliveredWh: -100, at: T0 + 20 * MINUTE_MS })]);
    // the other aggregator's order is untouched; after b's window nothing of this aggregator runs
    expect(keys(T0 + 31 * MINUTE_MS)).toEqual([`${other.orderId}:0`]);
  });

  it('a pending earlier order that would not have started before the new one is SUPERSEDED at once; a non-overlapping one is untouched', async () => {
    const s = side();
    const { order: later } = send(s, { sequence: 1, start: T0 + 30 * MINUTE_MS, durationMs: 10 * MINUTE_MS });
    const { order: apart } = send(s, { sequence: 2, start: T0 + 50 * MINUTE_MS, durationMs: 10 * MINUTE_MS });
    const { order: now } = send(s, { sequence: 3, start: T0 + 5 * MINUTE_MS, durationMs: 30 * MINUTE_MS });
    await settle();
    expect(s.transport.messages().map((m) => [m.orderId, m.status])).toEqual([
      [later.orderId, 1],
      [apart.orderId, 1],
      [now.orderId, 1],
      [later.orderId, 7],
    ]);
    expect(s.book.liveOrders().map((o) => o.orderId)).toEqual([apart.orderId, now.orderId]);
  });

  it('CANCEL ends the order now: CANCELLED with the CANCEL’s modification and deliveredWh so far, no RECEIVED for it', async () => {
    const s = side();
    const { order } = send(s, { sequence: 10, modification: 0 });
    s.clock.advance(5 * MINUTE_MS);
    s.execution.delivered.set(`${order.orderId}:0`, -250);
    const now = s.clock.now();
    const cancel = { ...order, signal: 0, modification: 1, sequence: 11, issuedAt: now, validUntil: now + 5000, valueW: 0, durationMs: 0 };
    expect(s.book.submit(signed(cancel)).verdict).toMatchObject({ ok: true, kind: 'cancel' });
    expect(s.book.activeOrders()).toEqual([]);
    await settle();
    expect(published(s)).toEqual([
      [STATUSES.RECEIVED, 0, 0, 0, T0],
      [STATUSES.CANCELLED, 0, 1, -250, now],
    ]);
    expect(s.dispatch.order(`${order.orderId}:0`)).toMatchObject({ state: 'cancelled', cancelModification: 1, deliveredWh: -250 });
    // the same CANCEL again: REPLAY (sequence); a higher one: UNKNOWN_ORDER (ended); its modification again: REPLAY
    expect(s.book.submit(signed(cancel)).verdict).toMatchObject({ reasonName: 'REPLAY' });
    expect(s.book.submit(signed({ ...cancel, modification: 2, sequence: 12 })).verdict).toMatchObject({ reasonName: 'UNKNOWN_ORDER' });
    expect(s.book.submit(signed({ ...cancel, modification: 1, sequence: 13 })).verdict).toMatchObject({ reasonName: 'REPLAY' });
  });

  it('UNKNOWN_ORDER: CANCEL or modification of an order never accepted, or of another aggregator; the sequence is raised all the same', async () => {
    const s = side();
    const { result: r1 } = send(s, { sequence: 5, signal: 0, modification: 1 });
    expect(r1.verdict).toMatchObject({ ok: false, reasonName: 'UNKNOWN_ORDER', status: 252 });
    const { order } = send(s, { sequence: 6 });
    const { result: r2 } = send(s, { ...order, sequence: 1, aggregator: AGGREGATOR_2.address, modification: 1, signal: 0 }, AGGREGATOR_2.privateKey);
    expect(r2.verdict).toMatchObject({ ok: false, reasonName: 'UNKNOWN_ORDER' });
    // the rejected order raised AGGREGATOR_2's sequence: the same sequence again is a REPLAY
    const { result: r3 } = send(s, { sequence: 1, aggregator: AGGREGATOR_2.address }, AGGREGATOR_2.privateKey);
    expect(r3.verdict).toMatchObject({ ok: false, reasonName: 'REPLAY' });
    await settle();
    expect(s.transport.messages().map((m) => [m.status, m.reason])).toEqual([
      [252, 10],
      [1, 0],
      [252, 10],
      [253, 6],
    ]);
  });
});

describe('random start offset (randomizeMs)', () => {
  it('draws once per accepted version, uniform in [0, randomizeMs]; STARTED’s at − start shows it', async () => {
    const s = side({ random: () => 0.25 });
    const { order } = send(s, { start: T0 + MINUTE_MS, randomizeMs: 10_000 });
    const [o] = s.book.liveOrders();
    expect(o).toMatchObject({ randomOffsetMs: 2500, effectiveStartMs: T0 + MINUTE_MS + 2500, endMs: T0 + 16 * MINUTE_MS });
    expect(s.book.activeOrders(T0 + MINUTE_MS + 2499)).toEqual([]);
    expect(s.book.activeOrders(T0 + MINUTE_MS + 2500)).toHaveLength(1);
    expect(s.book.nextChangeAtMs(T0)).toBe(T0 + MINUTE_MS + 2500);
    s.book.started(o!.key, { atMs: o!.effectiveStartMs, safetyLimited: false });
    await settle();
    const started = s.transport.messages().find((m) => m.status === STATUSES.STARTED)!;
    expect(started.at - order.start).toBe(2500);
  });

  it('with the default (crypto) source, offsets cover [0, randomizeMs] and never leave it', () => {
    const s = side({ random: undefined });
    const offsets: number[] = [];
    for (let i = 0; i < 200; i++) {
      const { result } = send(s, { sequence: 1000 + i, start: T0 + MINUTE_MS, durationMs: MINUTE_MS, randomizeMs: 3 });
      expect(result.verdict.ok).toBe(true);
    }
    for (const o of s.dispatch.recentOrders(1000)) offsets.push(o.randomOffsetMs);
    expect(new Set(offsets)).toEqual(new Set([0, 1, 2, 3]));
  });
});

describe('restart', () => {
  it('an order in its window continues after a restart; STARTED is not sent twice; it completes at its end', async () => {
    const dir = tempDir('flexgate-orders-');
    dirs.push(dir);
    const path = join(dir.dir, 'flexgate.db');
    const clock = new ManualClock(T0);
    const first = makeSide({ path, clock, random: () => 0.5 });
    const { order } = send(first, { start: 0, durationMs: 20 * MINUTE_MS, randomizeMs: 60_000 });
    const key = `${order.orderId}:0`;
    clock.advance(31_000);
    first.book.started(key, { atMs: clock.now(), safetyLimited: false });
    await settle();
    await first.close();

    clock.advance(5 * MINUTE_MS);
    const second = side({ path, clock, random: () => 0.99 });
    expect(second.book.activeOrders().map((o) => [o.key, o.effectiveStartMs])).toEqual([[key, T0 + 30_000]]);
    second.book.started(key, { atMs: clock.now(), safetyLimited: false }); // the dispatcher re-applies it
    // its sequence survived: another order with the same sequence is a REPLAY
    const again = { ...order, orderId: newOrderId(), issuedAt: clock.now(), validUntil: clock.now() + 1000 };
    expect(second.book.submit(signed(again)).verdict).toMatchObject({ reasonName: 'REPLAY' });
    clock.advance(15 * MINUTE_MS);
    second.book.tick();
    await settle();
    expect(second.dispatch.allStatuses().map((st) => st.status)).toEqual([1, 2, 253, 3]);
    expect(second.transport.messages().map((m) => m.status)).toEqual([253, 3]);
  });
});

describe('statuses', () => {
  it('one status per (orderId, modification, status): a rejection repeated is not answered twice', async () => {
    const s = side();
    const bad = signed(orderMessage(T0, { signal: 77, sequence: 1 }));
    s.book.submit(bad);
    s.book.submit(bad); // now a REPLAY: also 253 for the same (orderId, modification)
    s.book.submit('not json');
    s.book.submit('also not json');
    await settle();
    expect(s.transport.messages().map((m) => [m.status, m.reason, m.deliveredWh])).toEqual([
      [252, 8, 0],
      [253, 6, 0],
      [253, 1, 0],
    ]);
    // every received message is in the audit log
    expect(s.dispatch.recentReceived(10).map((r) => r.reason)).toEqual([1, 1, 6, 8]);
  });

  it('a decision that cannot be stored keeps nothing and sends nothing (no sequence raised, no audit row)', async () => {
    let fail = true;
    const s = side();
    const insertStatus = s.dispatch.insertStatus.bind(s.dispatch);
    s.dispatch.insertStatus = (status) => {
      if (fail) throw new Error('disk on fire');
      return insertStatus(status);
    };
    const { order, result } = send(s, { sequence: 9 });
    expect(result.error?.message).toBe('disk on fire');
    expect(s.dispatch.lastSequence(AGGREGATOR.address, GATEWAY.address)).toBeUndefined();
    expect(s.dispatch.recentReceived(10)).toEqual([]);
    expect(s.book.liveOrders()).toEqual([]);
    fail = false;
    expect(s.book.submit(signed(order)).verdict.ok).toBe(true);
    await settle();
    expect(s.transport.messages().map((m) => m.status)).toEqual([1]);
  });

  it('a status that cannot be signed when it is due stays pending and goes out on the next pass, signed', async () => {
    let fail = true;
    const s = side({
      sign: (status) => {
        if (fail) throw new Error('signer unavailable');
        return signEnvelope(GATEWAY.privateKey, 'OrderStatus', status, 31337);
      },
    });
    const { result } = send(s, { sequence: 9 });
    expect(result.verdict.ok).toBe(true);
    await settle();
    expect(s.transport.messages()).toEqual([]);
    expect(s.statuses.pendingCount).toBe(1);
    expect(s.dispatch.unsentStatuses()[0]!.payload).toBeUndefined();
    fail = false;
    await s.statuses.flush();
    expect(s.transport.messages().map((m) => m.status)).toEqual([1]);
    expect(s.statuses.pendingCount).toBe(0);
    expect(s.transport.published).toEqual([s.dispatch.allStatuses()[0]!.payload]);
  });

  it('rejected orders never reach the dispatcher side', () => {
    const s = side();
    send(s, { valueW: -1 });
    send(s, { gateway: AGGREGATOR.address });
    s.book.submit('{}');
    expect(s.book.liveOrders()).toEqual([]);
    expect(s.book.activeOrders()).toEqual([]);
    expect(s.execution.calls).toBe(0);
  });

  it('the audit trail holds the order received, each decision and each status sent', async () => {
    const s = side();
    const { order } = send(s);
    const key = `${order.orderId}:0`;
    await settle();
    s.book.started(key, { atMs: T0 + 10, safetyLimited: false });
    await settle();
    s.clock.advance(16 * MINUTE_MS);
    s.book.tick();
    await settle();
    s.audit.setpoint(key, 'battery', 'setPowerW', -2000, true);
    const trail = s.audit.trail(order.orderId);
    expect(trail.map((e) => [e.kind, e.status ?? e.verdict ?? e.what ?? null])).toEqual([
      ['received', 'accepted'],
      ['accepted', null],
      ['status_sent', 1],
      ['started', null],
      ['status_sent', 2],
      ['completed', null],
      ['status_sent', 3],
      ['setpoint', 'setPowerW'],
    ]);
    expect(trail[0]!.raw!.toString()).toBe(signed(order));
    expect(trail[0]!.signer).toBe(AGGREGATOR.address);
  });
});
