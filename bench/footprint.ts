/**
 * Footprint: the agent as it runs in production — compiled JavaScript (`node dist/agent/cli.js start
 * --config …` with the node flags of docs/flexgate.service), store on, metering off — with 10 devices
 * polled every second, measured over its whole process tree from /proc for at least a minute after a
 * warm-up: peak RSS and CPU share of one core. Targets (DESIGN.md): ≤ 80 MB, ≤ 2 %.
 *
 * Two setups of the local MQTT API:
 *   embedded — `localApi.mqtt.embedded`: the broker (aedes) inside the agent, as the demo runs it;
 *   external — the agent connected to the gateway's broker in another process (Mosquitto on a real
 *              gateway; here aedes in its own process), as the installer guide sets it up.
 * Same-run baseline: a bare Node.js process holding modbus-serial clients (one per TCP endpoint)
 * that reads the very register blocks flexgate put on the wire (recorded by counting proxies during
 * the agent's run) every second — the floor a hand-written poller would have.
 *
 * The 10 devices: the flexible home's 6 Modbus devices (SunSpec PV, battery, site meter; Phoenix
 * Contact EV charger, Lambda heat pump, Eastron SDM120) and the SunSpec devices of two more simulated
 * homes, each home in its own process (not the agent's).
 *
 *   npx tsx bench/footprint.ts [--seconds 60] [--runs 3] [--broker both|embedded|external]   (after npm run build)
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { stringify } from 'yaml';
import type { HomeDevice } from '../simulators/home.js';
import { median, ProxySet, REPO_ROOT, startBrokerProcess, startCompiledAgent, startSimProcess, stopChild, treeCpuMs, treeRssKb, type SimProcess } from './support.js';
import type { BenchRow, Benchmark, Out } from './types.js';

const DEVICES = 10;
const WARMUP_MS = 8000;
const TARGET_RSS_MB = 80;
const TARGET_CPU_PCT = 2;

export type BrokerSetup = 'embedded' | 'external';

interface Footprint {
  peakRssMb: number;
  cpuPct: number;
}

/** Peak RSS (sampled every 0.5 s) and CPU share over `seconds`, after the warm-up. */
async function sample(pid: number, seconds: number, proxies?: ProxySet): Promise<Footprint & { cycles: number }> {
  await new Promise((r) => setTimeout(r, WARMUP_MS)); // discovery, connects, JIT
  proxies?.record(true);
  let peakKb = treeRssKb(pid);
  const cpu0 = treeCpuMs(pid);
  const t0 = Date.now();
  while (Date.now() - t0 < seconds * 1000) {
    await new Promise((r) => setTimeout(r, 500));
    peakKb = Math.max(peakKb, treeRssKb(pid));
  }
  const wallMs = Date.now() - t0;
  const cpuMs = treeCpuMs(pid) - cpu0;
  proxies?.record(false);
  return { peakRssMb: peakKb / 1024, cpuPct: (100 * cpuMs) / wallMs, cycles: wallMs / 1000 };
}

function configFor(dataDir: string, devices: readonly HomeDevice[], proxies: ProxySet, broker: { embedded: true } | { url: string }): string {
  let site = false;
  const list = devices.map((d, i) => {
    const isSiteMeter = d.class === 'meter' && !d.profile && !site;
    if (isSiteMeter) site = true;
    return {
      id: `${d.id}-${i}`,
      class: d.class,
      ...(d.profile ? { driver: 'profile', profile: d.profile } : { driver: 'sunspec' }),
      ...(d.class === 'meter' && !isSiteMeter ? { role: 'submeter' } : {}),
      connection: { tcp: { host: '127.0.0.1', port: proxies.portOf(d) } },
      unitId: d.modbus!.unitId,
      pollIntervalMs: 1000,
    };
  });
  const mqtt = 'embedded' in broker ? { embedded: { host: '127.0.0.1', port: 0 } } : { url: broker.url };
  return stringify({ gateway: { name: 'bench-footprint', dataDir }, log: { level: 'info' }, localApi: { mqtt }, devices: list });
}

interface Job {
  port: number;
  unitId: number;
  functionCode: number;
  address: number;
  count: number;
}

/** The reads flexgate made about once a cycle or more, per endpoint (recorded on the proxies). */
function recordedReads(proxies: ProxySet, devices: readonly HomeDevice[], cycles: number): Job[] {
  const jobs: Job[] = [];
  for (const d of devices) {
    for (const [key, n] of proxies.logOf(d)) {
      const m = /^u(\d+) fc(\d+) (\d+)\+(\d+)$/.exec(key)!;
      const functionCode = Number(m[2]);
      if (functionCode > 4 || n / cycles < 0.5) continue;
      jobs.push({ port: proxies.portOf(d), unitId: Number(m[1]), functionCode, address: Number(m[3]), count: Number(m[4]) });
    }
  }
  return jobs;
}

/** The floor: modbus-serial clients (one per endpoint) reading the same blocks every second. */
function baselineScript(jobs: readonly Job[]): string {
  return `
const ModbusRTU = require(${JSON.stringify(join(REPO_ROOT, 'node_modules', 'modbus-serial'))});
const jobs = ${JSON.stringify(jobs)};
const ports = [...new Set(jobs.map((j) => j.port))];
const clients = new Map();
async function pollEndpoint(port) {
  let c = clients.get(port);
  if (!c) { c = new ModbusRTU(); await c.connectTCP('127.0.0.1', { port }); c.setTimeout(1000); clients.set(port, c); }
  for (const j of jobs) {
    if (j.port !== port) continue;
    c.setID(j.unitId);
    try {
      if (j.functionCode === 1) await c.readCoils(j.address, j.count);
      else if (j.functionCode === 2) await c.readDiscreteInputs(j.address, j.count);
      else if (j.functionCode === 4) await c.readInputRegisters(j.address, j.count);
      else await c.readHoldingRegisters(j.address, j.count);
    } catch {}
  }
}
setInterval(() => { for (const p of ports) pollEndpoint(p).catch(() => {}); }, 1000);
`;
}

export async function runFootprint(out: Out, options: { seconds: number; runs: number; brokers?: readonly BrokerSetup[] }): Promise<BenchRow[]> {
  const setups = options.brokers ?? (['embedded', 'external'] as const);
  const sims: SimProcess[] = [];
  const agentRuns = new Map<BrokerSetup, Footprint[]>(setups.map((s) => [s, []]));
  const baseRuns: Footprint[] = [];
  let broker: Awaited<ReturnType<typeof startBrokerProcess>> | undefined;
  let proxies: ProxySet | undefined;
  try {
    if (setups.includes('external')) broker = await startBrokerProcess();
    sims.push(await startSimProcess({ flexibleLoads: true, seed: 3 }));
    sims.push(await startSimProcess({ seed: 4 }));
    sims.push(await startSimProcess({ seed: 5 }));
    const devices = sims.flatMap((s) => s.devices.filter((d) => d.modbus)).slice(0, DEVICES);
    if (devices.length < DEVICES) throw new Error(`only ${devices.length} Modbus devices in the simulated homes`);
    out(`devices: ${devices.map((d) => `${d.id} (${d.class}${d.profile ? `, ${d.profile}` : ''})`).join(', ')}`);
    proxies = await ProxySet.start(devices);
    for (let run = 1; run <= options.runs; run++) {
      const dir = mkdtempSync(join(tmpdir(), 'flexgate-footprint-'));
      try {
        let jobs: Job[] | undefined;
        const line: string[] = [];
        // The order of the setups rotates per run, so slow drift of the machine hits them alike.
        const order = setups.map((_s, i) => setups[(i + run - 1) % setups.length]!);
        for (const setup of order) {
          writeFileSync(join(dir, `${setup}.yaml`), configFor(join(dir, `data-${setup}`), devices, proxies, setup === 'embedded' ? { embedded: true } : { url: broker!.url }));
          const agent = await startCompiledAgent(join(dir, `${setup}.yaml`));
          let a: Footprint & { cycles: number };
          try {
            a = await sample(agent.child.pid!, options.seconds, proxies);
          } finally {
            await agent.stop();
          }
          jobs ??= recordedReads(proxies, devices, a.cycles);
          agentRuns.get(setup)!.push(a);
          line.push(`flexgate (${setup} broker) peak RSS ${a.peakRssMb.toFixed(1)} MB, CPU ${a.cpuPct.toFixed(2)} %`);
        }
        const base = spawn(process.execPath, ['-e', baselineScript(jobs!)], { cwd: dir, stdio: ['ignore', 'inherit', 'inherit'] });
        let b: Footprint;
        try {
          b = await sample(base.pid!, options.seconds);
        } finally {
          await stopChild(base);
        }
        baseRuns.push(b);
        if (run === 1) out(`baseline reads per cycle: ${jobs!.length} (${jobs!.map((j) => `u${j.unitId} fc${j.functionCode} ${j.address}+${j.count}`).join(', ')})`);
        out(`run ${run}: ${line.join('; ')}; bare modbus-serial poller ${b.peakRssMb.toFixed(1)} MB, ${b.cpuPct.toFixed(2)} %`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  } finally {
    await proxies?.stop();
    for (const s of sims) await s.stop();
    await broker?.stop();
  }
  const rssBase = median(baseRuns.map((r) => r.peakRssMb));
  const cpuBase = median(baseRuns.map((r) => r.cpuPct));
  const rows: BenchRow[] = [];
  for (const setup of setups) {
    const runs = agentRuns.get(setup)!;
    const rss = median(runs.map((r) => r.peakRssMb));
    const cpu = median(runs.map((r) => r.cpuPct));
    const scenario = `${DEVICES} devices, 1 s polls, compiled, local API on ${setup === 'embedded' ? 'the embedded' : 'an external'} broker, ${options.seconds} s × ${options.runs}`;
    rows.push(
      { benchmark: 'footprint', scenario, figure: `peak RSS vs target ${TARGET_RSS_MB} MB`, value: `${rss.toFixed(1)} MB`, baseline: `${TARGET_RSS_MB} MB`, ratio: rss / TARGET_RSS_MB, target: { op: '<=', value: 1 } },
      { benchmark: 'footprint', scenario, figure: `CPU share vs target ${TARGET_CPU_PCT} %`, value: `${cpu.toFixed(2)} %`, baseline: `${TARGET_CPU_PCT} %`, ratio: cpu / TARGET_CPU_PCT, target: { op: '<=', value: 1 } },
      { benchmark: 'footprint', scenario, figure: 'peak RSS vs bare modbus-serial poller', value: `${rss.toFixed(1)} MB`, baseline: `${rssBase.toFixed(1)} MB`, ratio: median(runs.map((r, i) => r.peakRssMb / baseRuns[i]!.peakRssMb)) },
      { benchmark: 'footprint', scenario, figure: 'CPU share vs bare modbus-serial poller', value: `${cpu.toFixed(2)} %`, baseline: `${cpuBase.toFixed(2)} %`, ratio: median(runs.map((r, i) => r.cpuPct / baseRuns[i]!.cpuPct)) },
    );
  }
  return rows;
}

function brokersOf(value: string | undefined): BrokerSetup[] {
  if (value === undefined || value === 'both') return ['embedded', 'external'];
  if (value === 'embedded' || value === 'external') return [value];
  throw new Error(`--broker: expected both, embedded or external, got ${value}`);
}

export const footprintBenchmark: Benchmark = {
  name: 'footprint',
  run: (out) =>
    runFootprint(out, {
      seconds: Number(process.env['FLEXGATE_BENCH_SECONDS'] ?? 60),
      runs: Number(process.env['FLEXGATE_BENCH_RUNS'] ?? 3),
      brokers: brokersOf(process.env['FLEXGATE_BENCH_BROKER']),
    }),
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({ options: { seconds: { type: 'string', default: '60' }, runs: { type: 'string', default: '3' }, broker: { type: 'string', default: 'both' } } });
  const rows = await runFootprint((l) => process.stdout.write(`${l}\n`), { seconds: Number(values.seconds), runs: Number(values.runs), brokers: brokersOf(values.broker) });
  for (const r of rows) process.stdout.write(`${r.scenario} — ${r.figure}: ${r.value} (baseline ${r.baseline}), ratio ${r.ratio.toFixed(2)}\n`);
}
