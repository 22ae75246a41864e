/**
 * `flexgate demo` (what `npm start` runs): the built-in simulated home — a SunSpec PV inverter and
 * battery on Modbus TCP, a site meter on an RS-485 line (a socat pseudo-terminal pair, when socat is
 * installed) — with an embedded MQTT broker and the agent, live in the terminal. It writes the demo
 * manifest of PROTOCOL.md §9 once everything is up. Ctrl-C stops everything.
 */
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SimulatedHome } from '../simulators/home.js';
import { socatAvailable } from '../simulators/modbus/pty.js';
import { startAnvil, type Anvil } from '../ledger-client/anvil.js';
import { deployContracts, fund, type Deployment } from '../ledger-client/deploy.js';
import { initGatewayKey, keyPath, loadGatewayKey, type GatewayKey } from './keys.js';
import { startEmbeddedBroker, type EmbeddedBroker } from './embedded-broker.js';
import { Agent } from './agent.js';
import { configSchema, type Config, type ConfigInput } from './config/schema.js';
import { renderLine, renderScreen } from './live-view.js';
import { createLogger } from './logger.js';
import { secp256k1 } from '@noble/curves/secp256k1';
import { bytesToHex } from '@noble/hashes/utils';
import { addressOf, type Hex } from '../ledger-client/eip712.js';
import { AggregatorSimulator, REASON_NAMES, STATUS_NAMES, type ReceivedStatus, type SendOptions } from '../simulators/aggregator/aggregator.js';

export interface DemoOptions {
  dataDir?: string | undefined;
  /** Simulated time runs this many times faster than real time (the sun, the load, the battery). */
  speed: number;
  /** Put the meter on a simulated RS-485 line (needs socat). */
  rtu: boolean;
  /** Stop by itself after this long (tests); default: run until Ctrl-C. */
  durationMs?: number;
}

export const DEMO_GATEWAY_NAME = 'demo-home';
const RTU_BAUD_RATE = 9600;

/** Demo intervals are short, so a proof reaches the chain within a minute of starting. */
export const DEMO_INTERVAL_MS = 30_000;
export const DEMO_LEAF_INTERVAL_MS = 2000;

export interface DemoChain {
  rpcUrl: string;
  chainId: number;
  contracts: Deployment;
}

export interface DemoManifest {
  /** The aggregator's broker (the uplink). */
  brokerUrl?: string;
  localBrokerUrl: string;
  rpcUrl?: string;
  chainId?: number;
  contracts?: { proofs: string; registry: string };
  aggregator?: { address: string; privateKey: string };
  gateway: { name: string; address?: string };
  devices: Array<
    | { id: string; class: string; modbus: { host: string; port: number; unitId: number } }
    | { id: string; class: string; rtu: { path: string; baudRate: number; unitId: number } }
    | { id: string; class: string; mqtt: { stateTopic: string; commandTopic: string } }
  >;
}

/** Writes the manifest atomically: a temporary file renamed into place. */
export function writeManifest(path: string, manifest: DemoManifest): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(tmp, path);
}

/** The demo's aggregator: its broker (the gateway's uplink) and its address (trusted by the gateway). */
export interface DemoAggregator {
  brokerUrl: string;
  address: string;
  chainId: number;
}

/** What the demo aggregator sends, in turn, one order every DEMO_ORDER_EVERY_MS (values in W). */
export const DEMO_ORDERS: readonly Omit<SendOptions, 'startMs'>[] = [
  { signal: 'delta', valueW: -3000, durationMs: 30_000, rampMs: 5000 },
  { signal: 'import-limit', valueW: 1000, durationMs: 30_000 },
  { signal: 'setpoint', valueW: 2000, durationMs: 30_000, randomizeMs: 5000 },
];
export const DEMO_ORDER_EVERY_MS = 45_000;

export function demoConfig(home: SimulatedHome, dataDir: string, chain?: DemoChain, aggregator?: DemoAggregator): Config {
  const input: ConfigInput = {
    gateway: { name: DEMO_GATEWAY_NAME, dataDir },
    ...(aggregator
      ? {
          uplink: { url: aggregator.brokerUrl },
          dispatch: { trustedAggregators: [aggregator.address], chainId: aggregator.chainId, siteMaxImportW: 30_000, siteMaxExportW: 15_000 },
        }
      : {}),
    ...(chain
      ? {
          metering: { leafIntervalMs: DEMO_LEAF_INTERVAL_MS, intervalMs: DEMO_INTERVAL_MS },
          chain: { rpcUrl: chain.rpcUrl, chainId: chain.chainId, contracts: { proofs: chain.contracts.proofs }, confirmations: 1, pollIntervalMs: 1000 },
        }
      : {}),
    store: { flushIntervalMs: 5000 },
    localApi: { mqtt: { embedded: { host: '127.0.0.1', port: 0 } } },
    devices: home.devices.map((d) => ({
      id: d.id,
      class: d.class,
      ...(d.profile ? { driver: d.mqtt ? ('mqtt' as const) : ('profile' as const), profile: d.profile } : { driver: 'sunspec' as const }),
      ...(d.id === 'hp-meter' ? { role: 'submeter' as const } : {}),
      ...(d.class === 'ev-charger' ? { evCharger: { phases: 3 as const, minCurrentA: 6, maxCurrentA: 16, voltageV: 230 } } : {}),
      ...(d.class === 'hvac' ? { hvac: { ratedPowerW: 2500, comfortMinC: 20, comfortMaxC: 22.5, maxOffsetC: 3 } } : {}),
      ...(d.class === 'load' ? { load: { ratedPowerW: 2000, minOnMs: 60_000, minOffMs: 60_000 } } : {}),
      connection: d.modbus
        ? { tcp: { host: d.modbus.host, port: d.modbus.port } }
        : d.mqtt
          ? { mqtt: { topic: d.mqtt.topic } }
          : { rtu: { path: d.rtu!.path, baudRate: d.rtu!.baudRate, parity: 'none' as const, dataBits: 8 as const, stopBits: 1 as const } },
      unitId: d.modbus?.unitId ?? d.rtu?.unitId ?? 1,
      pollIntervalMs: 1000,
      // The RS-485 line at 9600 baud needs ~60 ms for a meter read; leave room for a slow answer.
      timeoutMs: 1000,
    })),
  };
  return configSchema.parse(input);
}

export async function runDemo(options: DemoOptions): Promise<number> {
  const out = process.stdout;
  const useRtu = options.rtu && socatAvailable();
  out.write(
    'flexgate demo: the built-in SIMULATED home (no real devices) — SunSpec PV inverter and battery on Modbus TCP, ' +
      `site meter on ${useRtu ? `a simulated RS-485 line (${RTU_BAUD_RATE} baud)` : 'Modbus TCP'}, an EV charger (Phoenix Contact), a heat pump (Lambda) ` +
      'with its Eastron sub-meter, an embedded MQTT broker, and the agent.\n',
  );
  if (options.rtu && !useRtu) out.write('note: socat is not installed, so the meter is on Modbus TCP instead of RS-485 (apt-get install socat).\n');
  const dataDir = resolve(options.dataDir ?? join('.flexgate', 'demo'));
  mkdirSync(dataDir, { recursive: true });
  const log = createLogger({ level: 'info', file: join(dataDir, 'flexgate.log') });
  // The demo's chain is new on every run: so is its store (a store's proofs belong to one chain).
  for (const f of ['flexgate.db', 'flexgate.db-wal', 'flexgate.db-shm']) rmSync(join(dataDir, f), { force: true });
  const key: GatewayKey = existsSync(keyPath(dataDir)) ? loadGatewayKey(dataDir) : initGatewayKey(dataDir);
  let anvil: Anvil | undefined;
  let chain: DemoChain | undefined;
  try {
    anvil = await startAnvil();
    const contracts = await deployContracts(anvil.rpcUrl, anvil.privateKeys[0]!);
    await fund(anvil.rpcUrl, anvil.privateKeys[0]!, key.address, '10');
    chain = { rpcUrl: anvil.rpcUrl, chainId: anvil.chainId, contracts };
  } catch (err) {
    await anvil?.stop();
    anvil = undefined;
    out.write(`note: no local chain (${err instanceof Error ? err.message.split('\n')[0] : String(err)}): running without metering proofs.\n`);
  }
  // The aggregator's side: its own broker (the gateway's uplink) and key, new on every run.
  const uplinkBroker = await startEmbeddedBroker({ host: '127.0.0.1', port: 0 });
  const aggregatorKey: Hex = `0x${bytesToHex(secp256k1.utils.randomPrivateKey())}`;
  const demoAggregator: DemoAggregator = { brokerUrl: uplinkBroker.url, address: addressOf(aggregatorKey), chainId: chain?.chainId ?? 31337 };
  const home = await SimulatedHome.start({ speed: options.speed, seed: Date.now() % 1000, variants: { battery: 'der' }, flexibleLoads: true, ...(useRtu ? { meterOnRtu: { baudRate: RTU_BAUD_RATE } } : {}) });
  const config = demoConfig(home, dataDir, chain, demoAggregator);
  const agent = new Agent({ config, log });
  let aggregator: AggregatorSimulator | undefined;
  let orderTimer: NodeJS.Timeout | undefined;
  const stopAll = async () => {
    if (orderTimer) clearInterval(orderTimer);
    await aggregator?.stop();
    await agent.stop();
    await home.stop();
    await uplinkBroker.close();
    await anvil?.stop();
  };
  const controller = new AbortController();
  const stop = (why: string) => {
    if (!controller.signal.aborted) controller.abort(new Error(why));
  };
  const onSigint = () => stop('SIGINT');
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  try {
    await agent.start(controller.signal);
    await agent.localApiConnected(controller.signal);
    // The water heater's smart plug talks to the gateway's broker, like a real one on the LAN.
    await home.startMqttDevices(agent.localBrokerUrl!);
    const manifestPath = join(dataDir, 'demo.json');
    writeManifest(manifestPath, {
      brokerUrl: demoAggregator.brokerUrl,
      aggregator: { address: demoAggregator.address, privateKey: aggregatorKey },
      localBrokerUrl: agent.localBrokerUrl!,
      ...(chain ? { rpcUrl: chain.rpcUrl, chainId: chain.chainId, contracts: { proofs: chain.contracts.proofs, registry: chain.contracts.registry } } : {}),
      gateway: { name: DEMO_GATEWAY_NAME, address: key.address },
      devices: home.devices.map((d) =>
        d.modbus
          ? { id: d.id, class: d.class, modbus: d.modbus }
          : d.mqtt
            ? { id: d.id, class: d.class, mqtt: { stateTopic: d.mqtt.stateTopic, commandTopic: d.mqtt.commandTopic } }
            : { id: d.id, class: d.class, rtu: d.rtu! },
      ),
    });
    out.write(`manifest: ${manifestPath}\n`);
    out.write(`local MQTT API: ${agent.localBrokerUrl} (topics ${agent.localTopicPrefix}/#), store: ${agent.storePath}, log: ${join(dataDir, 'flexgate.log')}\n`);
    if (chain) {
      out.write(`chain: anvil at ${chain.rpcUrl} (chain id ${chain.chainId}), proof registry ${chain.contracts.proofs}; gateway ${key.address}\n`);
      out.write(`metering: a reading every ${DEMO_LEAF_INTERVAL_MS / 1000} s, one signed proof every ${DEMO_INTERVAL_MS / 1000} s, anchored on the chain\n`);
    }
    out.write(`aggregator: ${demoAggregator.address} on ${demoAggregator.brokerUrl} sends a signed order every ${DEMO_ORDER_EVERY_MS / 1000} s (its key is in the manifest: send your own with npm run aggregator)\n`);
    out.write('Ctrl-C stops the demo.\n');
    const tty = out.isTTY === true;
    aggregator = await AggregatorSimulator.start({ brokerUrl: demoAggregator.brokerUrl, chainId: demoAggregator.chainId, privateKey: aggregatorKey, gateway: key.address });
    const orderLines: string[] = [];
    const note = (line: string) => {
      orderLines.push(`${new Date().toISOString().slice(11, 19)} ${line}`);
      if (orderLines.length > 4) orderLines.shift();
      if (!tty) out.write(`order: ${line}\n`);
    };
    aggregator.onStatus((st: ReceivedStatus) => {
      const m = st.message;
      if (!m) return;
      const reason = m.reason ? ` (${REASON_NAMES[m.reason] ?? m.reason})` : '';
      note(`${m.orderId.slice(0, 10)}… ${STATUS_NAMES[m.status] ?? m.status}${reason}, deliveredWh ${m.deliveredWh}${st.valid ? ', signature ok' : ', BAD SIGNATURE'}`);
    });
    let next = 0;
    const sendNext = () => {
      const o = DEMO_ORDERS[next++ % DEMO_ORDERS.length]!;
      aggregator
        ?.send(o)
        .then((e) => note(`${e.message.orderId.slice(0, 10)}… sent: ${o.signal} ${o.valueW} W for ${o.durationMs / 1000} s`))
        .catch((err: unknown) => note(`could not send: ${err instanceof Error ? err.message : String(err)}`));
    };
    setTimeout(sendNext, 10_000).unref();
    orderTimer = setInterval(sendNext, DEMO_ORDER_EVERY_MS);
    orderTimer.unref();
    let lastProof = 'no interval closed yet';
    agent.events.on('proofSigned', (p) => {
      lastProof = `interval ${new Date(p.intervalStart).toISOString().slice(11, 19)} signed (${p.count} readings, root ${p.root.slice(0, 10)}…)`;
      if (!tty) out.write(`proof: ${lastProof}\n`);
    });
    agent.events.on('proofAnchored', (p) => {
      lastProof = `interval ${new Date(p.intervalStart).toISOString().slice(11, 19)} anchored in block ${p.blockNumber} (tx ${p.txHash.slice(0, 10)}…)`;
      if (!tty) out.write(`proof: ${lastProof}\n`);
    });
    const header = [
      `flexgate demo — simulated home, ${options.speed}× speed   (Ctrl-C to stop)`,
      `local MQTT API ${agent.localBrokerUrl}   manifest ${manifestPath}`,
    ];
    agent.events.on('snapshot', (snapshot) => {
      if (tty) {
        const simulated = new Date(home.clock.now()).toISOString().slice(11, 16);
        out.write(`\x1b[H\x1b[2J${renderScreen(snapshot, header, [`simulated time of day ${simulated} UTC`, ...(chain ? [`proofs: ${lastProof}`] : []), 'orders:', ...orderLines.map((l) => `  ${l}`)])}\n`);
      } else {
        out.write(`${renderLine(snapshot)}\n`);
      }
    });
    if (options.durationMs !== undefined) setTimeout(() => stop('duration reached'), options.durationMs).unref();
    await new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }));
  } catch (err) {
    if (!controller.signal.aborted) {
      process.stderr.write(`flexgate demo: ${err instanceof Error ? err.message : String(err)}\n`);
      await stopAll();
      return 1;
    }
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  out.write('\nstopping the demo...\n');
  await stopAll();
  // The manifest describes a running demo: it goes with it.
  rmSync(join(dataDir, 'demo.json'), { force: true });
  log.flush();
  out.write('demo stopped.\n');
  return 0;
}
