#!/usr/bin/env node
/**
 * The `flexgate` command (PROTOCOL.md §8). Exit codes: 0 success, 1 what was checked does not hold,
 * 2 usage or configuration error. Errors go to stderr.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError, loadConfigFile } from './config/load.js';
import { renderJsonSchema } from './config/json-schema.js';
import { UsageError } from './usage-error.js';
import { VERSION } from './version.js';


const HELP = `flexgate ${VERSION} — home energy gateway agent

Usage:
  flexgate start [--config FILE]          run the agent on a real home
  flexgate demo [--data-dir DIR] [--speed N] [--no-rtu]
                                          run the built-in simulated home (no hardware needed)
  flexgate config validate [FILE]         check a configuration file; lists every problem
  flexgate config schema                  print the JSON Schema of the configuration file
  flexgate scan --host H [--port P] [--units 1-10] [--timeout-ms MS]
  flexgate scan --serial PATH [--baud 9600] [--parity none] [--units 1-10]
                                          find SunSpec devices; prints config to paste
  flexgate status [--config FILE]         last readings and device availability from the store
  flexgate proof export --at TIME [--config FILE]
                                          one reading with its inclusion proof, signed interval proof
                                          and anchor (PROTOCOL.md §5), as JSON on stdout
  flexgate proof verify FILE [--config FILE | --rpc-url URL --chain-id N --registry ADDR]
                                          checks an export against the chain; exit 1 if anything fails
  flexgate orders [--config FILE] [--id ORDERID] [--limit N] [--json]
                                          dispatch orders received, newest first (with their state
                                          and statuses), or one order's whole audit trail
  flexgate keys init [--config FILE | --data-dir DIR]
                                          make this gateway's key (once; never replaces one)
  flexgate keys show [--config FILE | --data-dir DIR]
                                          print this gateway's address
  flexgate --version | --help

The configuration is found in this order: --config FILE, $FLEXGATE_CONFIG, ./flexgate.yaml.
Exit codes: 0 ok, 1 a check failed, 2 usage or configuration error.
`;

export function resolveConfigPath(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): string | undefined {
  if (explicit) return resolve(cwd, explicit);
  if (env['FLEXGATE_CONFIG']) return resolve(cwd, env['FLEXGATE_CONFIG']);
  const local = resolve(cwd, 'flexgate.yaml');
  return existsSync(local) ? local : undefined;
}

export const NO_CONFIG_MESSAGE = `flexgate: no configuration found (no --config, no $FLEXGATE_CONFIG, no ./flexgate.yaml).
To try flexgate without hardware, run the simulated home:  flexgate demo   (or: npm start)
To run it on a real home, write a flexgate.yaml (see examples/flexgate.yaml and docs/installer-guide.md).`;

function parse<T extends NonNullable<ParseArgsConfig['options']>>(args: string[], options: T, allowPositionals = 0) {
  try {
    const parsed = parseArgs({ args, options, allowPositionals: allowPositionals > 0, strict: true });
    if (parsed.positionals.length > allowPositionals) throw new UsageError(`unexpected argument: ${parsed.positionals[allowPositionals]}`);
    return parsed;
  } catch (e) {
    if (e instanceof UsageError) throw e;
    throw new UsageError((e as Error).message);
  }
}

function requireConfig(explicit: string | undefined): string {
  const path = resolveConfigPath(explicit);
  if (!path) throw new UsageError(NO_CONFIG_MESSAGE);
  return path;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(HELP);
      return command === undefined ? 2 : 0;
    case '--version':
    case 'version':
      process.stdout.write(`${VERSION}\n`);
      return 0;
    case 'start': {
      const { values } = parse(rest, { config: { type: 'string', short: 'c' } });
      const file = requireConfig(values.config);
      const config = loadConfigFile(file);
      const { runDaemon } = await import('./daemon.js');
      return runDaemon(config, file);
    }
    case 'demo': {
      const { values } = parse(rest, {
        'data-dir': { type: 'string' },
        speed: { type: 'string' },
        'no-rtu': { type: 'boolean' },
      });
      const speed = values.speed === undefined ? 1 : Number(values.speed);
      if (!Number.isFinite(speed) || speed < 1 || speed > 3600) throw new UsageError(`--speed: expected a number from 1 to 3600, found "${values.speed}"`);
      const { runDemo } = await import('./demo.js');
      return runDemo({ dataDir: values['data-dir'], speed, rtu: !values['no-rtu'] });
    }
    case 'config': {
      const [sub, ...args] = rest;
      if (sub === 'validate') {
        const { positionals } = parse(args, {}, 1);
        const file = requireConfig(positionals[0]);
        const config = loadConfigFile(file);
        process.stdout.write(`${file}: valid (${config.devices.length} device${config.devices.length === 1 ? '' : 's'}: ${config.devices.map((d) => `${d.id} (${d.class})`).join(', ')})\n`);
        return 0;
      }
      if (sub === 'schema') {
        parse(args, {});
        process.stdout.write(renderJsonSchema());
        return 0;
      }
      throw new UsageError(`flexgate config: expected "validate" or "schema", found ${sub === undefined ? 'nothing' : `"${sub}"`}`);
    }
    case 'scan': {
      const { values } = parse(rest, {
        host: { type: 'string' },
        port: { type: 'string' },
        serial: { type: 'string' },
        baud: { type: 'string' },
        parity: { type: 'string' },
        units: { type: 'string' },
        'timeout-ms': { type: 'string' },
      });
      const { runScan, parseScanArgs } = await import('./scan.js');
      return runScan(parseScanArgs(values));
    }
    case 'status': {
      const { values } = parse(rest, { config: { type: 'string', short: 'c' } });
      const config = loadConfigFile(requireConfig(values.config));
      const { runStatus } = await import('./status.js');
      return runStatus(config);
    }
    case 'proof': {
      const [sub, ...args] = rest;
      if (sub === 'export') {
        const { values } = parse(args, { config: { type: 'string', short: 'c' }, at: { type: 'string' } });
        if (!values.at) throw new UsageError('flexgate proof export: --at TIME is required (ISO time or unix ms)');
        const config = loadConfigFile(requireConfig(values.config));
        const { runProofExport } = await import('./proof-cli.js');
        return runProofExport(config, values.at);
      }
      if (sub === 'verify') {
        const { values, positionals } = parse(args, { config: { type: 'string', short: 'c' }, 'rpc-url': { type: 'string' }, 'chain-id': { type: 'string' }, registry: { type: 'string' } }, 1);
        if (!positionals[0]) throw new UsageError('flexgate proof verify: the export FILE is required');
        const explicit = values['rpc-url'] !== undefined || values['chain-id'] !== undefined || values.registry !== undefined;
        let chain: { rpcUrl: string; chainId: number; proofRegistry: string };
        if (explicit) {
          if (!values['rpc-url'] || !values['chain-id'] || !values.registry) throw new UsageError('give all of --rpc-url, --chain-id and --registry (or --config)');
          const chainId = Number(values['chain-id']);
          if (!Number.isSafeInteger(chainId) || chainId < 1) throw new UsageError(`--chain-id: expected a positive integer, found "${values['chain-id']}"`);
          if (!/^0x[0-9a-fA-F]{40}$/.test(values.registry)) throw new UsageError(`--registry: expected an address (0x and 40 hex digits), found "${values.registry}"`);
          chain = { rpcUrl: values['rpc-url'], chainId, proofRegistry: values.registry };
        } else {
          const config = loadConfigFile(requireConfig(values.config));
          if (!config.chain) throw new UsageError('the configuration has no chain: section; give --rpc-url, --chain-id and --registry');
          chain = { rpcUrl: config.chain.rpcUrl, chainId: config.chain.chainId, proofRegistry: config.chain.contracts.proofs };
        }
        const { runProofVerify } = await import('./proof-cli.js');
        return runProofVerify(positionals[0], chain);
      }
      throw new UsageError(`flexgate proof: expected "export" or "verify", found ${sub === undefined ? 'nothing' : `"${sub}"`}`);
    }
    case 'orders': {
      const { values } = parse(rest, { config: { type: 'string', short: 'c' }, id: { type: 'string' }, limit: { type: 'string' }, json: { type: 'boolean' } });
      const limit = values.limit === undefined ? 20 : Number(values.limit);
      if (!Number.isSafeInteger(limit) || limit < 1) throw new UsageError(`--limit: expected a positive integer, found "${values.limit}"`);
      if (values.id !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(values.id)) throw new UsageError(`--id: expected an orderId (0x and 64 hex digits), found "${values.id}"`);
      const config = loadConfigFile(requireConfig(values.config));
      const { runOrders } = await import('./dispatch/orders-cli.js');
      return runOrders(config, { ...(values.id !== undefined ? { id: values.id } : {}), limit, json: values.json ?? false });
    }
    case 'keys': {
      const [sub, ...args] = rest;
      if (sub !== 'init' && sub !== 'show') throw new UsageError(`flexgate keys: expected "init" or "show", found ${sub === undefined ? 'nothing' : `"${sub}"`}`);
      const { values } = parse(args, { config: { type: 'string', short: 'c' }, 'data-dir': { type: 'string' } });
      if (values.config && values['data-dir']) throw new UsageError('give --config or --data-dir, not both');
      const dataDir = values['data-dir'] ? resolve(values['data-dir']) : loadConfigFile(requireConfig(values.config)).gateway.dataDir;
      const { initGatewayKey, loadGatewayKey, keyPath } = await import('./keys.js');
      if (sub === 'init') {
        (await import('node:fs')).mkdirSync(dataDir, { recursive: true });
        const key = initGatewayKey(dataDir);
        process.stdout.write(`made a new gateway key in ${keyPath(dataDir)} (mode 0600)\naddress ${key.address}\n`);
      } else {
        process.stdout.write(`${loadGatewayKey(dataDir).address}\n`);
      }
      return 0;
    }
    default:
      throw new UsageError(`unknown command "${command}" (run flexgate --help)`);
  }
}

async function run(): Promise<void> {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`flexgate: invalid configuration\n${e.message}\n`);
      process.exitCode = 2;
    } else if (e instanceof Error && (e.name === 'KeyError' || e.name === 'ProofExportError')) {
      process.stderr.write(`flexgate: ${e.message}\n`);
      process.exitCode = 1;
    } else if (e instanceof UsageError) {
      process.stderr.write(e.message.startsWith('flexgate') ? `${e.message}\n` : `flexgate: ${e.message}\n`);
      process.exitCode = 2;
    } else {
      process.stderr.write(`flexgate: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exitCode = 1;
    }
  }
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === (await import('node:url')).pathToFileURL((await import('node:fs')).realpathSync(process.argv[1])).href;
if (invokedDirectly) {
  await run();
  // Long-running commands have closed everything they opened by now; exit even if a library left a
  // handle behind, so that Ctrl-C always ends the process within a few seconds.
  process.stdout.write('', () => process.exit());
}
