/**
 * `flexgate demo` (what `npm start` runs), as a user sees it: it says it is simulated, shows live
 * PV, battery and meter values within 10 s, writes the manifest of PROTOCOL.md §9, serves the local
 * MQTT API, anchors a metering proof on its local chain within a minute, and stops cleanly on
 * Ctrl-C (SIGINT) within a few seconds.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, describe, expect, it } from 'vitest';
import { exited, hasDebianPythonModule, recorder, repoRoot, requirePackage, spawnCli, tempDir, waitFor } from './helpers.js';

const pythonPresent = requirePackage('ecdsa', 'python3-ecdsa', hasDebianPythonModule) && requirePackage('Cryptodome', 'python3-pycryptodome', hasDebianPythonModule);

function python(args: string[], input = ''): { code: number | null; stdout: string; stderr: string } {
  const r = spawnSync('/usr/bin/python3', [join(repoRoot, 'docs', 'examples', 'aggregator.py'), ...args], { encoding: 'utf8', input, timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/**
 * The aggregator guide's Python example against the running demo: it signs an order with the
 * demo aggregator's key (from the manifest), the order goes to the gateway over the demo's
 * aggregator broker, and the example verifies every status the gateway signs for it.
 */
async function pythonInterop(manifest: { brokerUrl: string; chainId: number; gateway: { address: string }; aggregator: { privateKey: string } }): Promise<string[]> {
  const gateway = manifest.gateway.address;
  const signed = python(['sign', '--key', manifest.aggregator.privateKey, '--chain-id', String(manifest.chainId), '--gateway', gateway, '--signal', '4', '--value', '-1000', '--duration-ms', '8000']);
  expect(signed.code, signed.stderr).toBe(0);
  const envelope = JSON.parse(signed.stdout) as { message: { orderId: string } };
  const orderId = envelope.message.orderId.toLowerCase();
  const client = await mqtt.connectAsync(manifest.brokerUrl, { clientId: `python-interop-${process.pid}` });
  const statuses: string[] = [];
  try {
    client.on('message', (_topic, payload) => {
      const text = payload.toString('utf8');
      const m = (JSON.parse(text) as { message?: { orderId?: string } }).message;
      if (m?.orderId?.toLowerCase() === orderId) statuses.push(text);
    });
    await client.subscribeAsync(`flex/v1/gw/${gateway}/ack`, { qos: 1 });
    await client.publishAsync(`flex/v1/gw/${gateway}/order`, signed.stdout.trim(), { qos: 1 });
    await waitFor('RECEIVED, STARTED and COMPLETED for the Python order', () => statuses.length >= 3, 20_000, 100);
  } finally {
    await client.endAsync();
  }
  return statuses.map((text) => {
    const verified = python(['verify-status', '--gateway', gateway, '--chain-id', String(manifest.chainId)], text);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
    return verified.stdout.trim();
  });
}

const dir = tempDir();
afterAll(() => dir.remove());

describe('flexgate demo', () => {
  it('runs the simulated home, shows live values, writes the manifest and stops on Ctrl-C', async () => {
    const dataDir = join(dir.path, 'demo');
    const startedMs = Date.now();
    const child = spawnCli(['demo', '--data-dir', dataDir]);
    try {
      const manifestLine = await waitFor('the manifest line', () => /^manifest: (.+)$/m.exec(child.output.stdout)?.[1], 10_000);
      expect(child.output.stdout.split('\n')[0]).toMatch(/^flexgate demo: the built-in SIMULATED home/);
      const manifestPath = join(dataDir, 'demo.json');
      expect(manifestLine).toBe(manifestPath);
      // Live values of every device within 10 s of starting.
      const live = await waitFor(
        'a live line with every value',
        () => /^\d\d:\d\d:\d\d pv (\d+) W \| battery (-?\d+) W (\d+\.\d) % \| meter (-?\d+) W \| hp-meter (-?\d+) W \| ev (\d+) W \| heat-pump (\d+) W \| water-heater (\d+) W$/m.exec(child.output.stdout),
        10_000,
      );
      expect(Date.now() - startedMs).toBeLessThan(10_000 + 2000);
      expect(Number(live[1])).toBeGreaterThanOrEqual(0);

      const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
      expect(Object.keys(manifest).sort()).toEqual(['aggregator', 'brokerUrl', 'chainId', 'contracts', 'devices', 'gateway', 'localBrokerUrl', 'rpcUrl']);
      expect(manifest.aggregator).toEqual({ address: expect.stringMatching(/^0x[0-9a-f]{40}$/), privateKey: expect.stringMatching(/^0x[0-9a-f]{64}$/) });
      expect(manifest.brokerUrl).toMatch(/^mqtt:\/\/127\.0\.0\.1:\d+$/);
      expect(manifest.gateway).toEqual({ name: 'demo-home', address: expect.stringMatching(/^0x[0-9a-f]{40}$/) });
      expect(manifest.chainId).toBe(31337);
      expect(Object.keys(manifest.contracts).sort()).toEqual(['proofs', 'registry']);
      expect(manifest.devices.map((d: { id: string; class: string }) => [d.id, d.class])).toEqual([
        ['pv', 'pv'],
        ['battery', 'battery'],
        ['meter', 'meter'],
        ['hp-meter', 'meter'],
        ['ev', 'ev-charger'],
        ['heat-pump', 'hvac'],
        ['water-heater', 'load'],
      ]);
      for (const d of manifest.devices) {
        if (d.modbus) expect(Object.keys(d.modbus).sort()).toEqual(['host', 'port', 'unitId']);
        else if (d.mqtt) expect(Object.keys(d.mqtt).sort()).toEqual(['commandTopic', 'stateTopic']);
        else expect(Object.keys(d.rtu).sort()).toEqual(['baudRate', 'path', 'unitId']);
      }
      if (process.env['CI'] === 'true') expect(manifest.devices[2].rtu).toMatchObject({ baudRate: 9600, unitId: 1 });
      expect(existsSync(`${manifestPath}.${child.pid}.tmp`)).toBe(false);

      const rec = await recorder(manifest.localBrokerUrl, ['flexgate/demo-home/#']);
      try {
        const state = await waitFor('bridge/state', () => rec.messages.find((m) => m.topic === 'flexgate/demo-home/bridge/state'));
        expect(JSON.parse(state.payload)).toEqual({ state: 'online' });
        await waitFor('meter state', () => rec.messages.find((m) => m.topic === 'flexgate/demo-home/devices/meter'));
      } finally {
        await rec.close();
      }

      // The demo's aggregator sends its first signed order 10 s after the start; the gateway answers
      // with signed statuses the aggregator verifies.
      await waitFor('the first order started', () => /^order: 0x[0-9a-f]{8}… STARTED, deliveredWh -?\d+, signature ok$/m.exec(child.output.stdout), 30_000);
      expect(child.output.stdout).toMatch(/^order: 0x[0-9a-f]{8}… RECEIVED, deliveredWh 0, signature ok$/m);
      expect(child.output.stdout).not.toMatch(/BAD SIGNATURE/);

      if (pythonPresent) {
        const verified = await pythonInterop(manifest);
        expect(verified.map((line) => line.split(' ')[1])).toEqual(['RECEIVED', 'STARTED', 'COMPLETED']);
      }

      // A signed proof reaches the chain within a minute of starting (30 s intervals in the demo).
      const anchored = await waitFor('an anchored proof', () => /^proof: interval \d\d:\d\d:\d\d anchored in block \d+/m.exec(child.output.stdout), 60_000);
      expect(Date.now() - startedMs).toBeLessThan(62_000);
      expect(anchored[0]).toBeTruthy();

      const stopMs = Date.now();
      child.kill('SIGINT');
      const { code } = await exited(child);
      expect(code).toBe(0);
      expect(Date.now() - stopMs).toBeLessThan(5000);
      expect(child.output.stdout).toMatch(/demo stopped\.\n$/);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  }, 90_000);
});
