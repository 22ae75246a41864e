/**
 * `flexgate demo` (what `npm start` runs): the built-in simulated home — a SunSpec PV inverter and
 * battery on Modbus TCP, a site meter on an RS-485 line (a socat pseudo-terminal pair, when socat is
 * installed) — with an embedded MQTT broker and the agent, live in the terminal. It writes the demo
 * manifest of PROTOCOL.md §9 once everything is up. Ctrl-C stops everything.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SimulatedHome } from '../simulators/home.js';
import { socatAvailable } from '../simulators/modbus/pty.js';
import { Agent } from './agent.js';
import { configSchema, type Config, type ConfigInput } from './config/schema.js';
import { renderLine, renderScreen } from './live-view.js';
import { createLogger } from './logger.js';

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

export interface DemoManifest {
  localBrokerUrl: string;
  gateway: { name: string };
  devices: Array<
    | { id: string; class: string; modbus: { host: string; port: number; unitId: number } }
    | { id: string; class: string; rtu: { path: string; baudRate: number; unitId: number } }
  >;
}

/** Writes the manifest atomically: a temporary file renamed into place. */
export function writeManifest(path: string, manifest: DemoManifest): void {
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(manifest, null, 2)}\n`);
  renameSync(tmp, path);
}

export function demoConfig(home: SimulatedHome, dataDir: string): Config {
  const input: ConfigInput = {
    gateway: { name: DEMO_GATEWAY_NAME, dataDir },
    store: { flushIntervalMs: 5000 },
    localApi: { mqtt: { embedded: { host: '127.0.0.1', port: 0 } } },
    devices: home.devices.map((d) => ({
      id: d.id,
      class: d.class,
      driver: 'sunspec' as const,
      connection: d.modbus
        ? { tcp: { host: d.modbus.host, port: d.modbus.port } }
        : { rtu: { path: d.rtu!.path, baudRate: d.rtu!.baudRate, parity: 'none' as const, dataBits: 8 as const, stopBits: 1 as const } },
      unitId: d.modbus?.unitId ?? d.rtu!.unitId,
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
      `site meter on ${useRtu ? `a simulated RS-485 line (${RTU_BAUD_RATE} baud)` : 'Modbus TCP'}, an embedded MQTT broker, and the agent.\n`,
  );
  if (options.rtu && !useRtu) out.write('note: socat is not installed, so the meter is on Modbus TCP instead of RS-485 (apt-get install socat).\n');
  const dataDir = resolve(options.dataDir ?? join('.flexgate', 'demo'));
  mkdirSync(dataDir, { recursive: true });
  const log = createLogger({ level: 'info', file: join(dataDir, 'flexgate.log') });
  const home = await SimulatedHome.start({ speed: options.speed, seed: Date.now() % 1000, variants: { battery: 'der' }, ...(useRtu ? { meterOnRtu: { baudRate: RTU_BAUD_RATE } } : {}) });
  const config = demoConfig(home, dataDir);
  const agent = new Agent({ config, log });
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
    const manifestPath = join(dataDir, 'demo.json');
    writeManifest(manifestPath, {
      localBrokerUrl: agent.localBrokerUrl!,
      gateway: { name: DEMO_GATEWAY_NAME },
      devices: home.devices.map((d) => (d.modbus ? { id: d.id, class: d.class, modbus: d.modbus } : { id: d.id, class: d.class, rtu: d.rtu! })),
    });
    out.write(`manifest: ${manifestPath}\n`);
    out.write(`local MQTT API: ${agent.localBrokerUrl} (topics ${agent.localTopicPrefix}/#), store: ${agent.storePath}, log: ${join(dataDir, 'flexgate.log')}\n`);
    out.write('Ctrl-C stops the demo.\n');
    const tty = out.isTTY === true;
    const header = [
      `flexgate demo — simulated home, ${options.speed}× speed   (Ctrl-C to stop)`,
      `local MQTT API ${agent.localBrokerUrl}   manifest ${manifestPath}`,
    ];
    agent.events.on('snapshot', (snapshot) => {
      if (tty) {
        const simulated = new Date(home.clock.now()).toISOString().slice(11, 16);
        out.write(`\x1b[H\x1b[2J${renderScreen(snapshot, header, [`simulated time of day ${simulated} UTC`])}\n`);
      } else {
        out.write(`${renderLine(snapshot)}\n`);
      }
    });
    if (options.durationMs !== undefined) setTimeout(() => stop('duration reached'), options.durationMs).unref();
    await new Promise<void>((resolve) => controller.signal.addEventListener('abort', () => resolve(), { once: true }));
  } catch (err) {
    if (!controller.signal.aborted) {
      process.stderr.write(`flexgate demo: ${err instanceof Error ? err.message : String(err)}\n`);
      await agent.stop();
      await home.stop();
      return 1;
    }
  } finally {
    process.off('SIGINT', onSigint);
    process.off('SIGTERM', onSigint);
  }
  out.write('\nstopping the demo...\n');
  await agent.stop();
  await home.stop();
  // The manifest describes a running demo: it goes with it.
  rmSync(join(dataDir, 'demo.json'), { force: true });
  log.flush();
  out.write('demo stopped.\n');
  return 0;
}
