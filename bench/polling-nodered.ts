/**
 * Polling, flexgate against Node-RED: the same devices of the simulated home (SunSpec PV, battery and
 * site meter; the Phoenix Contact EV charger, the Lambda heat pump and the Eastron sub-meter) polled
 * once a second by
 *   (a) flexgate as it runs in production (compiled JavaScript, `flexgate start`, store on), and
 *   (b) a real Node-RED 4.1 with node-red-contrib-modbus 5.23.3, the flow a competent Node-RED user
 *       builds (bench/node-red/polling-flow.json is the committed template): one modbus-client per
 *       TCP endpoint, one modbus-read per register block the user needs — each SunSpec model the
 *       device class uses, each documented value of the other devices (adjacent values in one read) —
 *       every second, each decoded in a function node.
 * Each system runs alone against its own counting proxies, one after the other, several times.
 * Figures: Modbus transactions per cycle (counted on the wire) and CPU time per cycle (the whole
 * process tree), flexgate / Node-RED. Aim: fewer transactions, less CPU.
 *
 *   npx tsx bench/polling-nodered.ts [--seconds 60] [--runs 3]   (after npm run build)
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import modbusSerial from 'modbus-serial';
import { stringify } from 'yaml';
import { loadProfile } from '../drivers/profiles/load.js';
import type { HomeDevice } from '../simulators/home.js';
import { CountingProxy, median, REPO_ROOT, startCompiledAgent, startNodeRed, startSimProcess, treeCpuMs, type SimProcess } from './support.js';
import type { BenchRow, Benchmark, Out } from './types.js';

const ModbusRTU = modbusSerial.default;

interface ReadBlock {
  kind: 'HoldingRegister' | 'InputRegister' | 'Coil';
  address: number;
  count: number;
}

/** The SunSpec models each class reads (drivers/sunspec/README.md), for the simulated home's default variants. */
const SUNSPEC_MODELS: Record<string, readonly number[]> = { pv: [103, 120, 123], battery: [103, 124], meter: [203] };

/** Walks the SunSpec chain with a bare client: model id → {address, length incl. header}. */
async function sunspecBlocks(host: string, port: number, unitId: number, models: readonly number[]): Promise<ReadBlock[]> {
  const client = new ModbusRTU();
  await client.connectTCP(host, { port });
  client.setID(unitId);
  client.setTimeout(2000);
  try {
    let address = 40002;
    const blocks: ReadBlock[] = [];
    for (let guard = 0; guard < 50; guard++) {
      const [id, length] = (await client.readHoldingRegisters(address, 2)).data as [number, number];
      if (id === 0xffff) break;
      if (models.includes(id)) blocks.push({ kind: 'HoldingRegister', address, count: length + 2 });
      address += length + 2;
    }
    return blocks;
  } finally {
    client.close(() => {});
  }
}

/** A profile device's values, adjacent ones in one read (as its register table invites). */
function profileBlocks(profileName: string): ReadBlock[] {
  const profile = loadProfile(profileName);
  const sizes: Record<string, number> = { int16: 1, uint16: 1, int32: 2, uint32: 2, float32: 2, int64: 4, uint64: 4, float64: 4 };
  const ranges = Object.values(profile.modbus!.sources).map((s) => ({
    kind: (s.type === 'coil' ? 'Coil' : s.type === 'input' ? 'InputRegister' : 'HoldingRegister') as ReadBlock['kind'],
    address: s.address,
    count: s.type === 'coil' ? 1 : s.encoding === 'string' ? (s.length ?? 1) : sizes[s.encoding]!,
  }));
  ranges.sort((a, b) => (a.kind === b.kind ? a.address - b.address : a.kind < b.kind ? -1 : 1));
  const out: ReadBlock[] = [];
  for (const r of ranges) {
    const last = out.at(-1);
    if (last && last.kind === r.kind && last.address + last.count === r.address && last.count + r.count <= profile.modbus!.maxReadRegisters) last.count += r.count;
    else out.push({ ...r });
  }
  return out;
}

export interface Target {
  device: HomeDevice;
  blocks: ReadBlock[];
}

export async function targetsOf(sim: SimProcess): Promise<Target[]> {
  const targets: Target[] = [];
  for (const device of sim.devices) {
    if (!device.modbus) continue;
    const { host, port, unitId } = device.modbus;
    const blocks = device.profile ? profileBlocks(device.profile) : await sunspecBlocks(host, port, unitId, SUNSPEC_MODELS[device.class] ?? []);
    targets.push({ device, blocks });
  }
  return targets;
}

/** The Node-RED flow: the committed template's nodes, one client per endpoint, one read + decode per block. */
export function nodeRedPollingFlow(targets: readonly Target[], portOf: (device: HomeDevice) => number): unknown[] {
  const template = JSON.parse(readFileSync(join(REPO_ROOT, 'bench', 'node-red', 'polling-flow.json'), 'utf8')) as {
    tab: Record<string, unknown>;
    client: Record<string, unknown>;
    read: Record<string, unknown>;
    decode: Record<string, unknown>;
  };
  const flow: unknown[] = [{ ...template.tab, id: 'tab1' }];
  const clients = new Map<string, string>();
  let n = 0;
  for (const t of targets) {
    const port = portOf(t.device);
    const key = `${t.device.modbus!.host}:${port}`;
    let clientId = clients.get(key);
    if (!clientId) {
      clientId = `client${clients.size + 1}`;
      clients.set(key, clientId);
      flow.push({ ...template.client, id: clientId, name: `gateway ${key}`, tcpHost: t.device.modbus!.host, tcpPort: port });
    }
    for (const b of t.blocks) {
      n++;
      flow.push({
        ...template.read,
        id: `read${n}`,
        z: 'tab1',
        name: `${t.device.id} ${b.kind} ${b.address}+${b.count}`,
        unitid: String(t.device.modbus!.unitId),
        dataType: b.kind,
        adr: String(b.address),
        quantity: String(b.count),
        server: clientId,
        wires: [[`decode${n}`], []],
      });
      flow.push({ ...template.decode, id: `decode${n}`, z: 'tab1', name: `decode ${t.device.id} ${b.address}`, wires: [[]] });
    }
  }
  return flow;
}

function agentConfig(dataDir: string, sim: SimProcess, portOf: (device: HomeDevice) => number): string {
  const devices = sim.devices
    .filter((d) => d.modbus)
    .map((d) => ({
      id: d.id,
      class: d.class,
      ...(d.profile ? { driver: 'profile', profile: d.profile } : { driver: 'sunspec' }),
      ...(d.id === 'hp-meter' ? { role: 'submeter' } : {}),
      connection: { tcp: { host: d.modbus!.host, port: portOf(d) } },
      unitId: d.modbus!.unitId,
      pollIntervalMs: 1000,
    }));
  return stringify({ gateway: { name: 'bench-home', dataDir }, log: { level: 'info' }, devices });
}

interface Measured {
  transactionsPerCycle: number;
  cpuMsPerCycle: number;
}

async function measure(pid: number, proxies: readonly CountingProxy[], seconds: number): Promise<Measured> {
  await new Promise((r) => setTimeout(r, 5000)); // warm-up: discovery, first connects
  const requests0 = proxies.reduce((s, p) => s + p.requests, 0);
  const cpu0 = treeCpuMs(pid);
  const t0 = Date.now();
  await new Promise((r) => setTimeout(r, seconds * 1000));
  const cycles = (Date.now() - t0) / 1000;
  return { transactionsPerCycle: (proxies.reduce((s, p) => s + p.requests, 0) - requests0) / cycles, cpuMsPerCycle: (treeCpuMs(pid) - cpu0) / cycles };
}

async function withProxies<T>(sim: SimProcess, run: (portOf: (d: HomeDevice) => number, proxies: CountingProxy[]) => Promise<T>): Promise<T> {
  const proxies = new Map<string, CountingProxy>();
  for (const d of sim.devices) {
    if (!d.modbus) continue;
    const key = `${d.modbus.host}:${d.modbus.port}`;
    if (!proxies.has(key)) {
      const p = new CountingProxy(d.modbus.host, d.modbus.port);
      await p.start();
      proxies.set(key, p);
    }
  }
  try {
    return await run((d) => proxies.get(`${d.modbus!.host}:${d.modbus!.port}`)!.port, [...proxies.values()]);
  } finally {
    for (const p of proxies.values()) await p.stop();
  }
}

export async function runPollingComparison(out: Out, options: { seconds: number; runs: number }): Promise<BenchRow[]> {
  const sim = await startSimProcess({ flexibleLoads: true, seed: 3, speed: 1 });
  const flexgate: Measured[] = [];
  const nodeRed: Measured[] = [];
  try {
    const targets = await targetsOf(sim);
    out(`devices: ${targets.map((t) => `${t.device.id} (${t.blocks.length} Node-RED reads)`).join(', ')}`);
    for (let run = 1; run <= options.runs; run++) {
      const dir = mkdtempSync(join(tmpdir(), 'flexgate-bench-'));
      try {
        const f = await withProxies(sim, async (portOf, proxies) => {
          writeFileSync(join(dir, 'flexgate.yaml'), agentConfig(join(dir, 'data'), sim, portOf));
          const agent = await startCompiledAgent(join(dir, 'flexgate.yaml'));
          try {
            return await measure(agent.child.pid!, proxies, options.seconds);
          } finally {
            await agent.stop();
          }
        });
        flexgate.push(f);
        const r = await withProxies(sim, async (portOf, proxies) => {
          const red = await startNodeRed(join(dir, 'node-red'), nodeRedPollingFlow(targets, portOf));
          try {
            return await measure(red.child.pid!, proxies, options.seconds);
          } finally {
            await red.stop();
          }
        });
        nodeRed.push(r);
        out(
          `run ${run}: flexgate ${f.transactionsPerCycle.toFixed(2)} transactions, ${f.cpuMsPerCycle.toFixed(2)} ms CPU per cycle; ` +
            `Node-RED ${r.transactionsPerCycle.toFixed(2)} transactions, ${r.cpuMsPerCycle.toFixed(2)} ms CPU per cycle`,
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await sim.stop();
  }
  const tx = median(flexgate.map((m) => m.transactionsPerCycle));
  const txRed = median(nodeRed.map((m) => m.transactionsPerCycle));
  const cpu = median(flexgate.map((m) => m.cpuMsPerCycle));
  const cpuRed = median(nodeRed.map((m) => m.cpuMsPerCycle));
  const cpuRatios = flexgate.map((m, i) => m.cpuMsPerCycle / nodeRed[i]!.cpuMsPerCycle);
  const scenario = `6 devices, 1 s polls, ${options.seconds} s × ${options.runs}`;
  return [
    { benchmark: 'polling-nodered', scenario, figure: 'Modbus transactions per cycle vs Node-RED', value: tx.toFixed(2), baseline: txRed.toFixed(2), ratio: tx / txRed, target: { op: '<=', value: 1 } },
    { benchmark: 'polling-nodered', scenario, figure: 'CPU time per cycle vs Node-RED', value: `${cpu.toFixed(2)} ms`, baseline: `${cpuRed.toFixed(2)} ms`, ratio: median(cpuRatios), target: { op: '<=', value: 1 } },
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
