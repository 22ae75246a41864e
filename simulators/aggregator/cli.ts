/**
 * The simulated aggregator from a shell:
 *
 *   tsx simulators/aggregator/cli.ts send --manifest .flexgate/demo/demo.json --signal import-limit --value 3000 --duration 15m
 *        [--start +1m | ISO time | unix ms] [--ramp 30s] [--randomize 10s] [--order 0x… [--modification N]] [--price N]
 *        [--valid-for 30s] [--wait 10s | --no-wait] [--json]
 *   tsx simulators/aggregator/cli.ts cancel --order 0x… [--modification N] [--wait 10s | --no-wait]
 *   tsx simulators/aggregator/cli.ts watch [--count N]
 *
 * A negative value is written with `=`: `--value=-2500`.
 *
 * The broker URL, chain id, gateway address and aggregator key come from the demo manifest
 * (PROTOCOL.md §9; default .flexgate/demo/demo.json) or from --broker, --chain-id, --gateway, --key.
 * The last sequence sent is kept in --state FILE (default: aggregator-state.json beside the manifest),
 * so running the command twice never sends a REPLAY.
 *
 * `send` and `cancel` wait for the gateway's first answer and print it: exit 0 for RECEIVED (CANCELLED
 * for a cancel), 1 for a rejection or no answer, 2 for a usage error. `watch` prints every status
 * (signature checked against the gateway of its topic) until Ctrl-C or --count statuses.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import type { Hex } from '../../ledger-client/eip712.js';
import { AggregatorSimulator, REASON_NAMES, SIGNALS, STATUS_NAMES, StatusTimeoutError, type ReceivedStatus, type SignalName } from './aggregator.js';

class UsageError extends Error {
  override readonly name = 'UsageError';
}

const USAGE = `usage:
  tsx simulators/aggregator/cli.ts send --signal import-limit|export-limit|setpoint|delta|N --value W --duration 15m
        [--start +1m|ISO|ms] [--ramp 30s] [--randomize 10s] [--order 0x… [--modification N]] [--price N]
        [--valid-for 30s] [--wait 10s | --no-wait] [--json]
  tsx simulators/aggregator/cli.ts cancel --order 0x… [--modification N] [--wait 10s | --no-wait]
  tsx simulators/aggregator/cli.ts watch [--count N]
common: --manifest FILE (default .flexgate/demo/demo.json) or --broker URL --chain-id N --gateway 0x… --key 0x…; --state FILE
a negative value is written --value=-2500
`;

/** `15m`, `30s`, `1h`, `500ms`, or a number of ms. */
export function parseDurationMs(text: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|min|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`${what}: expected a duration like 15m, 30s, 1h or 500ms, found "${text}"`);
  const n = Number(m[1]);
  const unit = m[2] ?? 'ms';
  const ms = n * (unit === 'ms' ? 1 : unit === 's' ? 1000 : unit === 'h' ? 3_600_000 : 60_000);
  if (!Number.isSafeInteger(Math.round(ms))) throw new UsageError(`${what}: ${text} is too long`);
  return Math.round(ms);
}

/** `+1m` (from now), an ISO time, unix ms, or `now`/`0` (= 0: the gateway's receipt). */
export function parseStartMs(text: string, nowMs: number): number {
  const t = text.trim();
  if (t === 'now' || t === '0') return 0;
  if (t.startsWith('+')) return nowMs + parseDurationMs(t.slice(1), '--start');
  if (/^\d+$/.test(t)) return Number(t);
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) throw new UsageError(`--start: expected +1m, an ISO time or unix ms, found "${text}"`);
  return ms;
}

interface Target {
  brokerUrl: string;
  chainId: number;
  gateway: string;
  privateKey: Hex;
  stateFile: string;
}

function target(values: Record<string, string | boolean | undefined>): Target {
  const flag = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const explicitManifest = flag('manifest');
  const manifestPath = resolve(explicitManifest ?? join('.flexgate', 'demo', 'demo.json'));
  let manifest: { brokerUrl?: string; chainId?: number; aggregator?: { privateKey?: string }; gateway?: { address?: string } } = {};
  if (existsSync(manifestPath)) {
    try {
      manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as typeof manifest;
    } catch (e) {
      throw new UsageError(`${manifestPath}: not a demo manifest (${(e as Error).message})`);
    }
  } else if (explicitManifest !== undefined) {
    throw new UsageError(`--manifest: no file ${manifestPath}`);
  }
  const brokerUrl = flag('broker') ?? manifest.brokerUrl;
  const chainIdText = flag('chain-id') ?? (manifest.chainId === undefined ? undefined : String(manifest.chainId));
  const gateway = flag('gateway') ?? manifest.gateway?.address;
  const privateKey = flag('key') ?? manifest.aggregator?.privateKey;
  const missing = [!brokerUrl && '--broker (manifest: brokerUrl)', !chainIdText && '--chain-id (manifest: chainId)', !gateway && '--gateway (manifest: gateway.address)', !privateKey && '--key (manifest: aggregator.privateKey)'].filter(Boolean);
  if (missing.length > 0) throw new UsageError(`missing ${missing.join(', ')}: give --manifest FILE of a running demo, or the flags`);
  const chainId = Number(chainIdText);
  if (!Number.isSafeInteger(chainId) || chainId < 1) throw new UsageError(`--chain-id: expected a positive integer, found "${chainIdText}"`);
  if (!/^0x[0-9a-fA-F]{40}$/.test(gateway!)) throw new UsageError(`--gateway: expected an address (0x and 40 hex digits), found "${gateway}"`);
  if (!/^0x[0-9a-fA-F]{64}$/.test(privateKey!)) throw new UsageError('--key: expected a private key (0x and 64 hex digits)');
  const stateFile = resolve(flag('state') ?? (existsSync(manifestPath) ? join(dirname(manifestPath), 'aggregator-state.json') : join('.flexgate', 'aggregator-state.json')));
  return { brokerUrl: brokerUrl!, chainId, gateway: gateway!.toLowerCase(), privateKey: privateKey!.toLowerCase() as Hex, stateFile };
}

function describeStatus(s: ReceivedStatus): string {
  if (!s.valid || !s.message) return `${s.gateway}  INVALID STATUS MESSAGE: ${s.error}`;
  const m = s.message;
  const reason = m.reason === 0 ? '' : ` (${REASON_NAMES[m.reason] ?? `reason ${m.reason}`})`;
  return `${new Date(m.at).toISOString()}  ${s.gateway}  order ${m.orderId} mod ${m.modification}  ${STATUS_NAMES[m.status] ?? m.status}${reason}  deliveredWh ${m.deliveredWh}  [signed by the gateway]`;
}

const common = {
  manifest: { type: 'string' },
  broker: { type: 'string' },
  'chain-id': { type: 'string' },
  gateway: { type: 'string' },
  key: { type: 'string' },
  state: { type: 'string' },
} as const;

export async function main(argv: string[], out: (s: string) => void = (s) => process.stdout.write(s)): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'send' || command === 'cancel') {
    const { values } = parseArgs({
      args: rest,
      strict: true,
      options: {
        ...common,
        signal: { type: 'string' },
        value: { type: 'string' },
        duration: { type: 'string' },
        start: { type: 'string' },
        ramp: { type: 'string' },
        randomize: { type: 'string' },
        order: { type: 'string' },
        modification: { type: 'string' },
        price: { type: 'string' },
        'valid-for': { type: 'string' },
        wait: { type: 'string' },
        'no-wait': { type: 'boolean' },
        json: { type: 'boolean' },
      },
    });
    const t = target(values);
    const int = (text: string | undefined, what: string): number | undefined => {
      if (text === undefined) return undefined;
      const n = Number(text);
      if (!Number.isSafeInteger(n)) throw new UsageError(`${what}: expected an integer, found "${text}"`);
      return n;
    };
    if (values.order !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(values.order)) throw new UsageError(`--order: expected an orderId (0x and 64 hex digits), found "${values.order}"`);
    const waitMs = values['no-wait'] ? 0 : parseDurationMs(values.wait ?? '10s', '--wait');
    const modification = int(values.modification, '--modification');
    let send: Parameters<AggregatorSimulator['send']>[0];
    if (command === 'cancel') {
      if (values.order === undefined) throw new UsageError('cancel: --order 0x… is required');
      send = { signal: 'cancel', valueW: 0, durationMs: 0, orderId: values.order as Hex, ...(modification !== undefined ? { modification } : {}) };
    } else {
      if (values.signal === undefined || values.value === undefined || values.duration === undefined) throw new UsageError('send: --signal, --value and --duration are required');
      const signal = values.signal in SIGNALS ? SIGNALS[values.signal as SignalName] : int(values.signal, '--signal');
      const valueW = int(values.value, '--value')!;
      send = {
        signal: signal!,
        valueW,
        durationMs: parseDurationMs(values.duration, '--duration'),
        ...(values.start !== undefined ? { startMs: parseStartMs(values.start, Date.now()) } : {}),
        ...(values.ramp !== undefined ? { rampMs: parseDurationMs(values.ramp, '--ramp') } : {}),
        ...(values.randomize !== undefined ? { randomizeMs: parseDurationMs(values.randomize, '--randomize') } : {}),
        ...(values.order !== undefined ? { orderId: values.order as Hex } : {}),
        ...(modification !== undefined ? { modification } : {}),
        ...(values.price !== undefined ? { priceMicros: int(values.price, '--price')! } : {}),
        ...(values['valid-for'] !== undefined ? { validForMs: parseDurationMs(values['valid-for'], '--valid-for') } : {}),
      };
    }
    const sim = await AggregatorSimulator.start({ brokerUrl: t.brokerUrl, chainId: t.chainId, privateKey: t.privateKey, gateway: t.gateway, stateFile: t.stateFile });
    try {
      const envelope = await sim.send(send);
      const m = envelope.message;
      if (!values.json) {
        out(`order ${m.orderId} mod ${m.modification} sent to ${m.gateway} (sequence ${m.sequence}): ${m.signal === 0 ? 'CANCEL' : `signal ${m.signal}, ${m.valueW} W, ${m.start === 0 ? 'from now' : `from ${new Date(m.start).toISOString()}`}, ${m.durationMs} ms`}\n`);
      }
      if (waitMs === 0) {
        if (values.json) out(`${JSON.stringify({ envelope })}\n`);
        return 0;
      }
      try {
        const first = await sim.waitForAnyStatus(m.orderId, waitMs, m.modification);
        // a CANCEL's answer is the CANCELLED of its modification; a rejection carries the message's own
        if (values.json) out(`${JSON.stringify({ envelope, status: first.message })}\n`);
        else out(`${describeStatus(first)}\n`);
        const code = first.message!.status;
        return code === 1 || (m.signal === 0 && code === 6) ? 0 : 1;
      } catch (e) {
        if (e instanceof StatusTimeoutError) {
          process.stderr.write(`aggregator: ${e.message}\n`);
          return 1;
        }
        throw e;
      }
    } finally {
      await sim.stop();
    }
  }
  if (command === 'watch') {
    const { values } = parseArgs({ args: rest, strict: true, options: { ...common, count: { type: 'string' } } });
    const t = target(values);
    const count = values.count === undefined ? Infinity : Number(values.count);
    const sim = await AggregatorSimulator.start({ brokerUrl: t.brokerUrl, chainId: t.chainId, privateKey: t.privateKey, gateway: t.gateway, stateFile: t.stateFile });
    out(`watching flex/v1/gw/+/ack on ${t.brokerUrl} as aggregator ${sim.address}\n`);
    let seen = 0;
    let invalid = 0;
    await new Promise<void>((done) => {
      sim.onStatus((s) => {
        out(`${describeStatus(s)}\n`);
        if (!s.valid) invalid++;
        if (++seen >= count) done();
      });
      process.once('SIGINT', () => done());
      process.once('SIGTERM', () => done());
    });
    await sim.stop();
    return invalid > 0 ? 1 : 0;
  }
  process.stderr.write(USAGE);
  return 2;
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === (await import('node:url')).pathToFileURL((await import('node:fs')).realpathSync(process.argv[1])).href;
if (invokedDirectly) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      const usage = e instanceof UsageError || (e instanceof TypeError && 'code' in e && String((e as { code: unknown }).code).startsWith('ERR_PARSE_ARGS'));
      process.stderr.write(`aggregator: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exit(usage ? 2 : 1);
    },
  );
}
