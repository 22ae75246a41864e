/**
 * Dispatch latency of a bare Node-RED flow, for the dispatch benchmark (DESIGN.md: flexgate's order →
 * every setpoint acknowledged must be no slower than "a bare Node-RED flow (mqtt in → modbus write)
 * that verifies nothing, measured side by side").
 *
 * The flow is bench/node-red/dispatch-flow.json: mqtt in on `flex/v1/gw/{gateway}/order` → a function
 * node that takes the setpoints out of the order → node-red-contrib-modbus modbus-write nodes to the
 * four devices of the simulated home (PV limit, battery rates + mode, EV current, heat pump offset).
 * It runs in a real Node-RED 4.1 (bench/node-red/harness.ts) against the simulated home (own process)
 * through counting proxies, with the MQTT broker in its own process too.
 *
 * One sample = one signed DispatchOrder (PROTOCOL.md §3, SITE_DELTA, a fresh order each time)
 * published at QoS 1 by the benchmark → every expected write seen by the proxies: "received" when the
 * last write request reached the simulator side, "acknowledged" when the last response came back.
 * Both ends are timed in the benchmark's process (performance.now(): the publish just before
 * `publish()`, the writes when their bytes arrive at the proxy). One order at a time: the next is
 * published 5–15 ms (random) after the previous one's last acknowledgement.
 *
 * Same-run baseline: a bare floor — a Node.js process with mqtt.js and modbus-serial that does what
 * the flow does (same writes, devices in parallel, nothing verified) with no framework between.
 * The systems run side by side, each on its own proxies and order topic, and are timed order by order
 * in turn (`timeInterleaved`), so a burst of outside load falls on both alike.
 *
 * Exported for the flexgate side (bench/dispatch.ts): `DispatchTimer` times orders against any
 * system (it only publishes and watches proxies), `signedOrders` makes the orders,
 * `nodeRedDispatchWrites` lists the writes the flow makes, `startNodeRedDispatch` /
 * `startBareDispatch` start the two baselines on given proxies and broker, `withSystems` and
 * `timeInterleaved` run and time them.
 *
 *   npx tsx bench/dispatch-nodered.ts [--messages 1000] [--runs 3]
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { addressOf, signEnvelope, type DispatchOrder, type Hex } from '../ledger-client/eip712.js';
import type { Address } from '../ledger-client/wire.js';
import type { HomeDevice } from '../simulators/home.js';
import { fillTemplate, nodeProblems, startNodeRed } from './node-red/harness.js';
import { median, percentile, ProxySet, REPO_ROOT, requestKey, startBrokerProcess, startSimProcess, stopChild, type CountingProxy, type WireRequest } from './support.js';
import type { BenchRow, Benchmark, Out } from './types.js';

export const DISPATCH_FLOW = 'bench/node-red/dispatch-flow.json';
/** The devices an order moves (DESIGN.md: "4 devices"). */
export const DISPATCH_DEVICES = ['pv', 'battery', 'ev', 'heat-pump'] as const;
const CHAIN_ID = 31337;

/** A write the system under test must make for every order. */
export interface ExpectedWrite {
  device: string;
  proxy: CountingProxy;
  unitId: number;
  functionCode: number;
  address: number;
}

export interface DispatchSample {
  /** Publish → the last expected write request at the simulator side, ms. */
  receivedMs: number;
  /** Publish → the last expected write response back through the proxy, ms. */
  acknowledgedMs: number;
}

export interface DispatchTimerOptions {
  brokerUrl: string;
  topic: string;
  /** The i-th order's payload (signed just before it is published, so it is valid at receipt). */
  makeOrder(i: number): string;
  expected: readonly ExpectedWrite[];
  /** How long to wait for one order's writes before counting it lost. Default 2000 ms. */
  timeoutMs?: number;
  /** How long to try probe orders until the system under test answers one. Default 30 s. */
  readyTimeoutMs?: number;
}

export interface DispatchLatency {
  samples: DispatchSample[];
  /** Orders whose writes did not all arrive within timeoutMs. */
  lost: number;
  /** Write responses that were Modbus exceptions. */
  exceptions: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

function writeKey(proxy: CountingProxy, r: Pick<WireRequest, 'unitId' | 'functionCode' | 'address'>): string {
  return `${proxy.port} u${r.unitId} fc${r.functionCode} ${r.address}`;
}

/**
 * Times orders against one system under test: publishes them one at a time and times each until
 * every expected write was received and acknowledged on the proxies. The system must already be
 * running and connected to `brokerUrl`; `open` sends probe orders until it answers one
 * (subscriptions and Modbus connections take a moment). `measure` may then be called many times
 * (`timeInterleaved` times one order at a time).
 */
export class DispatchTimer {
  private readonly expectedKeys: Set<string>;
  private readonly proxies: CountingProxy[];
  private current: { requests: Map<string, number>; responses: Map<string, number>; done: () => void } | undefined;
  private exceptions = 0;
  private next = 0;

  private constructor(
    private readonly o: DispatchTimerOptions,
    private readonly client: mqtt.MqttClient,
  ) {
    this.expectedKeys = new Set(o.expected.map((e) => writeKey(e.proxy, e)));
    this.proxies = [...new Set(o.expected.map((e) => e.proxy))];
    for (const proxy of this.proxies) {
      proxy.onRequest = (r) => {
        const key = writeKey(proxy, r);
        if (this.current && this.expectedKeys.has(key) && !this.current.requests.has(key)) this.current.requests.set(key, r.atMs);
      };
      proxy.onResponse = (r, atMs, exception) => {
        const key = writeKey(proxy, r);
        const current = this.current;
        if (!current || !this.expectedKeys.has(key) || current.responses.has(key)) return;
        if (exception) this.exceptions++;
        current.responses.set(key, atMs);
        if (current.responses.size === this.expectedKeys.size) current.done();
      };
    }
  }

  /** Connects, then probes until the system carries out an order (or `readyTimeoutMs` passes). */
  static async open(o: DispatchTimerOptions): Promise<DispatchTimer> {
    const client = await mqtt.connectAsync(o.brokerUrl, { clientId: `flexgate-bench-aggregator-${randomBytes(4).toString('hex')}`, clean: true, protocolVersion: 4, reconnectPeriod: 0 });
    const timer = new DispatchTimer(o, client);
    try {
      const giveUpMs = o.readyTimeoutMs ?? 30_000;
      // 250 ms between probes: a late write of one lands before the next.
      await untilAnswered(() => timer.one(250), { pauseMs: 250, giveUpMs, failure: () => `no order was carried out within ${giveUpMs / 1000} s (expected writes: ${[...timer.expectedKeys].join(', ')})` });
      return timer;
    } catch (e) {
      await timer.close();
      throw e;
    }
  }

  /** `warmup` untimed orders, then `messages` timed ones, each 5–15 ms after the last one's writes. */
  async measure(messages: number, warmup: number): Promise<DispatchLatency> {
    const exceptionsBefore = this.exceptions;
    const { timed, lost } = await timeOrders(messages, warmup, () => this.one(this.o.timeoutMs ?? 2000), { pauseAfterLostMs: 500 });
    return { samples: timed, lost, exceptions: this.exceptions - exceptionsBefore };
  }

  async close(): Promise<void> {
    for (const proxy of this.proxies) {
      proxy.onRequest = undefined;
      proxy.onResponse = undefined;
    }
    await this.client.endAsync(true);
  }

  private async one(timeoutMs: number): Promise<DispatchSample | undefined> {
    const payload = this.o.makeOrder(this.next++);
    let timer: NodeJS.Timeout | undefined;
    const state = { requests: new Map<string, number>(), responses: new Map<string, number>(), done: () => {} };
    const finished = new Promise<boolean>((resolve) => {
      state.done = () => resolve(true);
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    this.current = state;
    const t0 = performance.now();
    this.client.publish(this.o.topic, payload, { qos: 1 });
    const ok = await finished;
    clearTimeout(timer);
    this.current = undefined;
    if (!ok) return undefined;
    return { receivedMs: Math.max(...state.requests.values()) - t0, acknowledgedMs: Math.max(...state.responses.values()) - t0 };
  }
}

/** Sends probe orders (`probe` resolves undefined when one went unanswered) until one is answered. */
export async function untilAnswered(probe: () => Promise<unknown>, o: { pauseMs: number; giveUpMs: number; failure: () => string }): Promise<void> {
  const giveUpAt = performance.now() + o.giveUpMs;
  while ((await probe()) === undefined) {
    if (performance.now() > giveUpAt) throw new Error(o.failure());
    await sleep(o.pauseMs);
  }
}

/**
 * One order at a time, each 5–15 ms (random) after the last one's writes: `warmup` untimed, then
 * `messages` timed. `one` sends an order and resolves its result, or undefined when it was lost.
 */
export async function timeOrders<T>(messages: number, warmup: number, one: () => Promise<T | undefined>, o: { pauseAfterLostMs?: number } = {}): Promise<{ timed: T[]; lost: number }> {
  const timed: T[] = [];
  let lost = 0;
  for (let n = 0; n < warmup + messages; n++) {
    await sleep(5 + Math.random() * 10);
    const s = await one();
    if (s === undefined) {
      lost++;
      if (o.pauseAfterLostMs) await sleep(o.pauseAfterLostMs);
    } else if (n >= warmup) timed.push(s);
  }
  return { timed, lost };
}

/** A system under test, started, connected and answering orders. */
export interface DispatchSystem {
  readonly name: string;
  /** `warmup` untimed orders, then `messages` timed ones, each 5–15 ms after the last one's writes. */
  measure(messages: number, warmup: number): Promise<DispatchLatency>;
  stop(): Promise<void>;
}

/**
 * Times every system over the same stretch of the machine's time: `warmup` untimed orders each (one
 * system after the other), then `messages` timed orders each, interleaved order by order (one order to
 * each system per round, the first of a round rotated). The systems run side by side all along, so a
 * burst of load from other jobs on the machine falls on every system's samples alike, not on
 * whichever one was being timed when it came (as when each is timed for 15 s in a row).
 * FLEXGATE_BENCH_TRACE=file.csv appends every timed order: system, when (unix ms), publish → last
 * write answer (ms).
 */
export async function timeInterleaved(systems: readonly DispatchSystem[], o: { messages: number; warmup: number }): Promise<DispatchLatency[]> {
  const results: DispatchLatency[] = systems.map(() => ({ samples: [], lost: 0, exceptions: 0 }));
  const trace: string[] = [];
  for (const s of systems) await s.measure(0, o.warmup);
  for (let round = 0; round < o.messages; round++) {
    for (let j = 0; j < systems.length; j++) {
      const k = (j + round) % systems.length;
      const r = await systems[k]!.measure(1, 0);
      for (const x of r.samples) trace.push(`${systems[k]!.name},${(performance.timeOrigin + performance.now()).toFixed(0)},${x.acknowledgedMs.toFixed(3)}`);
      results[k]!.samples.push(...r.samples);
      results[k]!.lost += r.lost;
      results[k]!.exceptions += r.exceptions;
    }
  }
  const traceFile = process.env['FLEXGATE_BENCH_TRACE'];
  if (traceFile) writeFileSync(traceFile, `system,atUnixMs,acknowledgedMs\n${trace.join('\n')}\n`, { flag: 'a' });
  return results;
}

/**
 * Starts each system on fresh counting proxies of its `proxyDevices`, one after the other, runs
 * `fn`, then stops every system and its proxies whatever happens.
 */
export async function withSystems<T>(entries: readonly { proxyDevices: readonly HomeDevice[]; start(proxies: ProxySet): Promise<DispatchSystem> }[], fn: (systems: DispatchSystem[]) => Promise<T>): Promise<T> {
  const started: { system?: DispatchSystem; proxies: ProxySet }[] = [];
  try {
    for (const e of entries) {
      const slot: { system?: DispatchSystem; proxies: ProxySet } = { proxies: await ProxySet.start(e.proxyDevices) };
      started.push(slot);
      slot.system = await e.start(slot.proxies);
    }
    return await fn(started.map((s) => s.system!));
  } finally {
    // Every one stopped even when one fails to stop; the first failure is reported.
    let failure: unknown;
    for (const s of started) {
      await s.system?.stop().catch((e: unknown) => (failure ??= e));
      await s.proxies.stop().catch((e: unknown) => (failure ??= e));
    }
    if (failure !== undefined) throw failure;
  }
}

/** Signed DispatchOrders (SITE_DELTA, a fresh orderId each, sequences increasing) from a throwaway
 * aggregator key, to `gateway`. valueW cycles through −3000 … +3000 W so every order changes setpoints. */
export function signedOrders(
  gateway: Address,
  privateKey: Hex = `0x${randomBytes(32).toString('hex')}`,
  what: (i: number) => { signal: number; valueW: number } = (i) => ({ signal: 4, valueW: ((i % 7) - 3) * 1000 || 500 }),
): { aggregator: Address; privateKey: Hex; makeOrder(i: number): string; orderIdOf(payload: string): string } {
  const aggregator = addressOf(privateKey);
  const sequence0 = Date.now() * 1000;
  return {
    aggregator,
    privateKey,
    makeOrder(i) {
      const now = Date.now();
      const message: DispatchOrder = {
        orderId: `0x${randomBytes(32).toString('hex')}`,
        aggregator,
        gateway,
        auctionId: `0x${'00'.repeat(32)}`,
        sequence: sequence0 + i,
        issuedAt: now,
        validUntil: now + 30_000,
        start: 0,
        durationMs: 15 * 60_000,
        randomizeMs: 0,
        rampMs: 0,
        ...what(i),
        priceMicros: 0,
        modification: 0,
      };
      return JSON.stringify(signEnvelope(privateKey, 'DispatchOrder', message, CHAIN_ID));
    },
    orderIdOf: (payload) => (JSON.parse(payload) as { message: { orderId: string } }).message.orderId,
  };
}

interface FlowNode {
  id: string;
  type: string;
  [key: string]: unknown;
}

const WRITE_FC: Record<string, number> = { Coil: 5, HoldingRegister: 6, MCoils: 15, MHoldingRegisters: 16 };

/** The writes bench/node-red/dispatch-flow.json makes per order, on the proxies of `devices`. */
export function nodeRedDispatchWrites(devices: readonly HomeDevice[], proxies: ProxySet): ExpectedWrite[] {
  const nodes = JSON.parse(readFileSync(join(REPO_ROOT, DISPATCH_FLOW), 'utf8')) as FlowNode[];
  const clientDevice = new Map<string, string>();
  for (const n of nodes) {
    const m = n.type === 'modbus-client' ? /^\{\{(.+)\.host\}\}$/.exec(String(n['tcpHost'])) : null;
    if (m) clientDevice.set(n.id, m[1]!);
  }
  return nodes
    .filter((n) => n.type === 'modbus-write')
    .map((n) => {
      const id = clientDevice.get(String(n['server']));
      const device = devices.find((d) => d.id === id);
      if (!device) throw new Error(`${DISPATCH_FLOW}: write ${n.id} goes through a client of no known device (${id})`);
      const fc = WRITE_FC[String(n['dataType'])];
      if (fc === undefined) throw new Error(`${DISPATCH_FLOW}: write ${n.id} has dataType ${String(n['dataType'])}`);
      return { device: device.id, proxy: proxies.proxyOf(device), unitId: Number(n['unitid']), functionCode: fc, address: Number(n['adr']) };
    });
}

function dispatchDevices(all: readonly HomeDevice[]): HomeDevice[] {
  return DISPATCH_DEVICES.map((id) => {
    const d = all.find((x) => x.id === id && x.modbus);
    if (!d) throw new Error(`the simulated home has no Modbus device ${id} (start it with flexibleLoads)`);
    return d;
  });
}

/** The Node-RED side: starts the flow on `proxies` and `broker`, waits until it carries out an order. */
export async function startNodeRedDispatch(o: { devices: readonly HomeDevice[]; proxies: ProxySet; broker: { host: string; port: number; url: string }; gateway: Address; out?: Out }): Promise<DispatchSystem> {
  const values: Record<string, string | number> = { 'broker.host': o.broker.host, 'broker.port': o.broker.port, gateway: o.gateway };
  for (const d of o.devices) {
    values[`${d.id}.host`] = '127.0.0.1';
    values[`${d.id}.port`] = o.proxies.portOf(d);
  }
  const red = await startNodeRed({ flow: fillTemplate(DISPATCH_FLOW, values) });
  const stop = async () => {
    const code = await red.stop();
    if (code !== 0) o.out?.(`  warning: Node-RED exited with ${code} on SIGINT`);
  };
  try {
    await red.waitForLog(/^Connected to broker/, 30_000);
    const orders = signedOrders(o.gateway);
    const timer = await DispatchTimer.open({ brokerUrl: o.broker.url, topic: `flex/v1/gw/${o.gateway}/order`, makeOrder: orders.makeOrder, expected: nodeRedDispatchWrites(o.devices, o.proxies) });
    return {
      name: 'Node-RED',
      measure: (messages, warmup) => timer.measure(messages, warmup),
      stop: async () => {
        await timer.close();
        for (const p of nodeProblems(red)) o.out?.(`  warning: Node-RED ${p.type}${p.name ? ` "${p.name}"` : ''}: ${p.msg}`);
        await stop();
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

/** The floor: mqtt.js + modbus-serial, the flow's writes with nothing in between. */
function bareScript(config: { brokerUrl: string; topic: string; endpoints: Record<string, { port: number }> }): string {
  return `
const mqtt = require(${JSON.stringify(join(REPO_ROOT, 'node_modules', 'mqtt'))});
const ModbusRTU = require(${JSON.stringify(join(REPO_ROOT, 'node_modules', 'modbus-serial'))});
const config = ${JSON.stringify(config)};
const clamp = (v, lo, hi) => Math.min(hi, Math.max(lo, v));
const u16 = (v) => v & 0xffff;
(async () => {
  const c = {};
  for (const [id, e] of Object.entries(config.endpoints)) { c[id] = new ModbusRTU(); await c[id].connectTCP('127.0.0.1', { port: e.port }); c[id].setTimeout(1000); }
  c.pv.setID(1); c.battery.setID(1); c.ev.setID(255); c['heat-pump'].setID(1);
  const client = await mqtt.connectAsync(config.brokerUrl, { clean: true, protocolVersion: 4 });
  client.on('message', (_topic, payload) => {
    let o;
    try { o = JSON.parse(payload.toString()).message; } catch { return; }
    if (!o || typeof o.valueW !== 'number') return;
    const w = o.valueW;
    const limitPct = w > 0 ? clamp(100 - (w / 8000) * 100, 0, 100) : 100;
    const p = Math.round(clamp((-w / 5000) * 100, -100, 100) * 10);
    const currentA = w < 0 ? Math.round(clamp(16 + w / 690, 6, 16)) : 16;
    const offset = w < 0 ? -20 : 0;
    c.pv.writeRegisters(40155, [Math.round(limitPct * 10), 0, 900, 0, 1]).catch(() => {});
    c.battery.writeRegisters(40134, [u16(p), u16(-p), 0, 900]).then(() => c.battery.writeRegister(40127, 3)).catch(() => {});
    c.ev.writeRegister(528, currentA).catch(() => {});
    c['heat-pump'].writeRegisters(5050, [u16(offset)]).catch(() => {});
  });
  await client.subscribeAsync(config.topic, { qos: 1 });
  process.stdout.write('ready\\n');
})().catch((e) => { console.error(e); process.exit(1); });
`;
}

/** The bare floor on `proxies` and `broker`, waiting until it carries out an order. */
export async function startBareDispatch(o: { devices: readonly HomeDevice[]; proxies: ProxySet; broker: { url: string }; gateway: Address }): Promise<DispatchSystem> {
  const topic = `flex/v1/gw/${o.gateway}/order`;
  const endpoints = Object.fromEntries(o.devices.map((d) => [d.id, { port: o.proxies.portOf(d) }]));
  const child = spawn(process.execPath, ['-e', bareScript({ brokerUrl: o.broker.url, topic, endpoints })], { stdio: ['ignore', 'pipe', 'inherit'] });
  const stop = () => stopChild(child);
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('the bare dispatcher did not start within 30 s')), 30_000);
      createInterface({ input: child.stdout! }).once('line', () => {
        clearTimeout(timer);
        resolve();
      });
      child.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the bare dispatcher exited (${code})`));
      });
    });
    const orders = signedOrders(o.gateway);
    // The same writes as the flow (the script mirrors its function node), on these proxies.
    const timer = await DispatchTimer.open({ brokerUrl: o.broker.url, topic, makeOrder: orders.makeOrder, expected: nodeRedDispatchWrites(o.devices, o.proxies) });
    return {
      name: 'bare floor',
      measure: (messages, warmup) => timer.measure(messages, warmup),
      stop: async () => {
        await timer.close();
        await stop();
      },
    };
  } catch (e) {
    await stop();
    throw e;
  }
}

interface RunFigures {
  nodeRed: DispatchLatency;
  bare: DispatchLatency;
}

function fmt(ms: number): string {
  return `${ms.toFixed(2)} ms`;
}

export async function runDispatchComparison(out: Out, options: { messages: number; runs: number }): Promise<BenchRow[]> {
  const sim = await startSimProcess({ flexibleLoads: true, seed: 3 });
  const broker = await startBrokerProcess();
  const runs: RunFigures[] = [];
  try {
    const devices = dispatchDevices(sim.devices);
    for (let run = 1; run <= options.runs; run++) {
      // Each on its own proxies and its own gateway address (so its own order topic).
      const gateways = [0, 1].map(() => `0x${randomBytes(20).toString('hex')}` as Address);
      const [nodeRed, bare] = await withSystems(
        [
          { proxyDevices: devices, start: (proxies) => startNodeRedDispatch({ devices, proxies, broker, gateway: gateways[0]!, out }) },
          { proxyDevices: devices, start: (proxies) => startBareDispatch({ devices, proxies, broker, gateway: gateways[1]! }) },
        ],
        (systems) => timeInterleaved(systems, { messages: options.messages, warmup: 50 }),
      );
      const figures: RunFigures = { nodeRed: nodeRed!, bare: bare! };
      const f = figures;
      runs.push(f);
      if (run === 1) out(`writes per order: ${describeWrites()}`);
      const line = (l: DispatchLatency) => {
        const r = l.samples.map((s) => s.receivedMs);
        const a = l.samples.map((s) => s.acknowledgedMs);
        return `received p50 ${fmt(percentile(r, 50))} p99 ${fmt(percentile(r, 99))}, acknowledged p50 ${fmt(percentile(a, 50))} p99 ${fmt(percentile(a, 99))} (${l.samples.length} orders${l.lost ? `, ${l.lost} lost` : ''}${l.exceptions ? `, ${l.exceptions} exceptions` : ''})`;
      };
      out(`run ${run}: Node-RED ${line(f.nodeRed)}; bare floor ${line(f.bare)}`);
    }
  } finally {
    await broker.stop();
    await sim.stop();
  }
  const rows: BenchRow[] = [];
  const scenario = `${DISPATCH_DEVICES.length} devices, Modbus TCP loopback, ${options.messages} orders × ${options.runs}`;
  for (const [what, pick] of [
    ['received', (s: DispatchSample) => s.receivedMs],
    ['acknowledged', (s: DispatchSample) => s.acknowledgedMs],
  ] as const) {
    for (const p of [50, 99]) {
      const red = runs.map((r) => percentile(r.nodeRed.samples.map(pick), p));
      const bare = runs.map((r) => percentile(r.bare.samples.map(pick), p));
      rows.push({
        benchmark: 'dispatch-nodered',
        scenario,
        figure: `Node-RED (not flexgate) p${p} order → all writes ${what}, vs bare mqtt + modbus-serial`,
        value: fmt(median(red)),
        baseline: fmt(median(bare)),
        ratio: median(red.map((x, i) => x / bare[i]!)),
      });
    }
  }
  return rows;
}

function describeWrites(): string {
  const nodes = JSON.parse(readFileSync(join(REPO_ROOT, DISPATCH_FLOW), 'utf8')) as FlowNode[];
  return nodes
    .filter((n) => n.type === 'modbus-write')
    .map((n) => `${String(n['name']).split(':')[0]} ${requestKey({ unitId: Number(n['unitid']), functionCode: WRITE_FC[String(n['dataType'])]!, address: Number(n['adr']), count: Number(n['quantity']) })}`)
    .join(', ');
}

/** Not in `npm run bench` by default (it measures Node-RED, not flexgate): `npm run bench -- dispatch-nodered`. */
export const dispatchNodeRedBenchmark: Benchmark = {
  name: 'dispatch-nodered',
  run: (out) => runDispatchComparison(out, { messages: Number(process.env['FLEXGATE_BENCH_MESSAGES'] ?? 1000), runs: Number(process.env['FLEXGATE_BENCH_RUNS'] ?? 3) }),
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { messages: { type: 'string', default: '1000' }, runs: { type: 'string', default: '3' } } });
  const rows = await runDispatchComparison((l) => process.stdout.write(`${l}\n`), { messages: Number(values.messages), runs: Number(values.runs) });
  for (const r of rows) process.stdout.write(`${r.figure}: ${r.value} (bare ${r.baseline}), ratio ${r.ratio.toFixed(2)}\n`);
}
