/**
 * The agent dies (SIGKILL) while an order holds the devices: the battery reverts by itself when its
 * revert timer (the dead-man switch, dispatch.deadManMs) runs out; the EV charger, which has no
 * watchdog, is put back to normal by the next start (restore ledger), and the order, whose window
 * ended meanwhile, is reported COMPLETED.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { demoConfig } from '../agent/demo.js';
import { configSchema } from '../agent/config/schema.js';
import { initGatewayKey } from '../agent/keys.js';
import { startEmbeddedBroker } from '../agent/embedded-broker.js';
import { addressOf, type Hex } from '../ledger-client/eip712.js';
import { AggregatorSimulator } from '../simulators/aggregator/aggregator.js';
import { SimulatedHome } from '../simulators/home.js';
import { exited, freePort, spawnCli, tempDir, waitFor } from './helpers.js';

const AGGREGATOR_KEY: Hex = `0x${'11'.repeat(32)}`;
const DEAD_MAN_MS = 4000;

describe('agent killed during an order', () => {
  const dir = tempDir('flexgate-dispatch-kill-');
  afterAll(() => dir.remove());

  it('battery reverts by its own timer; the EV charger is restored at the next start; the order completes', async () => {
    const broker = await startEmbeddedBroker();
    const home = await SimulatedHome.start({ seed: 7, flexibleLoads: true, cloudiness: 0, evEnergyWantedWh: 60_000, evArrivals: false, startTimeMs: Date.UTC(2026, 5, 14, 12) });
    const dataDir = join(dir.path, 'data');
    mkdirSync(dataDir, { recursive: true });
    const key = initGatewayKey(dataDir);
    const localPort = await freePort();
    const config = configSchema.parse({
      ...demoConfig(home, dataDir),
      localApi: { mqtt: { embedded: { host: '127.0.0.1', port: localPort } } },
      uplink: { url: broker.url },
      dispatch: { trustedAggregators: [addressOf(AGGREGATOR_KEY)], chainId: 31337, siteMaxImportW: 30_000, siteMaxExportW: 15_000, deadManMs: DEAD_MAN_MS },
    });
    const file = join(dir.path, 'flexgate.yaml');
    writeFileSync(file, stringify(config));
    const aggregator = await AggregatorSimulator.start({ brokerUrl: broker.url, chainId: 31337, privateKey: AGGREGATOR_KEY, gateway: key.address });
    let child = spawnCli(['start', '--config', file]);
    try {
      await waitFor('the agent online on the uplink', () => aggregator.gatewayPresence(key.address)?.online, 30_000, 100);
      await home.startMqttDevices(`mqtt://127.0.0.1:${localPort}`);
      await new Promise((r) => setTimeout(r, 3000));
      // More than the battery can give: the EV charger is cut back too.
      const deltaW = -Math.round(home.battery.powerW + 5000 + 3000);
      const order = await aggregator.send({ signal: 'delta', valueW: deltaW, durationMs: 8000 });
      const id = order.message.orderId;
      await aggregator.waitForStatus(id, 'STARTED', 5000);
      await waitFor('battery and EV charger held', () => home.battery.controlWindowW !== undefined && (home.ev!.offeredCurrentA < 16 || !home.ev!.enabled), 5000);
      child.kill('SIGKILL');
      await exited(child);
      const killedAt = Date.now();
      // The battery's revert timer runs out; nobody writes to it.
      await waitFor('battery back on its own control', () => home.battery.controlWindowW === undefined, DEAD_MAN_MS + 3000, 50);
      expect(Date.now() - killedAt).toBeLessThanOrEqual(DEAD_MAN_MS + 2500);
      // The EV charger has no watchdog: it stays as flexgate left it while flexgate is down.
      await new Promise((r) => setTimeout(r, 5000));
      expect(home.ev!.offeredCurrentA < 16 || !home.ev!.enabled).toBe(true);
      child = spawnCli(['start', '--config', file]);
      await waitFor('EV charger restored at start', () => home.ev!.enabled && home.ev!.offeredCurrentA === 16, 20_000, 100);
      const completed = await aggregator.waitForStatus(id, 'COMPLETED', 20_000);
      // What the dispatcher integrated lives in memory: an order that ends while the agent is down
      // is reported without it (docs/dispatch.md, "After a crash").
      expect(completed.message!.deliveredWh).toBeLessThanOrEqual(0);
      child.kill('SIGTERM');
      expect((await exited(child)).code).toBe(0);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
      await aggregator.stop();
      await home.stop();
      await broker.close();
    }
  }, 120_000);
});
