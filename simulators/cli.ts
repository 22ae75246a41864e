/**
 * Try flexgate without hardware: `tsx simulators/cli.ts home [options]` starts a simulated home and
 * prints where each device listens: PV on 15020, battery, site meter and the heat pump's SDM120 on
 * gateway 15021 (units 1, 2, 3; as in examples/demo-home.yaml), the EV charger on 15022 (Phoenix
 * Contact, unit 255), the heat pump on 15023 (Lambda, or Stiebel Eltron with --heat-pump stiebel,
 * unit 1), and the water heater's Shelly plug on the MQTT broker given with --mqtt. Ctrl-C stops it.
 */
import { parseArgs } from 'node:util';
import { SimulatedHome, type HomeDevice } from './home.js';

const USAGE =
  'usage: tsx simulators/cli.ts home [--speed N] [--seed 1] [--host 127.0.0.1]\n' +
  '         [--rtu] [--baud 9600]                  site meter on an RS-485 line (socat pty) instead of gateway unit 2\n' +
  '         [--pv-port 15020] [--gateway-port 15021] [--ev-port 15022] [--hp-port 15023]\n' +
  '         [--heat-pump lambda|stiebel] [--abl] [--abl-baud 38400]   ABL wallbox on a Modbus ASCII line (socat) instead of Phoenix\n' +
  '         [--mqtt mqtt://127.0.0.1:1883]           connect the water heater\'s Shelly plug to this broker\n' +
  '         [--sunspec-only]                         only PV, battery and site meter\n';

function where(d: HomeDevice): string {
  if (d.modbus) return `modbus tcp ${d.modbus.host}:${d.modbus.port} unit ${d.modbus.unitId}`;
  if (d.rtu) return `modbus ${d.rtu.framing ?? 'rtu'} ${d.rtu.path} ${d.rtu.baudRate} baud${d.rtu.parity === 'even' ? ' 8E1' : ''} unit ${d.rtu.unitId}`;
  if (d.mqtt) return `mqtt ${d.mqtt.url ?? '(not connected: pass --mqtt URL)'} ${d.mqtt.stateTopic}, commands on ${d.mqtt.commandTopic}`;
  return '?';
}

function what(d: HomeDevice): string {
  if (!d.profile) return 'SunSpec at 40000';
  return `${d.model ?? d.profile}, profile ${d.profile}`;
}

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
      'ev-port': { type: 'string', default: '15022' },
      'hp-port': { type: 'string', default: '15023' },
      'heat-pump': { type: 'string', default: 'lambda' },
      abl: { type: 'boolean', default: false },
      'abl-baud': { type: 'string', default: '38400' },
      mqtt: { type: 'string' },
      'sunspec-only': { type: 'boolean', default: false },
    },
  });
  const heatPump = values['heat-pump'];
  if (positionals[0] !== 'home' || (heatPump !== 'lambda' && heatPump !== 'stiebel')) {
    process.stderr.write(USAGE);
    return 2;
  }
  const speed = Number(values.speed);
  const flexible = !values['sunspec-only'];
  const home = await SimulatedHome.start({
    speed,
    seed: Number(values.seed),
    host: values.host,
    ports: { pv: Number(values['pv-port']), gateway: Number(values['gateway-port']), ev: Number(values['ev-port']), heatPump: Number(values['hp-port']) },
    ...(values.rtu ? { meterOnRtu: { baudRate: Number(values.baud) } } : {}),
    flexibleLoads: flexible,
    ...(flexible ? { heatPump } : {}),
    ...(flexible && values.abl ? { evOnAbl: { baudRate: Number(values['abl-baud']) } } : {}),
    ...(flexible && values.mqtt ? { mqtt: { url: values.mqtt } } : {}),
  });
  const out = process.stdout;
  out.write(`simulated home running at ${speed}× real time, simulated clock ${new Date(home.clock.now()).toISOString()}\n`);
  for (const d of home.devices) out.write(`  ${d.id.padEnd(12)} ${d.class.padEnd(10)} ${where(d)}  (${what(d)})\n`);
  const status = setInterval(() => {
    let line =
      `${new Date(home.clock.now()).toISOString()} pv ${home.pv.acPowerW} W, battery ${home.battery.powerW} W ` +
      `soc ${home.battery.socPct.toFixed(1)} %, grid ${home.meter.powerW} W`;
    if (home.ev) line += `, ev ${home.ev.powerW} W (${home.ev.pilot}${home.ev.vehicle ? ` soc ${home.ev.vehicle.socPct.toFixed(0)} %` : ''})`;
    if (home.heatPump) line += `, heat pump ${home.heatPump.electricalPowerW} W (room ${home.heatPump.indoorC.toFixed(1)} °C, outdoor ${home.heatPump.outdoorC.toFixed(1)} °C)`;
    if (home.waterHeater) line += `, water heater ${home.waterHeater.powerW} W (${home.waterHeater.tankC.toFixed(1)} °C)`;
    out.write(`${line}\n`);
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
