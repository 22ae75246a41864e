/**
 * An MQTT broker for the benchmarks in its own process (aedes, as agent/embedded-broker.ts runs it),
 * so that neither the measured program nor the benchmark's own timing loop carries its load.
 *
 *   node --import tsx bench/broker-host.ts
 *
 * Prints one line `{"url","host","port"}` once it listens, then runs until its stdin closes or it
 * gets SIGTERM/SIGINT.
 */
import { startEmbeddedBroker } from '../agent/embedded-broker.js';

const broker = await startEmbeddedBroker({ host: '127.0.0.1', port: 0 });
process.stdout.write(`${JSON.stringify({ url: broker.url, host: broker.host, port: broker.port })}\n`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await broker.close();
  process.exit(0);
}
process.stdin.on('end', () => void stop());
process.stdin.on('error', () => void stop());
process.stdin.resume();
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
