/**
 * Try flexgate without hardware: `tsx simulators/cli.ts home [--speed N] [--rtu] [--baud B] [--seed S]`
 * starts a simulated home and prints where each device listens (PV on 15020, battery and meter on
 * 15021 as units 1 and 2, as in examples/demo-home.yaml). Ctrl-C stops it.
 */
import { parseArgs } from 'node:util';
import { SimulatedHome } from './home.js';

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      speed: { type: 'string', default: '1' },
      rtu: { type: 'boolean', default: false },
      baud: { type: 'string', default: '9600' },
      seed: { type: 'string', default: '1' },
      host: { type: 'string', default: '127.0.0.1' },
      'pv-port': { type: 'string', default: '15020' },
      'gateway-port': { type: 'string', default: '15021' },
    },
  });
  if (positionals[0] !== 'home') {
    process.stderr.write('usage: tsx simulators/cli.ts home [--speed N] [--rtu] [--baud 9600] [--seed 1] [--host 127.0.0.1] [--pv-port 15020] [--gateway-port 15021]\n');
    return 2;
  }
  const speed = Number(values.speed);
  const home = await SimulatedHome.start({
    speed,
    seed: Number(values.seed),
    host: values.host,
    ports: { pv: Number(values['pv-port']), gateway: Number(values['gateway-port']) },
    ...(values.rtu ? { meterOnRtu: { baudRate: Number(values.baud) } } : {}),
  });
  const out = process.stdout;
  out.write(`simulated home running at ${speed}× real time, simulated clock ${new Date(home.clock.now()).toISOString()}\n`);
  for (const d of home.devices) {
    const where = d.modbus
      ? `modbus tcp ${d.modbus.host}:${d.modbus.port} unit ${d.modbus.unitId}`
      : `modbus rtu ${d.rtu!.path} ${d.rtu!.baudRate} baud unit ${d.rtu!.unitId}`;
    out.write(`  ${d.id.padEnd(8)} ${where}  (SunSpec at 40000)\n`);
  }
  const status = setInterval(() => {
    out.write(
      `${new Date(home.clock.now()).toISOString()} pv ${home.pv.acPowerW} W, battery ${home.battery.powerW} W ` +
        `soc ${home.battery.socPct.toFixed(1)} %, meter ${home.meter.powerW} W\n`,
    );
  }, 10_000);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  clearInterval(status);
  await home.stop();
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
    process.exit(1);
  },
);
