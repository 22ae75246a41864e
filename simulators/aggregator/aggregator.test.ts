/**
 * The simulated aggregator against a real broker (aedes), with a scripted gateway written here from
 * ledger-client alone (the gateway's own code is tested end to end in test/dispatch-aggregator.test.ts).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Aedes } from 'aedes';
import mqtt, { type MqttClient } from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { addressOf, signEnvelope, verifyRawEnvelope, type DispatchOrder, type Hex } from '../../ledger-client/eip712.js';
import { AggregatorSimulator, StatusTimeoutError } from './aggregator.js';
import { main, parseDurationMs, parseStartMs } from './cli.js';

const CHAIN_ID = 31337;
const AGGREGATOR_KEY: Hex = `0x${'11'.repeat(32)}`;
const GATEWAY_KEY: Hex = `0x${'22'.repeat(32)}`;
const FORGER_KEY: Hex = `0x${'66'.repeat(32)}`;
const GATEWAY = addressOf(GATEWAY_KEY);
const dir = mkdtempSync(join(tmpdir(), 'flexgate-aggsim-'));

let brokerUrl = '';
let closeBroker: () => Promise<void> = async () => undefined;
let gateway: MqttClient;
/** Orders the scripted gateway received (verified). */
const orders: DispatchOrder[] = [];

beforeAll(async () => {
  const aedes = await Aedes.createBroker();
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    aedes.handle(socket);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  brokerUrl = `mqtt://127.0.0.1:${(server.address() as AddressInfo).port}`;
  closeBroker = () =>
    new Promise<void>((resolve) => {
      for (const s of sockets) s.destroy();
      server.close(() => aedes.close(() => resolve()));
    });
  // the scripted gateway: RECEIVED (or CANCELLED for a CANCEL) for every valid order, signed with its key
  gateway = await mqtt.connectAsync(brokerUrl);
  await gateway.publishAsync(`flex/v1/gw/${GATEWAY}/status`, JSON.stringify({ online: true, version: '9.9.9', at: 1 }), { qos: 1, retain: true });
  await gateway.subscribeAsync(`flex/v1/gw/${GATEWAY}/order`, { qos: 1 });
  gateway.on('message', (_topic, payload) => {
    const v = verifyRawEnvelope(payload, { chainId: CHAIN_ID, expectedType: 'DispatchOrder' });
    if (!v.ok) return;
    const order = v.envelope.message as DispatchOrder;
    orders.push(order);
    const status = { orderId: order.orderId, gateway: GATEWAY, modification: order.modification, status: order.signal === 0 ? 6 : 1, reason: 0, at: order.issuedAt, deliveredWh: order.signal === 0 ? -42 : 0 };
    void gateway.publishAsync(`flex/v1/gw/${GATEWAY}/ack`, JSON.stringify(signEnvelope(GATEWAY_KEY, 'OrderStatus', status, CHAIN_ID)), { qos: 1 });
  });
});

afterAll(async () => {
  await gateway.endAsync(true);
  await closeBroker();
  rmSync(dir, { recursive: true, force: true });
});

describe('aggregator simulator', () => {
  it('sends signed orders with increasing sequences, verifies the statuses and waits for them; the sequence survives a restart', async () => {
    const stateFile = join(dir, 'state.json');
    let now = 1_000;
    const sim = await AggregatorSimulator.start({ brokerUrl, chainId: CHAIN_ID, privateKey: AGGREGATOR_KEY, gateway: GATEWAY.toUpperCase().replace('0X', '0x'), stateFile, now: () => now });
    const a = await sim.send({ signal: 'import-limit', valueW: 3000, durationMs: 900_000, rampMs: 30_000, randomizeMs: 10_000 });
    const b = await sim.send({ signal: 'delta', valueW: -2500, startMs: 5000, durationMs: 60_000 });
    expect(a.message).toMatchObject({ aggregator: addressOf(AGGREGATOR_KEY), gateway: GATEWAY, signal: 1, valueW: 3000, sequence: 1000, issuedAt: 1000, validUntil: 31_000, start: 0, rampMs: 30_000, randomizeMs: 10_000, modification: 0 });
    expect(b.message.sequence).toBe(1001);
    const received = await sim.waitForStatus(a.message.orderId, 'RECEIVED', 5000);
    expect(received).toMatchObject({ valid: true, signer: GATEWAY, message: { status: 1, orderId: a.message.orderId } });
    await sim.waitForStatus(b.message.orderId, 1, 5000);
    expect(sim.gatewayPresence(GATEWAY)).toEqual({ online: true, version: '9.9.9', at: 1 });
    // CANCEL: a new version of the order, signal 0
    const c = await sim.cancel(a.message.orderId);
    expect(c.message).toMatchObject({ orderId: a.message.orderId, signal: 0, modification: 1, sequence: 1002 });
    expect(await sim.waitForStatus(a.message.orderId, 'CANCELLED', 5000, 1)).toMatchObject({ message: { deliveredWh: -42 } });
    await sim.stop();
    expect(JSON.parse(readFileSync(stateFile, 'utf8'))).toMatchObject({ sequences: { [`${addressOf(AGGREGATOR_KEY)}:${GATEWAY}`]: 1002 }, modifications: { [a.message.orderId]: 1 } });

    now = 500; // a clock behind: the sequence still goes up
    const again = await AggregatorSimulator.start({ brokerUrl, chainId: CHAIN_ID, privateKey: AGGREGATOR_KEY, gateway: GATEWAY, stateFile, now: () => now });
    const d = await again.send({ signal: 'export-limit', valueW: 0, durationMs: 1000, orderId: a.message.orderId });
    expect(d.message).toMatchObject({ sequence: 1003, modification: 2 });
    await again.stop();
    expect(orders.map((o) => o.sequence).slice(-4)).toEqual([1000, 1001, 1002, 1003]);
  });

  it('flags a status not signed by the gateway of its topic, and never returns it from waitForStatus', async () => {
    const sim = await AggregatorSimulator.start({ brokerUrl, chainId: CHAIN_ID, privateKey: AGGREGATOR_KEY, gateway: GATEWAY });
    const orderId: Hex = `0x${'77'.repeat(32)}`;
    const forged = signEnvelope(FORGER_KEY, 'OrderStatus', { orderId, gateway: addressOf(FORGER_KEY), modification: 0, status: 3, reason: 0, at: 1, deliveredWh: -999 }, CHAIN_ID);
    await gateway.publishAsync(`flex/v1/gw/${GATEWAY}/ack`, JSON.stringify(forged), { qos: 1 });
    const tampered = signEnvelope(GATEWAY_KEY, 'OrderStatus', { orderId, gateway: GATEWAY, modification: 0, status: 3, reason: 0, at: 1, deliveredWh: -1 }, CHAIN_ID);
    await gateway.publishAsync(`flex/v1/gw/${GATEWAY}/ack`, JSON.stringify(tampered).replace('"deliveredWh":-1', '"deliveredWh":-1000'), { qos: 1 });
    await gateway.publishAsync(`flex/v1/gw/${GATEWAY}/ack`, 'not json', { qos: 1 });
    await expect(sim.waitForStatus(orderId, 'COMPLETED', 500)).rejects.toBeInstanceOf(StatusTimeoutError);
    const mine = sim.statuses.filter((s) => s.raw.includes(orderId.slice(2)) || s.raw === 'not json');
    expect(mine.map((s) => [s.valid, s.error?.split(':')[0]])).toEqual([
      [false, 'signed by 0x' + addressOf(FORGER_KEY).slice(2) + ', not by the gateway of the topic ' + GATEWAY],
      [false, 'BAD_SIGNATURE'],
      [false, 'MALFORMED'],
    ]);
    await sim.stop();
  });

  it('the CLI sends from a demo manifest, waits for the answer, and keeps its sequence between runs', async () => {
    const manifest = join(dir, 'demo.json');
    writeFileSync(manifest, JSON.stringify({ brokerUrl, localBrokerUrl: brokerUrl, chainId: CHAIN_ID, aggregator: { address: addressOf(AGGREGATOR_KEY), privateKey: AGGREGATOR_KEY }, gateway: { address: GATEWAY, name: 'demo-home' }, devices: [] }));
    const lines: string[] = [];
    const out = (s: string) => lines.push(s);
    const before = orders.length;
    expect(await main(['send', '--manifest', manifest, '--signal', 'import-limit', '--value', '3000', '--duration', '15m', '--start', '+1m', '--ramp', '30s', '--randomize', '10s'], out)).toBe(0);
    expect(await main(['send', '--manifest', manifest, '--signal', 'setpoint', '--value=-1500', '--duration', '1h', '--json'], out)).toBe(0);
    const [first, second] = orders.slice(before);
    expect(first).toMatchObject({ signal: 1, valueW: 3000, durationMs: 900_000, rampMs: 30_000, randomizeMs: 10_000 });
    expect(first!.start - first!.issuedAt).toBeGreaterThanOrEqual(59_000);
    expect(second!.sequence).toBeGreaterThan(first!.sequence);
    expect(lines[0]).toMatch(new RegExp(`^order ${first!.orderId} mod 0 sent to ${GATEWAY}`));
    expect(lines[1]).toMatch(/ RECEIVED  deliveredWh 0  \[signed by the gateway\]/);
    expect(JSON.parse(lines[2]!)).toMatchObject({ envelope: { message: { signal: 3, valueW: -1500 } }, status: { status: 1 } });
    expect(JSON.parse(readFileSync(join(dir, 'aggregator-state.json'), 'utf8')).sequences).toBeDefined();
    lines.length = 0;
    expect(await main(['cancel', '--manifest', manifest, '--order', first!.orderId], out)).toBe(0);
    expect(orders[orders.length - 1]).toMatchObject({ orderId: first!.orderId, signal: 0, modification: 1 });
    expect(lines[1]).toMatch(/CANCELLED  deliveredWh -42/);
  });

  it('parses durations and start times as documented', () => {
    expect(parseDurationMs('15m', 'x')).toBe(900_000);
    expect(parseDurationMs('30s', 'x')).toBe(30_000);
    expect(parseDurationMs('1h', 'x')).toBe(3_600_000);
    expect(parseDurationMs('250ms', 'x')).toBe(250);
    expect(parseDurationMs('1500', 'x')).toBe(1500);
    expect(() => parseDurationMs('soon', '--duration')).toThrow(/--duration: expected a duration/);
    expect(parseStartMs('+1m', 1000)).toBe(61_000);
    expect(parseStartMs('now', 1000)).toBe(0);
    expect(parseStartMs('2025-11-24T16:00:00Z', 0)).toBe(1_764_000_000_000);
    expect(parseStartMs('1764000000000', 0)).toBe(1_764_000_000_000);
  });
});
