/**
 * Power-cut safety of metering proofs (issue 5, "Must show"): the agent runs as a real child
 * process against a real anvil node and is killed with SIGKILL at random moments, at least 50
 * times, while it closes intervals and anchors them. After each kill the store passes
 * PRAGMA integrity_check; then the agent is restarted. At the end the agent runs once more until
 * every closed interval is anchored, stops on SIGTERM, and the chain's own ProofAnchored events
 * (read back from the node, not from our store) must show every interval from the first stored one
 * to the last closed one exactly once, with count 0 and the null root for intervals the agent was
 * down for, and otherwise the RFC 6962 root, count and energy of exactly the leaves in the store,
 * recomputed here.
 *
 * Kills are aimed three ways: at a random moment 100–2500 ms after the agent is up (early ones land
 * in the start-up closing of missed intervals and their anchoring), just after an interval boundary
 * (closing, then the anchoring transaction: signed, stored, broadcast, mined), and twice the agent
 * stays down for a whole interval so a count-0 proof and a backlog batch are needed.
 * FLEXGATE_METERING_KILLS changes the number of kills for a quick local run; the default, 50, is the
 * issue's minimum. A summary (kills and where they landed, start-up times) is printed to stderr.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createPublicClient, http, parseAbiItem, type Hex } from 'viem';
import { stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STORE_FILE } from '../agent/agent.js';
import { initGatewayKey, type GatewayKey } from '../agent/keys.js';
import { openStore } from '../agent/store/index.js';
import { systemClock } from '../drivers/clock.js';
import { silentLog } from '../drivers/log.js';
import { startAnvil, type Anvil } from '../ledger-client/anvil.js';
import { deployContracts, fund, type Deployment } from '../ledger-client/deploy.js';
import { intervalEnergy, merkleRoot, NULL_ROOT, readingLeafHash, type MeterReading } from '../ledger-client/merkle.js';
import type { SimulatedHome } from '../simulators/home.js';
import { exited, homeConfig, spawnCli, startFrozenHome, tempDir, waitFor } from './helpers.js';

const KILLS = Number(process.env['FLEXGATE_METERING_KILLS'] ?? 50);
const INTERVAL_MS = 5000;
const LEAF_INTERVAL_MS = 1000;
/** Runs after which the agent stays down for a whole interval (count-0 proofs, a backlog batch). */
const OUTAGE_AFTER_RUNS = new Set([Math.floor(KILLS / 3), Math.floor((2 * KILLS) / 3)]);

const PROOF_ANCHORED = parseAbiItem(
  'event ProofAnchored(address indexed gateway, uint64 indexed intervalStart, uint64 intervalEnd, uint32 count, bytes32 root, uint64 importWh, uint64 exportWh)',
);

let anvil: Anvil;
let contracts: Deployment;
let home: SimulatedHome;
const dir = tempDir('flexgate-metering-crash-');

beforeAll(async () => {
  anvil = await startAnvil();
  contracts = await deployContracts(anvil.rpcUrl, anvil.privateKeys[0]!);
  home = await startFrozenHome();
});
afterAll(async () => {
  await home?.stop();
  await anvil?.stop();
  dir.remove();
});

interface LeafRow {
  interval_start_ms: number;
  ts_ms: number;
  power_w: number;
  import_wh: number;
  export_wh: number;
  salt: Buffer;
}
interface ProofRow {
  interval_start_ms: number;
  interval_end_ms: number;
  leaf_count: number;
  root: string;
  import_wh: number;
  export_wh: number;
}
interface StoreView {
  integrity: string[];
  leaves: LeafRow[];
  proofs: ProofRow[];
  items: Array<{ interval_start_ms: number; state: string; reason: string | null }>;
  txs: Array<{ id: number; nonce: number; state: string }>;
}

/** Everything the checks need, read from the store opened read-only (the agent may be running). */
function readStore(path: string): StoreView {
  const store = openStore({ path, clock: systemClock, log: silentLog, readOnly: true });
  try {
    const db = store.database;
    return {
      integrity: store.integrityCheck(),
      leaves: db.prepare('SELECT interval_start_ms, ts_ms, power_w, import_wh, export_wh, salt FROM meter_leaves ORDER BY ts_ms').all() as LeafRow[],
      proofs: db.prepare('SELECT interval_start_ms, interval_end_ms, leaf_count, root, import_wh, export_wh FROM meter_proofs ORDER BY interval_start_ms').all() as ProofRow[],
      items: db.prepare('SELECT interval_start_ms, state, reason FROM outbox_items ORDER BY interval_start_ms').all() as StoreView['items'],
      txs: db.prepare('SELECT id, nonce, state FROM outbox_txs ORDER BY id').all() as StoreView['txs'],
    };
  } finally {
    store.close();
  }
}

/** What the test itself computes for one interval from the stored leaves (PROTOCOL.md §5). */
function expectedProof(gateway: Hex, leaves: readonly LeafRow[], intervalStart: number): { count: number; root: Hex; importWh: number; exportWh: number } {
  const inInterval = leaves.filter((l) => l.ts_ms >= intervalStart && l.ts_ms < intervalStart + INTERVAL_MS);
  const readings: MeterReading[] = inInterval.map((l) => ({
    gateway,
    ts: l.ts_ms,
    powerW: l.power_w,
    importWh: l.import_wh,
    exportWh: l.export_wh,
    salt: `0x${l.salt.toString('hex')}`,
  }));
  const energy = intervalEnergy(
    leaves.map((l) => ({ ts: l.ts_ms, importWh: l.import_wh, exportWh: l.export_wh })),
    { intervalStart, intervalEnd: intervalStart + INTERVAL_MS },
  );
  return {
    count: readings.length,
    root: readings.length === 0 ? NULL_ROOT : merkleRoot(readings.map((r) => readingLeafHash(r))),
    ...energy,
  };
}

/** Closed intervals whose stored proof does not match the stored leaves (a leaf added after the close, or lost). */
function storeMismatches(gateway: Hex, view: StoreView): string[] {
  const out: string[] = [];
  for (const p of view.proofs) {
    const want = expectedProof(gateway, view.leaves, p.interval_start_ms);
    if (want.count !== p.leaf_count || want.root !== p.root || want.importWh !== p.import_wh || want.exportWh !== p.export_wh) {
      const tss = view.leaves.filter((l) => l.interval_start_ms === p.interval_start_ms).map((l) => l.ts_ms);
      out.push(`interval ${p.interval_start_ms}: proof count ${p.leaf_count} root ${p.root.slice(0, 10)}…, stored leaves ${want.count} (ts ${tss.join(',')}) root ${want.root.slice(0, 10)}…`);
    }
  }
  return out;
}

function nextBoundary(ms: number): number {
  return (Math.floor(ms / INTERVAL_MS) + 1) * INTERVAL_MS;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const sleep = (ms: number) => new Promise((r) => setTimeout(r, Math.max(0, ms)));

/** Resolves true as soon as the child writes a stderr line matching `pattern` from now on, false after `timeoutMs`. */
function logged(child: ReturnType<typeof spawnCli>, pattern: RegExp, timeoutMs: number): Promise<boolean> {
  const from = child.output.stderr.length;
  return new Promise((resolve) => {
    const done = (seen: boolean) => {
      child.stderr.off('data', onData);
      clearTimeout(timer);
      resolve(seen);
    };
    // Registered after spawnCli's own listener, so output.stderr already holds the chunk.
    const onData = () => {
      if (pattern.test(child.output.stderr.slice(from))) done(true);
    };
    const timer = setTimeout(() => done(false), Math.max(0, timeoutMs));
    child.stderr.on('data', onData);
  });
}

/** The agent's pino lines on stderr, with their time (the agent's clock, unix ms). */
function logLines(stderr: string): Array<{ msg: string; time: number; level: number; [k: string]: unknown }> {
  const out: Array<{ msg: string; time: number; level: number }> = [];
  for (const line of stderr.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const o = JSON.parse(line) as { msg: string; time: string; level: number };
      out.push({ ...o, time: Date.parse(o.time) });
    } catch {
      // a line cut by the kill
    }
  }
  return out;
}

describe('agent killed with SIGKILL while it closes and anchors metering intervals', () => {
  it(`anchors every interval exactly once with the root of its stored leaves across ${KILLS} kills`, async () => {
    const testStartedMs = Date.now();
    const dataDir = join(dir.path, 'data');
    mkdirSync(dataDir, { recursive: true });
    const key: GatewayKey = initGatewayKey(dataDir);
    await fund(anvil.rpcUrl, anvil.privateKeys[0]!, key.address);
    const config = homeConfig(home, dataDir, {
      device: { pollIntervalMs: 250 },
      config: {
        metering: { leafIntervalMs: LEAF_INTERVAL_MS, intervalMs: INTERVAL_MS },
        chain: { rpcUrl: anvil.rpcUrl, chainId: anvil.chainId, contracts: { proofs: contracts.proofs }, confirmations: 1, pollIntervalMs: 200 },
      },
    });
    const file = join(dir.path, 'flexgate.yaml');
    writeFileSync(file, stringify(config));
    const storePath = join(dataDir, STORE_FILE);

    // The meter moves: one second of the home's physics every 250 ms of real time.
    const ticker = setInterval(() => home.clock.advance(1000), 250);
    const startupsMs: number[] = [];
    const importsMs: number[] = [];
    const agentStartMs: number[] = [];
    const tally = { kills: 0, random: 0, boundary: 0, onAnchoring: 0, outages: 0, withPendingTx: 0, withSignedItems: 0, afterClose: 0, afterSend: 0, closedAtStartup: 0 };
    const mismatches: string[] = [];
    try {
      for (let run = 0; run < KILLS; run++) {
        const spawnedMs = Date.now();
        const child = spawnCli(['start', '--config', file]);
        try {
          await waitFor(`the agent to start (run ${run})`, () => child.output.stderr.includes('"msg":"agent started"') || child.exitCode !== null, 20_000, 10);
          expect(child.exitCode, `agent exited in run ${run}: ${child.output.stderr.slice(-2000)}`).toBeNull();
          const upMs = Date.now();
          startupsMs.push(upMs - spawnedMs);
          // Runs 1, 5, 9, … whose next interval boundary comes within 3 s are killed just after it
          // (closing, then anchoring); runs 3, 7, 11, … 0–5 ms after the agent logs that it stored a new
          // anchoring transaction (while it is broadcast and mined), if it does within 3 s; the others at
          // a random moment after start (early ones hit the anchoring of the intervals closed at start-up).
          const boundaryMs = nextBoundary(upMs + 100);
          if (run % 4 === 1 && boundaryMs - upMs <= 3000) {
            await sleep(boundaryMs + Math.random() * 800 - Date.now());
            tally.boundary++;
          } else if (run % 4 === 3 && (await logged(child, /"msg":"anchoring (proof|backlog batch)"/, upMs + 3000 - Date.now()))) {
            await sleep(Math.random() * 5);
            tally.onAnchoring++;
          } else {
            await sleep(upMs + 100 + Math.random() * 2400 - Date.now());
            tally.random++;
          }
          child.kill('SIGKILL');
          const exit = await exited(child);
          expect(exit.signal, `run ${run} ended before its kill: ${child.output.stderr.slice(-2000)}`).toBe('SIGKILL');
          tally.kills++;
        } finally {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
        }

        // Where the kill landed, from the agent's own log (for the summary) ...
        const lines = logLines(child.output.stderr);
        const starting = lines.find((l) => l.msg === 'flexgate starting');
        const up = lines.find((l) => l.msg === 'agent started');
        if (starting && up) {
          importsMs.push(starting.time - spawnedMs);
          agentStartMs.push(up.time - starting.time);
        }
        const killedMs = Date.now();
        const lastClose = lines.filter((l) => l.msg === 'interval closed and signed').at(-1);
        const lastSend = lines.filter((l) => l.msg === 'anchoring proof' || l.msg === 'anchoring backlog batch').at(-1);
        if (lastClose && killedMs - lastClose.time < 500) tally.afterClose++;
        if (lastSend && killedMs - lastSend.time < 500) tally.afterSend++;
        const started = lines.find((l) => l.msg === 'agent started');
        if (started && lines.some((l) => l.msg === 'interval closed and signed' && l.time <= started.time)) tally.closedAtStartup++;

        // ... and the store: intact, every closed interval queued, its proof that of its stored leaves.
        const view = readStore(storePath);
        expect(view.integrity, `PRAGMA integrity_check after kill ${run + 1}`).toEqual([]);
        expect(view.items.map((i) => i.interval_start_ms), `an outbox item per closed interval after kill ${run + 1}`).toEqual(view.proofs.map((p) => p.interval_start_ms));
        if (view.txs.some((t) => t.state === 'pending')) tally.withPendingTx++;
        if (view.items.some((i) => i.state === 'signed')) tally.withSignedItems++;
        for (const m of storeMismatches(key.address, view)) if (!mismatches.some((x) => x.includes(m))) mismatches.push(`after kill ${run + 1}: ${m}`);

        if (OUTAGE_AFTER_RUNS.has(run)) {
          // Stay down for a whole interval: it must be anchored as count 0 with the null root.
          tally.outages++;
          await sleep(nextBoundary(Date.now()) + INTERVAL_MS + 200 - Date.now());
        }
      }

      // The last run: until every closed interval is anchored, then SIGTERM, away from a boundary.
      const lastKilledInterval = Math.floor(Date.now() / INTERVAL_MS) * INTERVAL_MS - INTERVAL_MS;
      const child = spawnCli(['start', '--config', file]);
      try {
        await waitFor('the agent to start (last run)', () => child.output.stderr.includes('"msg":"agent started"') || child.exitCode !== null, 20_000, 10);
        await waitFor(
          'every closed interval anchored',
          () => {
            const msToBoundary = nextBoundary(Date.now()) - Date.now();
            if (msToBoundary < 1500 || msToBoundary > INTERVAL_MS - 700) return false;
            const view = readStore(storePath);
            const last = view.proofs.at(-1)?.interval_start_ms ?? -1;
            return last >= lastKilledInterval && view.items.length > 0 && view.items.every((i) => i.state === 'mined' || i.state === 'confirmed');
          },
          60_000,
          100,
        );
        child.kill('SIGTERM');
        expect((await exited(child)).code, child.output.stderr.slice(-2000)).toBe(0);
      } finally {
        if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      }
    } finally {
      clearInterval(ticker);
    }

    // What the store holds, and what the chain says about it.
    const view = readStore(storePath);
    expect(view.integrity).toEqual([]);
    expect(view.items.filter((i) => i.state !== 'mined' && i.state !== 'confirmed'), 'outbox items not anchored at the end').toEqual([]);
    for (const l of view.leaves) expect(l.interval_start_ms, `leaf at ${l.ts_ms}`).toBe(Math.floor(l.ts_ms / INTERVAL_MS) * INTERVAL_MS);

    const client = createPublicClient({ transport: http(anvil.rpcUrl) });
    const logs = await client.getLogs({ address: contracts.proofs, event: PROOF_ANCHORED, args: { gateway: key.address }, fromBlock: 0n, toBlock: 'latest' });
    const onChain = new Map<number, (typeof logs)[number]['args']>();
    const twice: number[] = [];
    for (const e of logs) {
      const start = Number(e.args.intervalStart);
      if (onChain.has(start)) twice.push(start);
      onChain.set(start, e.args);
    }
    expect(twice, 'intervals anchored more than once').toEqual([]);

    const firstStored = Math.min(...view.leaves.map((l) => l.interval_start_ms));
    const lastClosed = view.proofs.at(-1)!.interval_start_ms;
    const expectedStarts: number[] = [];
    for (let s = firstStored; s <= lastClosed; s += INTERVAL_MS) expectedStarts.push(s);
    expect([...onChain.keys()].sort((a, b) => a - b), 'anchored intervals: every one from the first stored to the last closed, no gap').toEqual(expectedStarts);
    // No leaf is stored beyond the interval that was open at the stop.
    expect(view.leaves.filter((l) => l.interval_start_ms > lastClosed + INTERVAL_MS)).toEqual([]);

    const wrong: string[] = [];
    let empty = 0;
    let withEnergy = 0;
    for (const start of expectedStarts) {
      const e = onChain.get(start)!;
      const want = expectedProof(key.address, view.leaves, start);
      const got = { count: e.count!, root: e.root!, importWh: Number(e.importWh), exportWh: Number(e.exportWh) };
      if (Number(e.intervalEnd) !== start + INTERVAL_MS) wrong.push(`interval ${start}: intervalEnd ${e.intervalEnd}`);
      if (JSON.stringify(got) !== JSON.stringify(want)) wrong.push(`interval ${start}: on chain ${JSON.stringify(got)}, from the stored leaves ${JSON.stringify(want)}`);
      if (want.count === 0) empty++;
      if (want.importWh + want.exportWh > 0) withEnergy++;
    }
    const summary = {
      wallMs: Date.now() - testStartedMs,
      startupMs: { median: median(startupsMs), max: Math.max(...startupsMs), imports: median(importsMs), agentStart: median(agentStartMs) },
      ...tally,
      intervals: expectedStarts.length,
      emptyIntervals: empty,
      leaves: view.leaves.length,
      anchoringTxs: view.txs.length,
      droppedTxs: view.txs.filter((t) => t.state === 'dropped').length,
      storeMismatches: mismatches,
    };
    process.stderr.write(`metering crash test: ${JSON.stringify(summary, null, 1)}\n`);
    expect(wrong, 'ProofAnchored events that differ from the stored leaves').toEqual([]);
    expect(mismatches, 'closed intervals whose stored proof is not that of their stored leaves').toEqual([]);
    expect(tally.kills).toBe(KILLS);
    expect(empty, 'count-0 intervals from the outages').toBeGreaterThanOrEqual(OUTAGE_AFTER_RUNS.size);
    expect(withEnergy, 'intervals with energy (the meter moved)').toBeGreaterThan(0);
    expect(tally.afterSend + tally.withPendingTx, 'kills that landed while anchoring').toBeGreaterThan(0);
  }, 300_000);
});
