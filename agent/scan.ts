/**
 * `flexgate scan`: finds SunSpec devices on a Modbus TCP host or an RS-485 line and prints what it
 * found as a `devices:` list an installer can paste into flexgate.yaml. Progress and units where
 * nothing was found go to stderr, the YAML to stdout.
 */
import { stringify } from 'yaml';
import { systemClock } from '../drivers/clock.js';
import { createModbusBus } from '../drivers/modbus/index.js';
import type { BusConnection } from '../drivers/modbus/types.js';
import { scanUnits, suggestConfig, type ScanResult } from '../drivers/sunspec/index.js';
import { UsageError } from './usage-error.js';
import { silentLog } from '../drivers/log.js';

export interface ScanArgs {
  connection: BusConnection;
  units: number[];
  timeoutMs: number;
}

/** "1-10", "1,2,5", "1-3,7" → unit ids, each 0-255 (1-247 on RS-485). */
export function parseUnits(text: string, rtu: boolean): number[] {
  const units = new Set<number>();
  for (const part of text.split(',')) {
    const m = /^\s*(\d{1,3})\s*(?:-\s*(\d{1,3})\s*)?$/.exec(part);
    if (!m) throw new UsageError(`--units: expected a list like 1-10 or 1,2,5, found "${text}"`);
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    const [min, max] = rtu ? [1, 247] : [0, 255];
    if (from > to || from < min || to > max) throw new UsageError(`--units: expected unit ids from ${min} to ${max}, found "${part.trim()}"`);
    for (let u = from; u <= to; u++) units.add(u);
  }
  return [...units].sort((a, b) => a - b);
}

function positiveInt(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`--${name}: expected an integer from ${min} to ${max}, found "${text}"`);
  return n;
}

export function parseScanArgs(values: Record<string, string | boolean | undefined>): ScanArgs {
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const host = str('host');
  const serial = str('serial');
  if ((host ? 1 : 0) + (serial ? 1 : 0) !== 1) throw new UsageError('flexgate scan: give exactly one of --host H or --serial PATH');
  const timeoutMs = positiveInt('timeout-ms', str('timeout-ms'), 1000, 50, 30_000);
  if (host) {
    if (str('baud') || str('parity')) throw new UsageError('--baud and --parity are for --serial');
    return { connection: { tcp: { host, port: positiveInt('port', str('port'), 502, 1, 65535) } }, units: parseUnits(str('units') ?? '1-10', false), timeoutMs };
  }
  if (str('port')) throw new UsageError('--port is for --host');
  const baudRate = positiveInt('baud', str('baud'), 9600, 300, 921_600);
  const parity = str('parity') ?? 'none';
  if (parity !== 'none' && parity !== 'even' && parity !== 'odd') throw new UsageError(`--parity: expected none, even or odd, found "${parity}"`);
  return { connection: { rtu: { path: serial!, baudRate, parity, dataBits: 8, stopBits: 1 } }, units: parseUnits(str('units') ?? '1-10', true), timeoutMs };
}

export function renderScan(results: readonly ScanResult[], connection: BusConnection): string {
  const devices = results.flatMap((r) => suggestConfig(r, connection));
  if (devices.length === 0) return '';
  const lines = ['# found by flexgate scan: paste under devices: in flexgate.yaml and rename the ids as you like'];
  for (const r of results.filter((x) => x.found)) lines.push(`#   unit ${r.unitId}: ${r.description ?? ''}`);
  lines.push(stringify({ devices }, { aliasDuplicateObjects: false }).trimEnd());
  return `${lines.join('\n')}\n`;
}

export async function runScan(args: ScanArgs): Promise<number> {
  // What went wrong per unit is in the results; the console shows those, not log lines.
  const log = silentLog;
  const bus = createModbusBus({
    connection: args.connection,
    clock: systemClock,
    log,
    timeoutMs: args.timeoutMs,
    // Every unit gets its own answer: never skip one because its neighbour was silent.
    unitBackoff: { failuresBeforeBackoff: 1_000_000 },
    reconnect: { initialMs: 200, maxMs: 1000 },
  });
  await bus.start();
  try {
    process.stderr.write(`scanning ${bus.label}, units ${args.units.length === 1 ? args.units[0] : `${args.units[0]}-${args.units.at(-1)}`} ...\n`);
    const results = await scanUnits(
      args.units.map((u) => bus.unit(u)),
      log,
    );
    for (const r of results) {
      process.stderr.write(r.found ? `  unit ${r.unitId}: ${r.description} -> ${r.suggestedClasses.join(', ') || 'no class flexgate drives'}\n` : `  unit ${r.unitId}: nothing (${r.reason})\n`);
    }
    const yaml = renderScan(results, args.connection);
    if (!yaml) {
      process.stderr.write('no SunSpec device found.\n');
      return 1;
    }
    process.stdout.write(yaml);
    return 0;
  } finally {
    await bus.stop();
  }
}
