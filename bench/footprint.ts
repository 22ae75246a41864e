/**
 * Footprint: the agent as it runs in production (compiled JavaScript, `flexgate start`, store and the
 * local MQTT API on the gateway's broker — a separate process, Mosquitto on a real gateway — metering
 * off) with 10 devices polled every second, measured
 * over the whole process tree from /proc for at least a minute after a warm-up: peak RSS and CPU
 * share of one core. Targets (DESIGN.md): ≤ 80 MB, ≤ 2 %. Same-run baseline: a bare Node.js process
 * with one modbus-serial client reading the same devices' register blocks every second, the floor a
 * hand-written poller would have.
 *
 *   npx tsx bench/footprint.ts [--seconds 60] [--runs 3]   (after npm run build)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { HomeDevice } from '../simulators/home.js';
import { startEmbeddedBroker } from '../agent/embedded-broker.js';
import { targetsOf, type Target } from './polling-nodered.js';
import { median, REPO_ROOT, startCompiledAgent, startSimProcess, stopChild, treeCpuMs, treeRssKb, type SimProcess } from './support.js';
import type { BenchRow, Benchmark, Out } from './types.js';

const DEVICES = 10;

interface Footprint {
  peakRssMb: number;
  cpuPct: number;
}

async function sample(pid: number, seconds: number): Promise<Footprint> {
  await new Promise((r) => setTimeout(r, 8000)); // warm-up: discovery, connects, JIT
  let peakKb = treeRssKb(pid);
  const cpu0 = treeCpuMs(pid);
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    await new Promise((r) => setTimeout(r, 500));
    peakKb = Math.max(peakKb, treeRssKb(pid));
  }
  const wallMs = Date.now() - t0;
  return { peakRssMb: peakKb / 1024, cpuPct: (100 * (treeCpuMs(pid) - cpu0)) / wallMs };
}

function configFor(dataDir: string, devices: readonly HomeDevice[], brokerUrl: string): string {
  let site = false;
  const list = devices.map((d, i) => {
    const isSiteMeter = d.class === 'meter' && !d.profile && !site;
    if (isSiteMeter) site = true;
    return {
      id: `${d.id}-${i}`,
      class: d.class,
      ...(d.profile ? { driver: 'profile', profile: d.profile } : { driver: 'sunspec' }),
      ...(d.class === 'meter' && !isSiteMeter ? { role: 'submeter' } : {}),
      connection: { tcp: { host: d.modbus!.host, port: d.modbus!.port } },
      unitId: d.modbus!.unitId,
      pollIntervalMs: 1000,
    };
  });
  return stringify({ gateway: { name: 'bench-footprint', dataDir }, log: { level: 'info' }, localApi: { mqtt: { url: brokerUrl } }, devices: list });
}

/** The floor: one bare modbus-serial client per endpoint reading the same blocks every second. */
function baselineScript(targets: readonly Target[]): string {
  const jobs = targets.map((t) => ({ host: t.device.modbus!.host, port: t.device.modbus!.port, unitId: t.device.modbus!.unitId, blocks: t.blocks }));
  return `
const ModbusRTU = require(${JSON.stringify(join(REPO_ROOT, 'node_modules', 'modbus-serial'))});
const jobs = ${JSON.stringify(jobs)};
const clients = new Map();
async function client(host, port) {
  const key = host + ':' + port;
  if (!clients.has(key)) { const c = new ModbusRTU(); await c.connectTCP(host, { port }); c.setTimeout(1000); clients.set(key, c); }
  return clients.get(key);
}
async function poll() {
  for (const j of jobs) {
    const c = await client(j.host, j.port);
    c.setID(j.unitId);
    for (const b of j.blocks) {
      try {
        if (b.kind === 'Coil') await c.readCoils(b.address, b.count);
        else if (b.kind === 'InputRegister') await c.readInputRegisters(b.address, b.count);
        else await c.readHoldingRegisters(b.address, b.count);
      } catch {}
    }
  }
}
setInterval(() => { poll().catch(() => {}); }, 1000);
console.log('baseline started');
`;
}

export async function runFootprint(out: Out, options: { seconds: number; runs: number }): Promise<BenchRow[]> {
  const sims: SimProcess[] = [];
  // The gateway's broker (Mosquitto on a real gateway: the installer guide's setup), outside the agent's
  // process tree, as it is in production.
  const broker = await startEmbeddedBroker({ port: 0 });
  const agentRuns: Footprint[] = [];
  const baseRuns: Footprint[] = [];
  try {
    sims.push(await startSimProcess({ flexibleLoads: true, seed: 3 }));
    sims.push(await startSimProcess({ seed: 4 }));
    sims.push(await startSimProcess({ seed: 5 }));
    const devices = sims.flatMap((s) => s.devices.filter((d) => d.modbus)).slice(0, DEVICES);
    if (devices.length < DEVICES) throw new Error(`only ${devices.length} devices`);
    const targets: Target[] = [];
    for (const s of sims) targets.push(...(await targetsOf(s)));
    const chosen = targets.filter((t) => devices.includes(t.device));
    out(`devices: ${devices.map((d) => `${d.id} (${d.class}${d.profile ? `, ${d.profile}` : ''})`).join(', ')}`);
    for (let run = 1; run <= options.runs; run++) {
      const dir = mkdtempSync(join(tmpdir(), 'flexgate-footprint-'));
      try {
        writeFileSync(join(dir, 'flexgate.yaml'), configFor(join(dir, 'data'), devices, broker.url));
        const agent = await startCompiledAgent(join(dir, 'flexgate.yaml'));
        let a: Footprint;
        try {
          a = await sample(agent.child.pid!, options.seconds);
        } finally {
          await agent.stop();
        }
        agentRuns.push(a);
        const base = spawn(process.execPath, ['-e', baselineScript(chosen)], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'] });
        let b: Footprint;
        try {
          b = await sample(base.pid!, options.seconds);
        } finally {
          await stopChild(base);
        }
        baseRuns.push(b);
        out(`run ${run}: flexgate peak RSS ${a.peakRssMb.toFixed(1)} MB, CPU ${a.cpuPct.toFixed(2)} %; bare modbus-serial poller ${b.peakRssMb.toFixed(1)} MB, ${b.cpuPct.toFixed(2)} %`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    for (const s of sims) await s.stop();
    await broker.close();
  }
  const rss = median(agentRuns.map((r) => r.peakRssMb));
  const cpu = median(agentRuns.map((r) => r.cpuPct));
  const rssBase = median(baseRuns.map((r) => r.peakRssMb));
  const cpuBase = median(baseRuns.map((r) => r.cpuPct));
  const scenario = `${DEVICES} devices, 1 s polls, compiled, ${options.seconds} s × ${options.runs}`;
  return [
    { benchmark: 'footprint', scenario, figure: 'peak RSS vs target 80 MB', value: `${rss.toFixed(1)} MB`, baseline: '80 MB', ratio: rss / 80, target: { op: '<=', value: 1 } },
    { benchmark: 'footprint', scenario, figure: 'CPU share vs target 2 %', value: `${cpu.toFixed(2)} %`, baseline: '2 %', ratio: cpu / 2, target: { op: '<=', value: 1 } },
    { benchmark: 'footprint', scenario, figure: 'peak RSS vs bare modbus-serial poller', value: `${rss.toFixed(1)} MB`, baseline: `${rssBase.toFixed(1)} MB`, ratio: rss / rssBase },
    { benchmark: 'footprint', scenario, figure: 'CPU share vs bare modbus-serial poller', value: `${cpu.toFixed(2)} %`, baseline: `${cpuBase.toFixed(2)} %`, ratio: cpu / cpuBase },
  ];
}

export const footprintBenchmark: Benchmark = {
  name: 'footprint',
  run: (out) => runFootprint(out, { seconds: Number(process.env['FLEXGATE_BENCH_SECONDS'] ?? 60), runs: Number(process.env['FLEXGATE_BENCH_RUNS'] ?? 3) }),
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '60' }, runs: { type: 'string', default: '3' } } });
  const rows = await runFootprint((l) => process.stdout.write(`${l}\n`), { seconds: Number(values.seconds), runs: Number(values.runs) });
  for (const r of rows) process.stdout.write(`${r.figure}: ${r.value} (baseline ${r.baseline}), ratio ${r.ratio.toFixed(2)}\n`);
}
