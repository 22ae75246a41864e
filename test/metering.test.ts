/**
 * Metering proofs end to end: the agent reads the simulated site meter over Modbus, closes short
 * intervals, signs them with its key and anchors them on a real anvil node. What was anchored is
 * read back from the node's own ProofAnchored events; an exported reading verifies against the
 * chain, and a tampered one does not.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { stringify } from 'yaml';
import { join } from 'node:path';
import { createPublicClient, http, parseAbiItem } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../agent/agent.js';
import { initGatewayKey, type GatewayKey } from '../agent/keys.js';
import { exportProof, verifyProofExport, type Anchor } from '../agent/proofs.js';
import { openStore } from '../agent/store/index.js';
import { systemClock } from '../drivers/clock.js';
import { silentLog } from '../drivers/log.js';
import { startAnvil, type Anvil } from '../ledger-client/anvil.js';
import { deployContracts, fund, type Deployment } from '../ledger-client/deploy.js';
import { verifyEnvelope, type Hex } from '../ledger-client/eip712.js';
import { startEmbeddedBroker } from '../agent/embedded-broker.js';
import type { SimulatedHome } from '../simulators/home.js';
import { hasDebianPythonModule, homeConfig, recorder, repoRoot, requirePackage, runCli, startFrozenHome, tempDir, waitFor } from './helpers.js';

const INTERVAL_MS = 5000;
let anvil: Anvil;
let contracts: Deployment;
let home: SimulatedHome;
const dir = tempDir();

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

async function anchoredEvents(gateway: string) {
  const client = createPublicClient({ transport: http(anvil.rpcUrl) });
  return client.getLogs({
    address: contracts.proofs,
    event: parseAbiItem('event ProofAnchored(address indexed gateway, uint64 indexed intervalStart, uint64 intervalEnd, uint32 count, bytes32 root, uint64 importWh, uint64 exportWh)'),
    args: { gateway: gateway as Hex },
    fromBlock: 0n,
  });
}

describe('metering proofs on the chain', () => {
  it('anchors every interval exactly once with the root of its stored readings, and a reading verifies', async () => {
    const dataDir = join(dir.path, 'data');
    mkdirSync(dataDir, { recursive: true });
    const key: GatewayKey = initGatewayKey(dataDir);
    await fund(anvil.rpcUrl, anvil.privateKeys[0]!, key.address);
    const config = homeConfig(home, dataDir, {
      device: { pollIntervalMs: 250 },
      config: {
        metering: { leafIntervalMs: 1000, intervalMs: INTERVAL_MS },
        chain: { rpcUrl: anvil.rpcUrl, chainId: anvil.chainId, contracts: { proofs: contracts.proofs }, confirmations: 1, pollIntervalMs: 200 },
      },
    });
    // The aggregator's broker: proofs are published there once mined (PROTOCOL.md §6).
    const uplinkBroker = await startEmbeddedBroker();
    const aggregator = await recorder(uplinkBroker.url, [`flex/v1/gw/${key.address}/#`]);
    config.uplink = { url: uplinkBroker.url };
    const agent = new Agent({ config, log: silentLog });
    const anchored: Array<{ intervalStart: number; txHash: string; blockNumber: number }> = [];
    agent.events.on('proofAnchored', (a) => void anchored.push(a));
    await agent.start();
    try {
      // Let the meter move so the intervals differ.
      const ticker = setInterval(() => home.clock.advance(1000), 250);
      try {
        await waitFor('three anchored intervals', () => anchored.length >= 3, 30_000);
      } finally {
        clearInterval(ticker);
      }
    } finally {
      await agent.stop();
    }

    const status = aggregator.messages.find((m) => m.topic === `flex/v1/gw/${key.address}/status` && JSON.parse(m.payload).online === true);
    expect(status && JSON.parse(status.payload)).toMatchObject({ online: true, version: expect.stringMatching(/^\d+\.\d+\.\d+/), at: expect.any(Number) });
    const published = aggregator.messages.filter((m) => m.topic === `flex/v1/gw/${key.address}/proof`).map((m) => JSON.parse(m.payload));
    expect(published.length).toBeGreaterThanOrEqual(3);
    for (const p of published) {
      expect(Object.keys(p).sort()).toEqual(['anchor', 'proof']);
      expect(Object.keys(p.proof).sort()).toEqual(['message', 'signature', 'type']);
      expect(p.proof.type).toBe('MeterProof');
      expect(Object.keys(p.anchor).sort()).toEqual(['blockNumber', 'txHash']);
      expect(verifyEnvelope(p.proof, { chainId: anvil.chainId, expectedType: 'MeterProof' })).toMatchObject({ ok: true, signer: key.address });
    }
    await aggregator.close();
    await uplinkBroker.close();

    const store = openStore({ path: agent.storePath, clock: systemClock, log: silentLog, readOnly: true });
    try {
      const proofs = store.database.prepare('SELECT interval_start_ms, leaf_count, root, import_wh, export_wh FROM meter_proofs ORDER BY interval_start_ms').all() as Array<{ interval_start_ms: number; leaf_count: number; root: string; import_wh: number; export_wh: number }>;
      const events = await anchoredEvents(key.address);
      const onChain = new Map<number, (typeof events)[number]['args']>();
      for (const e of events) {
        const start = Number(e.args.intervalStart);
        expect(onChain.has(start), `interval ${start} anchored twice`).toBe(false);
        onChain.set(start, e.args);
      }
      expect(onChain.size).toBeGreaterThanOrEqual(3);
      // Intervals are consecutive from the first, and each anchored one carries the stored root.
      for (let i = 1; i < proofs.length; i++) expect(proofs[i]!.interval_start_ms - proofs[i - 1]!.interval_start_ms).toBe(INTERVAL_MS);
      for (const p of proofs) {
        const e = onChain.get(p.interval_start_ms);
        if (!e) continue; // closed just before the stop, not anchored yet
        expect(e.root).toBe(p.root);
        expect(e.count).toBe(p.leaf_count);
        expect(Number(e.importWh)).toBe(p.import_wh);
      }
      expect(proofs.filter((p) => p.leaf_count > 0).length).toBeGreaterThanOrEqual(2);

      // An auditor's export of a reading in an anchored interval verifies against the chain.
      const interval = proofs.find((p) => p.leaf_count > 1 && onChain.has(p.interval_start_ms))!;
      const anchorOf = (start: number): Anchor | null => {
        const a = anchored.find((x) => x.intervalStart === start);
        return a ? { txHash: a.txHash as Hex, blockNumber: a.blockNumber } : null;
      };
      const leafTs = store.database.prepare('SELECT ts_ms FROM meter_leaves WHERE interval_start_ms = ? ORDER BY ts_ms LIMIT 1 OFFSET 1').pluck().get(interval.interval_start_ms) as number;
      const exported = exportProof(store.database, leafTs + 1, anchorOf);
      expect(exported.index).toBe(1);
      expect(exported.reading.ts).toBe(leafTs);
      expect(exported.size).toBe(interval.leaf_count);
      const target = { rpcUrl: anvil.rpcUrl, chainId: anvil.chainId, proofRegistry: contracts.proofs };
      const checks = await verifyProofExport(JSON.parse(JSON.stringify(exported)), target);
      expect(checks.filter((c) => !c.ok)).toEqual([]);
      expect(checks.map((c) => c.what)).toEqual(['gateway signature', 'reading belongs to the proof', 'inclusion', 'root on chain', 'anchor transaction']);

      // The same through the command line, as an auditor runs it.
      const configFile = join(dir.path, 'flexgate.yaml');
      writeFileSync(configFile, stringify(config));
      const cli = await runCli(['proof', 'export', '--config', configFile, '--at', new Date(leafTs + 1).toISOString()]);
      expect(cli.code).toBe(0);
      const exportFile = join(dir.path, 'export.json');
      writeFileSync(exportFile, cli.stdout);
      expect(JSON.parse(cli.stdout)).toEqual(JSON.parse(JSON.stringify(exported)));
      const verified = await runCli(['proof', 'verify', exportFile, '--rpc-url', anvil.rpcUrl, '--chain-id', String(anvil.chainId), '--registry', contracts.proofs]);
      expect(verified.code).toBe(0);
      expect(verified.stdout).toMatch(/the reading is proven/);
      // An auditor with no flexgate code: the Python example of docs/metering-proofs.md.
      if (requirePackage('Cryptodome', 'python3-pycryptodome', hasDebianPythonModule)) {
        const py = spawnSync('/usr/bin/python3', [join(repoRoot, 'docs/examples/verify_proof.py'), exportFile, String(anvil.chainId), anvil.rpcUrl, contracts.proofs], { encoding: 'utf8' });
        expect(py.status, py.stderr).toBe(0);
        expect(py.stdout.match(/ OK$/gm)).toHaveLength(3);
        expect(py.stdout).toMatch(/^rootOf .* True OK$/m);
        expect(py.stdout).toMatch(new RegExp(`^signer +${key.address} OK$`, 'm'));
      }
      const badFile = join(dir.path, 'bad.json');
      writeFileSync(badFile, cli.stdout.replace(`"powerW": ${exported.reading.powerW}`, `"powerW": ${exported.reading.powerW + 1}`));
      const refused = await runCli(['proof', 'verify', badFile, '--config', configFile]);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toMatch(/FAIL inclusion/);
      if (requirePackage('Cryptodome', 'python3-pycryptodome', hasDebianPythonModule)) {
        const py = spawnSync('/usr/bin/python3', [join(repoRoot, 'docs/examples/verify_proof.py'), badFile, String(anvil.chainId)], { encoding: 'utf8' });
        expect(py.stdout).toMatch(/^root from path .* MISMATCH$/m);
      }

      const tampered = JSON.parse(JSON.stringify(exported));
      tampered.reading.powerW += 1;
      const bad = await verifyProofExport(tampered, target);
      expect(bad.find((c) => c.what === 'inclusion')!.ok).toBe(false);
      const forged = JSON.parse(JSON.stringify(exported));
      forged.proof.message.importWh += 1;
      expect((await verifyProofExport(forged, target))[0]).toMatchObject({ what: 'gateway signature', ok: false });
    } finally {
      store.close();
    }
  }, 60_000);

  it('with a wrong chain id it keeps metering, says what is wrong, and anchors nothing', async () => {
    const dataDir = join(dir.path, 'wrong-chain');
    mkdirSync(dataDir, { recursive: true });
    const key = initGatewayKey(dataDir);
    await fund(anvil.rpcUrl, anvil.privateKeys[0]!, key.address);
    const config = homeConfig(home, dataDir, {
      device: { pollIntervalMs: 250 },
      config: {
        localApi: { mqtt: { embedded: { host: '127.0.0.1', port: 0 } } },
        metering: { leafIntervalMs: 1000, intervalMs: INTERVAL_MS },
        chain: { rpcUrl: anvil.rpcUrl, chainId: 99, contracts: { proofs: contracts.proofs }, confirmations: 1, pollIntervalMs: 200 },
      },
    });
    const agent = new Agent({ config, log: silentLog });
    const signed: number[] = [];
    agent.events.on('proofSigned', (p) => void signed.push(p.intervalStart));
    await agent.start();
    try {
      await agent.localApiConnected();
      await waitFor('a signed interval', () => signed.length >= 1, 15_000);
      const rec = await recorder(agent.localBrokerUrl!, ['flexgate/test-home/bridge/response/proofs']);
      try {
        await rec.client.publishAsync('flexgate/test-home/bridge/request/proofs', '{}');
        const answer = JSON.parse((await waitFor('proofs answer', () => rec.messages[0])).payload);
        expect(answer.status).toBe('ok');
        expect(answer.data.chainError).toMatch(/chain 31337.*99|99.*31337/);
        expect(answer.data.intervals.signed).toBeGreaterThanOrEqual(1);
      } finally {
        await rec.close();
      }
    } finally {
      await agent.stop();
    }
    expect(await anchoredEvents(key.address)).toEqual([]);
  }, 40_000);
});
