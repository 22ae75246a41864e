/**
 * Dispatch latency (DESIGN.md quality target): a signed order published on the aggregator's broker →
 * every device setpoint of it acknowledged by the simulators, p50/p99 over ≥ 1000 orders, 4 devices
 * (PV, battery, EV charger, heat pump) over Modbus TCP on loopback. Target: p99 ≤ 10 ms, and no slower
 * than a bare Node-RED flow (mqtt in → modbus write, no verification; bench/dispatch-nodered.ts).
 *
 * Same run, same broker process, same simulated home (own process), fresh counting proxies each:
 *  - flexgate: the compiled agent, started with the service's node flags (docs/flexgate.service),
 *    verifying every order (EIP-712, trusted signer, sequence made durable in SQLite) and carrying it
 *    out through the order book and the dispatcher. One sample = publish → the last write response
 *    (at the proxies) of the writes the order caused; the order's STARTED status (sent only after every
 *    one of its writes was confirmed) marks which writes belong to it.
 *  - the floor: mqtt.js + modbus-serial, the same four devices written in parallel for each order,
 *    nothing verified (the bare process of bench/dispatch-nodered.ts).
 *  - Node-RED 4.1 with node-red-contrib-modbus, the committed flow bench/node-red/dispatch-flow.json.
 * Orders alternate between a site setpoint deep in export and one deep in import, each superseding
 * the last, so each moves every device (battery full discharge / charge, EV paused / full current,
 * heat pump offset down / back, PV limit off / on). The report says how many devices each order wrote.
 *
 *   npm run bench -- dispatch        (FLEXGATE_BENCH_MESSAGES, FLEXGATE_BENCH_RUNS: default 1000, 3)
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import mqtt from 'mqtt';
import { stringify } from 'yaml';
import { execFileSync } from 'node:child_process';
import { addressOf, type Hex } from '../ledger-client/eip712.js';
import type { Address } from '../ledger-client/wire.js';
import type { HomeDevice } from '../simulators/home.js';
import { DISPATCH_DEVICES, nodeRedDispatchWrites, runBareDispatch, runNodeRedDispatch, signedOrders, type DispatchLatency, type DispatchSample } from './dispatch-nodered.js';
import { median, percentile, ProxySet, REPO_ROOT, startBrokerProcess, startCompiledAgent, startSimProcess, type CountingProxy, type WireRequest } from './support.js';
import type { BenchRow, Benchmark, Out } from './types.js';

const CHAIN_ID = 31337;
const TARGET_P99_MS = 10;
const WRITE_FCS = new Set([5, 6, 15, 16]);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface FlexgateLatency extends DispatchLatency {
  /** Per timed order: how many of the four devices it wrote. */
  devicesWritten: number[];
}

function agentConfig(dataDir: string, devices: readonly HomeDevice[], proxies: ProxySet, brokerUrl: string, aggregator: Address): string {
  const wanted = devices.filter((d) => d.modbus && (DISPATCH_DEVICES as readonly string[]).concat('meter').includes(d.id));
  return stringify({
    gateway: { name: 'bench-dispatch', dataDir },
    log: { level: 'info' }, // the production default (and 'agent started' is how the bench knows it is up)
    uplink: { url: brokerUrl },
    dispatch: { trustedAggregators: [aggregator], chainId: CHAIN_ID, siteMaxImportW: 50_000, siteMaxExportW: 50_000 },
    devices: wanted.map((d) => ({
      id: d.id,
      class: d.class,
      ...(d.profile ? { driver: 'profile', profile: d.profile } : { driver: 'sunspec' }),
      ...(d.class === 'ev-charger' ? { evCharger: { phases: 3, minCurrentA: 6, maxCurrentA: 16, voltageV: 230 } } : {}),
      ...(d.class === 'hvac' ? { hvac: { ratedPowerW: 2500, comfortMinC: 18, comfortMaxC: 24, maxOffsetC: 3 } } : {}),
      connection: { tcp: { host: '127.0.0.1', port: proxies.portOf(d) } },
      unitId: d.modbus!.unitId,
      pollIntervalMs: 1000,
    })),
  });
}

/** Orders alternating between −20 kW and +30 kW site setpoints (each supersedes the last). */
function setpointOrders(gateway: Address, privateKey: Hex): (i: number) => { payload: string; orderId: string } {
  const orders = signedOrders(gateway, privateKey, (i) => ({ signal: 3, valueW: i % 2 === 0 ? -20_000 : 30_000 }));
  return (i) => {
    const payload = orders.makeOrder(i);
    return { payload, orderId: orders.orderIdOf(payload) };
  };
}

async function runFlexgateDispatch(o: { devices: readonly HomeDevice[]; proxies: ProxySet; brokerUrl: string; messages: number; warmup?: number; out: Out }): Promise<FlexgateLatency> {
  const dir = mkdtempSync(join(tmpdir(), 'flexgate-bench-dispatch-'));
  const aggregatorKey: Hex = `0x${randomBytes(32).toString('hex')}`;
  try {
    const dataDir = join(dir, 'data');
    mkdirSync(dataDir, { recursive: true });
    // The gateway's identity, made as an installer makes it: flexgate keys init.
    const cli = join(REPO_ROOT, 'dist', 'agent', 'cli.js');
    execFileSync(process.execPath, [cli, 'keys', 'init', '--data-dir', dataDir], { stdio: 'ignore' });
    const shown = execFileSync(process.execPath, [cli, 'keys', 'show', '--data-dir', dataDir], { encoding: 'utf8' });
    const gateway = /0x[0-9a-fA-F]{40}/.exec(shown)?.[0] as Address | undefined;
    if (!gateway) throw new Error(`flexgate keys show printed no address: ${shown}`);
    const configPath = join(dir, 'flexgate.yaml');
    writeFileSync(configPath, agentConfig(dataDir, o.devices, o.proxies, o.brokerUrl, addressOf(aggregatorKey)));
    const agent = await startCompiledAgent(configPath);
    const client = await mqtt.connectAsync(o.brokerUrl, { clientId: `flexgate-bench-aggregator-${randomBytes(4).toString('hex')}`, clean: true, protocolVersion: 4, reconnectPeriod: 0 });
    // The aggregator here both publishes orders and acknowledges statuses: without TCP_NODELAY its
    // small PUBACKs would hold the next order back by up to a delayed ACK (40 ms) (Nagle).
    (client.stream as { setNoDelay?: (on: boolean) => void }).setNoDelay?.(true);
    const deviceOf = new Map<string, string>();
    for (const d of o.devices) if (d.modbus && (DISPATCH_DEVICES as readonly string[]).includes(d.id)) deviceOf.set(`${o.proxies.portOf(d)} u${d.modbus.unitId}`, d.id);
    let current: { t0: number; orderId: string; firstRequestMs: number; lastResponseMs: number; devices: Set<string>; started: () => void } | undefined;
    const firstWrites: number[] = [];
    for (const p of o.proxies.proxies) {
      p.onRequest = (r) => {
        if (current && WRITE_FCS.has(r.functionCode) && current.firstRequestMs === 0) current.firstRequestMs = r.atMs;
      };
    }
    const onResponse = (proxy: CountingProxy) => (r: WireRequest, atMs: number) => {
      if (!current || !WRITE_FCS.has(r.functionCode)) return;
      const id = deviceOf.get(`${proxy.port} u${r.unitId}`);
      if (id) current.devices.add(id);
      current.lastResponseMs = Math.max(current.lastResponseMs, atMs);
    };
    for (const p of o.proxies.proxies) p.onResponse = onResponse(p);
    client.on('message', (_topic, payload) => {
      try {
        const m = (JSON.parse(payload.toString('utf8')) as { message?: { orderId?: string; status?: number } }).message;
        if (current && m?.status === 2 && m.orderId?.toLowerCase() === current.orderId.toLowerCase()) current.started();
      } catch {
        // not a status
      }
    });
    await client.subscribeAsync(`flex/v1/gw/${gateway}/ack`, { qos: 1 });
    const makeOrder = setpointOrders(gateway, aggregatorKey);
    const one = async (i: number, timeoutMs: number): Promise<{ sample: DispatchSample; devices: number } | undefined> => {
      const { payload, orderId } = makeOrder(i);
      let timer: NodeJS.Timeout | undefined;
      const state = { t0: 0, orderId, firstRequestMs: 0, lastResponseMs: 0, devices: new Set<string>(), started: () => {} };
      const started = new Promise<boolean>((resolve) => {
        state.started = () => resolve(true);
        timer = setTimeout(() => resolve(false), timeoutMs);
      });
      current = state;
      state.t0 = performance.now();
      client.publish(`flex/v1/gw/${gateway}/order`, payload, { qos: 1 });
      const ok = await started;
      clearTimeout(timer);
      current = undefined;
      if (!ok || state.devices.size === 0) return undefined;
      const ms = state.lastResponseMs - state.t0;
      firstWrites.push(state.firstRequestMs - state.t0);
      return { sample: { receivedMs: ms, acknowledgedMs: ms }, devices: state.devices.size };
    };
    try {
      // Ready: subscribed to orders, every device connected and read once.
      const readyBy = performance.now() + 60_000;
      let i = 0;
      while (!(await one(i++, 1000))) {
        if (performance.now() > readyBy) throw new Error('flexgate carried out no order within 60 s');
        await sleep(500);
      }
      const samples: DispatchSample[] = [];
      const devicesWritten: number[] = [];
      let lost = 0;
      const warmup = o.warmup ?? 50;
      for (let n = 0; n < warmup + o.messages; n++) {
        await sleep(5 + Math.random() * 10);
        const s = await one(i++, 2000);
        if (!s) lost++;
        else if (n >= warmup) {
          samples.push(s.sample);
          devicesWritten.push(s.devices);
        }
      }
      o.out(`  flexgate: first write on the wire ${percentile(firstWrites, 50).toFixed(2)} ms after the publish (p50): MQTT, verification, the durable sequence, the decision`);
      const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${agent.child.pid}/status`, 'utf8'))?.[1];
      if (hwm) o.out(`  flexgate: peak RSS of the agent over the run ${(Number(hwm) / 1024).toFixed(1)} MB (${DISPATCH_DEVICES.length + 1} devices, dispatch on, ${warmup + o.messages} orders back to back)`);
      return { samples, lost, exceptions: 0, devicesWritten };
    } finally {
      for (const p of o.proxies.proxies) {
        p.onResponse = undefined;
        p.onRequest = undefined;
      }
      await client.endAsync(true);
      await agent.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function fmt(ms: number): string {
  return `${ms.toFixed(2)} ms`;
}

export async function runDispatchBenchmark(out: Out, options: { messages: number; runs: number }): Promise<BenchRow[]> {
  // A winter noon: the heat pump runs (so it can be turned down), the PV produces (so it can be curtailed).
  const sim = await startSimProcess({ flexibleLoads: true, seed: 3, cloudiness: 0, startTimeMs: Date.UTC(2026, 0, 14, 12), evEnergyWantedWh: 200_000, evArrivals: false });
  const broker = await startBrokerProcess();
  const runs: { flexgate: FlexgateLatency; nodeRed: DispatchLatency; bare: DispatchLatency }[] = [];
  try {
    const dispatchDevices = DISPATCH_DEVICES.map((id) => sim.devices.find((d) => d.id === id && d.modbus)!);
    const otherGateway = `0x${randomBytes(20).toString('hex')}` as Address;
    // Fresh counting proxies for each system's run, stopped whatever happens.
    const withProxies = async <T>(fn: (proxies: ProxySet) => Promise<T>): Promise<T> => {
      const proxies = await ProxySet.start(sim.devices);
      try {
        return await fn(proxies);
      } finally {
        await proxies.stop();
      }
    };
    const bare = (proxies: ProxySet, messages: number) =>
      runBareDispatch({ devices: dispatchDevices, proxies, broker, gateway: otherGateway, expected: nodeRedDispatchWrites(dispatchDevices, proxies), messages });
    // Warm the test apparatus (the simulated home, the broker, this process's proxies and MQTT
    // client: all JIT-compiled) before anything is timed, so that whichever system goes first in run
    // 1 is not also timing their warm-up. Bare writes, not recorded.
    await withProxies((proxies) => bare(proxies, 300));
    for (let run = 1; run <= options.runs; run++) {
      const order = (['flexgate', 'bare', 'nodeRed'] as const).map((_, k, all) => all[(k + run - 1) % all.length]!);
      // FLEXGATE_BENCH_ONLY=flexgate: flexgate alone, no baselines and so no rows (for a look inside).
      if (process.env['FLEXGATE_BENCH_ONLY'] === 'flexgate') order.splice(0, order.length, 'flexgate');
      const f: Partial<(typeof runs)[number]> = {};
      for (const who of order) {
        await withProxies(async (proxies) => {
          if (who === 'flexgate') f.flexgate = await runFlexgateDispatch({ devices: sim.devices, proxies, brokerUrl: broker.url, messages: options.messages, out });
          else if (who === 'nodeRed') f.nodeRed = await runNodeRedDispatch({ devices: dispatchDevices, proxies, broker, gateway: otherGateway, messages: options.messages, out });
          else f.bare = await bare(proxies, options.messages);
        });
      }
      const r = f as (typeof runs)[number];
      runs.push(r);
      const line = (l: DispatchLatency) => {
        const a = l.samples.map((s) => s.acknowledgedMs);
        return `p50 ${fmt(percentile(a, 50))} p99 ${fmt(percentile(a, 99))} (${l.samples.length} orders${l.lost ? `, ${l.lost} lost` : ''})`;
      };
      const written = r.flexgate.devicesWritten;
      const all4 = written.filter((n) => n === DISPATCH_DEVICES.length).length;
      out(`run ${run} (${order.join(', ')}): flexgate ${line(r.flexgate)}, ${all4} of ${written.length} orders wrote all ${DISPATCH_DEVICES.length} devices (mean ${(written.reduce((a, b) => a + b, 0) / Math.max(1, written.length)).toFixed(2)})${r.bare ? `; bare floor ${line(r.bare)}` : ''}${r.nodeRed ? `; Node-RED ${line(r.nodeRed)}` : ''}`);
    }
  } finally {
    await broker.stop();
    await sim.stop();
  }
  if (runs.some((r) => !r.bare || !r.nodeRed)) return []; // FLEXGATE_BENCH_ONLY: no baselines, no rows
  const scenario = `${DISPATCH_DEVICES.length} devices, Modbus TCP loopback, ${options.messages} orders × ${options.runs} runs`;
  const ack = (l: DispatchLatency, p: number) => percentile(l.samples.map((s) => s.acknowledgedMs), p);
  const rows: BenchRow[] = [];
  for (const p of [50, 99]) {
    const fg = runs.map((r) => ack(r.flexgate, p));
    const bare = runs.map((r) => ack(r.bare, p));
    const red = runs.map((r) => ack(r.nodeRed, p));
    rows.push({ benchmark: 'dispatch', scenario, figure: `p${p} order → all setpoints acknowledged, vs bare mqtt + modbus-serial (floor)`, value: fmt(median(fg)), baseline: fmt(median(bare)), ratio: median(fg.map((x, i) => x / bare[i]!)) });
    rows.push({ benchmark: 'dispatch', scenario, figure: `p${p} order → all setpoints acknowledged, vs bare Node-RED flow`, value: fmt(median(fg)), baseline: fmt(median(red)), ratio: median(fg.map((x, i) => x / red[i]!)), target: { op: '<=', value: 1 } });
  }
  const p99 = median(runs.map((r) => ack(r.flexgate, 99)));
  rows.push({ benchmark: 'dispatch', scenario, figure: 'p99 order → all setpoints acknowledged, vs the 10 ms target', value: fmt(p99), baseline: fmt(TARGET_P99_MS), ratio: p99 / TARGET_P99_MS, target: { op: '<=', value: 1 } });
  return rows;
}

export const dispatchBenchmark: Benchmark = {
  name: 'dispatch',
  run: (out) => runDispatchBenchmark(out, { messages: Number(process.env['FLEXGATE_BENCH_MESSAGES'] ?? 1000), runs: Number(process.env['FLEXGATE_BENCH_RUNS'] ?? 3) }),
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { messages: { type: 'string', default: '1000' }, runs: { type: 'string', default: '3' } } });
  const rows = await runDispatchBenchmark((l) => process.stdout.write(`${l}\n`), { messages: Number(values.messages), runs: Number(values.runs) });
  for (const r of rows) process.stdout.write(`${r.figure}: ${r.value} (baseline ${r.baseline}), ratio ${r.ratio.toFixed(2)}\n`);
}
