/**
 * Runs a SimulatedHome in its own process for the benchmarks, so that the simulated devices do not
 * share the event loop (and the core) of the code being measured — as real devices would not.
 *
 *   node --import tsx bench/sim-host.ts '<SimulatedHomeOptions as JSON>'
 *
 * Prints one line `{"devices":[...]}` (SimulatedHome.devices) once every server listens, then runs
 * until its stdin closes (the parent ended or died) or it gets SIGTERM/SIGINT, and stops the home
 * (servers closed, socat killed).
 */
import { SimulatedHome, type SimulatedHomeOptions } from '../simulators/home.js';

const options = JSON.parse(process.argv[2] ?? '{}') as SimulatedHomeOptions;
const home = await SimulatedHome.start(options);
process.stdout.write(`${JSON.stringify({ devices: home.devices })}\n`);

let stopping = false;
async function stop(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await home.stop();
  process.exit(0);
}
process.stdin.on('end', () => void stop());
process.stdin.on('error', () => void stop());
process.stdin.resume();
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
