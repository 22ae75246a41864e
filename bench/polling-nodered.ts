/**
 * Polling, flexgate against Node-RED: the same devices of the simulated home (SunSpec PV, battery and
 * site meter; the Phoenix Contact EV charger, the Lambda heat pump and the Eastron sub-meter) polled
 * once a second by
 *   (a) flexgate as it runs in production (compiled JavaScript, `flexgate start --config`, store on),
 *       its config generated from the simulated home's device list, and
 *   (b) a real Node-RED 4.1 with node-red-contrib-modbus 5.23.3 (bench/node-red/harness.ts) running
 *       bench/node-red/polling-flow.json, the flow a competent Node-RED user builds: one
 *       modbus-client per TCP endpoint, one modbus-read per contiguous register block of the values
 *       flexgate reads, each decoded (scale factors applied) in a function node.
 * Each system runs alone (one after the other, order alternating per run) against its own counting
 * proxies in front of the simulator's servers. Figures per 1 s cycle: Modbus transactions counted on
 * the wire, CPU time of the whole process tree (/proc); also peak RSS. flexgate / Node-RED, medians of
 * the runs. Aim: fewer transactions, less CPU.
 *
 *   npx tsx bench/polling-nodered.ts [--seconds 60] [--runs 3]   (after npm run build)
 *
 * Adding a device to the simulated home: flexgate's side follows by itself; the Node-RED flow must
 * get its reads (the benchmark refuses to compare when a Modbus device of the home has none).
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { HomeDevice } from '../simulators/home.js';
import { fillTemplate, nodeProblems, startNodeRed } from './node-red/harness.js';
import { median, ProxySet, REPO_ROOT, startCompiledAgent, startSimProcess, treeCpuMs, treeRssKb } from './support.js';
import type { BenchRow, Benchmark, Out } from './types.js';

export const POLLING_FLOW = 'bench/node-red/polling-flow.json';
const WARMUP_MS = 5000;

interface FlowNode {
  id: string;
  type: string;
  [key: string]: unknown;
}

/** One modbus-read node of the template. */
export interface FlowRead {
  device: string;
  unitId: number;
  client: string;
  dataType: string;
  address: number;
  count: number;
}

const FC_OF: Record<string, number> = { Coil: 1, Input: 2, HoldingRegister: 3, InputRegister: 4 };

/** The template's reads, and which device each client's placeholders name. */
export function pollingFlowReads(): { reads: FlowRead[]; clientDevice: Map<string, string> } {
  const nodes = JSON.parse(readFileSync(join(REPO_ROOT, POLLING_FLOW), 'utf8')) as FlowNode[];
  const clientDevice = new Map<string, string>();
  for (const n of nodes) {
    if (n.type !== 'modbus-client') continue;
    const m = /^\{\{(.+)\.host\}\}$/.exec(String(n['tcpHost']));
    if (!m) throw new Error(`${POLLING_FLOW}: client ${n.id} has no {{<device>.host}} placeholder`);
    clientDevice.set(n.id, m[1]!);
  }
  const reads = nodes
    .filter((n) => n.type === 'modbus-read')
    .map((n) => ({
      device: String(n['topic']),
      unitId: Number(n['unitid']),
      client: String(n['server']),
      dataType: String(n['dataType']),
      address: Number(n['adr']),
      count: Number(n['quantity']),
    }));
  return { reads, clientDevice };
}

/** The Modbus devices both systems poll; refuses a home and a flow that do not match. */
export function checkFlowAgainstHome(devices: readonly HomeDevice[]): { devices: HomeDevice[]; reads: FlowRead[] } {
  const { reads, clientDevice } = pollingFlowReads();
  const modbus = devices.filter((d) => d.modbus);
  const byId = new Map(modbus.map((d) => [d.id as string, d]));
  const endpoint = (d: HomeDevice) => `${d.modbus!.host}:${d.modbus!.port}`;
  const problems: string[] = [];
  for (const r of reads) {
    const d = byId.get(r.device);
    const clientOf = byId.get(clientDevice.get(r.client) ?? '');
    if (!d) problems.push(`a read has topic "${r.device}", which is no Modbus device of the simulated home`);
    else if (d.modbus!.unitId !== r.unitId) problems.push(`${r.device}: the flow reads unit ${r.unitId}, the device is unit ${d.modbus!.unitId}`);
    else if (!clientOf || endpoint(clientOf) !== endpoint(d)) problems.push(`${r.device}: read through client ${r.client}, which is not the device's endpoint`);
  }
  for (const d of modbus) if (!reads.some((r) => r.device === d.id)) problems.push(`${d.id} (${d.profile ?? 'sunspec'}): the flow has no reads for it — add them to ${POLLING_FLOW}`);
  if (problems.length) throw new Error(`${POLLING_FLOW} does not match the simulated home:\n  ${problems.join('\n  ')}`);
  return { devices: modbus, reads };
}

function templateValues(proxies: ProxySet, devices: readonly HomeDevice[]): Record<string, string | number> {
  const { clientDevice } = pollingFlowReads();
  const values: Record<string, string | number> = {};
  for (const id of clientDevice.values()) {
    const d = devices.find((x) => x.id === id)!;
    values[`${id}.host`] = '127.0.0.1';
    values[`${id}.port`] = proxies.portOf(d);
  }
  return values;
}

export function agentConfig(dataDir: string, devices: readonly HomeDevice[], portOf: (device: HomeDevice) => number): string {
  let siteMeter = false;
  const list = devices.map((d) => {
    const isSite = d.class === 'meter' && !d.profile && !siteMeter;
    if (isSite) siteMeter = true;
    return {
      id: d.id,
      class: d.class,
      ...(d.profile ? { driver: 'profile', profile: d.profile } : { driver: 'sunspec' }),
      ...(d.class === 'meter' && !isSite ? { role: 'submeter' } : {}),
      connection: { tcp: { host: '127.0.0.1', port: portOf(d) } },
      unitId: d.modbus!.unitId,
      pollIntervalMs: 1000,
    };
  });
  return stringify({ gateway: { name: 'bench-home', dataDir }, log: { level: 'info' }, devices: list });
}

interface Measured {
  transactionsPerCycle: number;
  cpuMsPerCycle: number;
  peakRssMb: number;
  exceptions: number;
  /** Per device: request signature → per cycle. */
  requests: Map<string, Map<string, number>>;
}

async function measure(cpuMs: () => number, rssKb: () => number, proxies: ProxySet, devices: readonly HomeDevice[], seconds: number): Promise<Measured> {
  await new Promise((r) => setTimeout(r, WARMUP_MS)); // discovery, connects, first polls
  let exceptions = 0;
  for (const p of proxies.proxies) p.onResponse = (_r, _at, exception) => void (exception && exceptions++);
  proxies.record(true);
  const requests0 = proxies.requests();
  const cpu0 = cpuMs();
  const t0 = Date.now();
  let peakKb = rssKb();
  while (Date.now() - t0 < seconds * 1000) {
    await new Promise((r) => setTimeout(r, 1000));
    peakKb = Math.max(peakKb, rssKb());
  }
  const windowS = (Date.now() - t0) / 1000;
  const cpu = cpuMs() - cpu0;
  const transactions = proxies.requests() - requests0;
  proxies.record(false);
  for (const p of proxies.proxies) p.onResponse = undefined;
  // Poll cycles in the window: how often each request was made, the median over requests (every
  // request is made once a cycle; counting them avoids the ±1 cycle at the window's edges).
  const cycles = median(proxies.proxies.flatMap((p) => [...p.log.values()]));
  const requests = new Map(devices.map((d) => [d.id as string, new Map([...proxies.logOf(d)].map(([k, n]) => [k, n / cycles]))]));
  return { transactionsPerCycle: transactions / cycles, cpuMsPerCycle: cpu / windowS, peakRssMb: peakKb / 1024, exceptions, requests };
}

async function runFlexgate(devices: readonly HomeDevice[], seconds: number): Promise<Measured> {
  const dir = mkdtempSync(join(tmpdir(), 'flexgate-bench-'));
  const proxies = await ProxySet.start(devices);
  try {
    writeFileSync(join(dir, 'flexgate.yaml'), agentConfig(join(dir, 'data'), devices, (d) => proxies.portOf(d)));
    const agent = await startCompiledAgent(join(dir, 'flexgate.yaml'));
    try {
      const pid = agent.child.pid!;
      return await measure(() => treeCpuMs(pid), () => treeRssKb(pid), proxies, devices, seconds);
    } finally {
      await agent.stop();
    }
  } finally {
    await proxies.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function runNodeRed(devices: readonly HomeDevice[], seconds: number, out: Out): Promise<Measured> {
  const proxies = await ProxySet.start(devices);
  try {
    const red = await startNodeRed({ flow: fillTemplate(POLLING_FLOW, templateValues(proxies, devices)) });
    try {
      const m = await measure(red.cpuMs, red.rssKb, proxies, devices, seconds);
      for (const p of nodeProblems(red)) out(`  warning: Node-RED ${p.type}${p.name ? ` "${p.name}"` : ''}: ${p.msg}`);
      return m;
    } finally {
      const code = await red.stop();
      if (code !== 0) out(`  warning: Node-RED exited with ${code} on SIGINT`);
    }
  } finally {
    await proxies.stop();
  }
}

function printRequests(out: Out, devices: readonly HomeDevice[], f: Measured, r: Measured): void {
  const fmt = (m: Map<string, number> | undefined) =>
    [...(m ?? new Map<string, number>())]
      .sort(([a], [b]) => a.localeCompare(b, 'en', { numeric: true }))
      .map(([k, n]) => `${k.replace(/^u\d+ /, '')}${Math.abs(n - 1) > 0.05 ? ` ×${n.toFixed(2)}` : ''}`)
      .join(', ');
  out('requests per cycle on the wire (fc address+count):');
  for (const d of devices) {
    out(`  ${d.id} (unit ${d.modbus!.unitId}): flexgate ${fmt(f.requests.get(d.id))}`);
    out(`  ${' '.repeat(d.id.length)}  ${' '.repeat(String(d.modbus!.unitId).length + 7)}Node-RED ${fmt(r.requests.get(d.id))}`);
  }
}

export async function runPollingComparison(out: Out, options: { seconds: number; runs: number }): Promise<BenchRow[]> {
  const sim = await startSimProcess({ flexibleLoads: true, seed: 3, speed: 1 });
  const flexgate: Measured[] = [];
  const nodeRed: Measured[] = [];
  try {
    const { devices, reads } = checkFlowAgainstHome(sim.devices);
    out(`devices: ${devices.map((d) => `${d.id} (${reads.filter((r) => r.device === d.id).length} Node-RED reads)`).join(', ')}`);
    for (let run = 1; run <= options.runs; run++) {
      let f: Measured;
      let r: Measured;
      if (run % 2 === 1) {
        f = await runFlexgate(devices, options.seconds);
        r = await runNodeRed(devices, options.seconds, out);
      } else {
        r = await runNodeRed(devices, options.seconds, out);
        f = await runFlexgate(devices, options.seconds);
      }
      flexgate.push(f);
      nodeRed.push(r);
      if (run === 1) printRequests(out, devices, f, r);
      for (const [who, m] of [['flexgate', f], ['Node-RED', r]] as const) if (m.exceptions) out(`  warning: ${who} got ${m.exceptions} exception responses`);
      out(
        `run ${run}${run % 2 ? '' : ' (Node-RED first)'}: flexgate ${f.transactionsPerCycle.toFixed(2)} transactions, ${f.cpuMsPerCycle.toFixed(2)} ms CPU per cycle, peak RSS ${f.peakRssMb.toFixed(1)} MB; ` +
          `Node-RED ${r.transactionsPerCycle.toFixed(2)} transactions, ${r.cpuMsPerCycle.toFixed(2)} ms CPU per cycle, peak RSS ${r.peakRssMb.toFixed(1)} MB`,
      );
    }
  } finally {
    await sim.stop();
  }
  const med = (list: Measured[], k: 'transactionsPerCycle' | 'cpuMsPerCycle' | 'peakRssMb') => median(list.map((m) => m[k]));
  const ratios = (k: 'transactionsPerCycle' | 'cpuMsPerCycle' | 'peakRssMb') => flexgate.map((m, i) => m[k] / nodeRed[i]![k]);
  const cpuRatios = ratios('cpuMsPerCycle');
  out(`CPU ratio per run: ${cpuRatios.map((x) => x.toFixed(2)).join(', ')}`);
  const scenario = `${sim.devices.filter((d) => d.modbus).length} devices, 1 s polls, ${options.seconds} s × ${options.runs}`;
  return [
    {
      benchmark: 'polling-nodered',
      scenario,
      figure: 'Modbus transactions per cycle vs Node-RED',
      value: med(flexgate, 'transactionsPerCycle').toFixed(2),
      baseline: med(nodeRed, 'transactionsPerCycle').toFixed(2),
      ratio: median(ratios('transactionsPerCycle')),
      target: { op: '<=', value: 1 },
    },
    {
      benchmark: 'polling-nodered',
      scenario,
      figure: 'CPU time per cycle vs Node-RED',
      value: `${med(flexgate, 'cpuMsPerCycle').toFixed(2)} ms`,
      baseline: `${med(nodeRed, 'cpuMsPerCycle').toFixed(2)} ms`,
      ratio: median(cpuRatios),
      target: { op: '<=', value: 1 },
    },
    {
      benchmark: 'polling-nodered',
      scenario,
      figure: 'peak RSS vs Node-RED',
      value: `${med(flexgate, 'peakRssMb').toFixed(1)} MB`,
      baseline: `${med(nodeRed, 'peakRssMb').toFixed(1)} MB`,
      ratio: median(ratios('peakRssMb')),
    },
  ];
}

export const pollingNodeRedBenchmark: Benchmark = {
  name: 'polling-nodered',
  run: (out) => runPollingComparison(out, { seconds: Number(process.env['FLEXGATE_BENCH_SECONDS'] ?? 60), runs: Number(process.env['FLEXGATE_BENCH_RUNS'] ?? 3) }),
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '60' }, runs: { type: 'string', default: '3' } } });
  const rows = await runPollingComparison((l) => process.stdout.write(`${l}\n`), { seconds: Number(values.seconds), runs: Number(values.runs) });
  for (const r of rows) process.stdout.write(`${r.figure}: flexgate ${r.value}, Node-RED ${r.baseline}, ratio ${r.ratio.toFixed(2)}\n`);
}
