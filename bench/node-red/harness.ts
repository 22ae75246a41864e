/**
 * A real Node-RED for the benchmarks' baselines: the node-red 4.1 runtime from the project's
 * node_modules (red.js, as `node-red` starts it) in a child process, with node-red-contrib-modbus
 * (5.23.3, a devDependency) in its palette, running a flow made from a committed template.
 *
 * - userDir: a fresh temporary directory (removed on stop) holding settings.js, flows.json and
 *   node_modules/node-red-contrib-modbus (a symlink to the project's copy: Node-RED scans
 *   userDir/node_modules for node packages; the package's own dependencies resolve from its real path).
 * - settings: no editor, no admin API and no HTTP server (httpAdminRoot and httpNodeRoot false), no
 *   telemetry or update check, English messages, and one log handler that writes each runtime log
 *   entry of level info or above as one JSON line to stdout — nothing else is printed. The harness
 *   keeps the last entries (for errors) and waits on them: started = the runtime logged
 *   "Started flows".
 * - stop: SIGINT, which red.js answers by stopping the flows (nodes close their connections) and
 *   exiting; SIGKILL after 8 s.
 * - measurement: CPU time (utime + stime) and RSS of the child's whole process tree, from /proc.
 *
 *   const red = await startNodeRed({ flow: fillTemplate('bench/node-red/polling-flow.json', values) });
 *   … red.cpuMs(), red.rssKb() …
 *   await red.stop();
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { createInterface } from 'node:readline';
import { REPO_ROOT, treeCpuMs, treeRssKb } from '../support.js';

/** Node-RED's numeric log levels (@node-red/util log.js). */
export const NODE_RED_LEVEL = { fatal: 10, error: 20, warn: 30, info: 40 } as const;

export interface NodeRedLogEntry {
  level: number;
  msg: string;
  /** The node type and name, for entries a node logged (node.warn, node.error). */
  type?: string;
  name?: string;
  id?: string;
}

export interface NodeRedOptions {
  /** The flow: an array of node objects, as flows.json holds it. */
  flow: readonly unknown[];
  /** Extra settings.js keys (JSON values), e.g. `{ functionGlobalContext: … }`. */
  settings?: Record<string, unknown>;
  /** Flags for the child's node (default none: how `node-red` runs). */
  nodeFlags?: readonly string[];
  /** How long to wait for "Started flows". Default 60 s. */
  startTimeoutMs?: number;
}

export interface NodeRedRuntime {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly userDir: string;
  /** The last 300 log entries of level info or above, oldest first. */
  readonly logs: readonly NodeRedLogEntry[];
  /** Resolves with the first entry (already logged or to come) whose message matches. */
  waitForLog(pattern: RegExp, timeoutMs?: number): Promise<NodeRedLogEntry>;
  /** CPU time (user + system) of the runtime's process tree so far, ms. */
  cpuMs(): number;
  /** Resident memory of the runtime's process tree now, kB. */
  rssKb(): number;
  /** Stops the runtime (SIGINT, SIGKILL after 8 s) and removes its userDir; resolves with its exit code. */
  stop(): Promise<number | null>;
}

const MARKER = 'flexgate-bench-node-red';
const KEEP_LOGS = 300;

/**
 * Reads a flow template (a Node-RED flow export, JSON) and fills in its `{{name}}` placeholders.
 * Every placeholder must have a value and every value must be used, so a template and the
 * benchmark cannot drift apart silently. Values are inserted as JSON string content.
 */
export function fillTemplate(path: string, values: Readonly<Record<string, string | number>>): unknown[] {
  const text = readFileSync(isAbsolute(path) ? path : join(REPO_ROOT, path), 'utf8');
  const used = new Set<string>();
  const missing = new Set<string>();
  const filled = text.replace(/\{\{([A-Za-z0-9_.-]+)\}\}/g, (_m, name: string) => {
    const v = values[name];
    if (v === undefined) {
      missing.add(name);
      return '';
    }
    used.add(name);
    return JSON.stringify(String(v)).slice(1, -1);
  });
  if (missing.size) throw new Error(`${path}: no value for ${[...missing].map((m) => `{{${m}}}`).join(', ')}`);
  const unused = Object.keys(values).filter((k) => !used.has(k));
  if (unused.length) throw new Error(`${path}: the template has no ${unused.map((m) => `{{${m}}}`).join(', ')}`);
  const flow = JSON.parse(filled) as unknown;
  if (!Array.isArray(flow)) throw new Error(`${path}: expected a flow export (a JSON array of nodes)`);
  return flow;
}

function settingsJs(userDir: string, extra: Record<string, unknown>): string {
  const plain = {
    uiHost: '127.0.0.1',
    uiPort: 0,
    httpAdminRoot: false,
    httpNodeRoot: false,
    disableEditor: true,
    flowFile: 'flows.json',
    credentialSecret: false,
    userDir,
    lang: 'en-US',
    diagnostics: { enabled: false, ui: false },
    runtimeState: { enabled: false, ui: false },
    telemetry: { enabled: false },
    externalModules: { autoInstall: false, palette: { allowInstall: false } },
    functionExternalModules: false,
    editorTheme: { projects: { enabled: false }, tours: false },
    ...extra,
  };
  return `// Written by bench/node-red/harness.ts.
const settings = ${JSON.stringify(plain, null, 2)};
settings.logging = {
  bench: {
    level: 'info',
    metrics: false,
    audit: false,
    handler() {
      return (m) => {
        const entry = { ${JSON.stringify(MARKER)}: 1, level: m.level, msg: typeof m.msg === 'string' ? m.msg : (m.msg && m.msg.stack) || JSON.stringify(m.msg) };
        if (m.type) entry.type = m.type;
        if (m.name) entry.name = m.name;
        if (m.id) entry.id = m.id;
        process.stdout.write(JSON.stringify(entry) + '\\n');
      };
    },
  },
};
module.exports = settings;
`;
}

/** Starts Node-RED with `flow`; resolves once the runtime logged "Started flows". */
export async function startNodeRed(options: NodeRedOptions): Promise<NodeRedRuntime> {
  const redJs = join(REPO_ROOT, 'node_modules', 'node-red', 'red.js');
  const modbusPackage = join(REPO_ROOT, 'node_modules', 'node-red-contrib-modbus');
  if (!existsSync(redJs)) throw new Error('node_modules/node-red is missing (a devDependency): run npm ci');
  if (!existsSync(modbusPackage)) throw new Error('node_modules/node-red-contrib-modbus is missing (a devDependency): run npm ci');
  const userDir = mkdtempSync(join(tmpdir(), 'flexgate-node-red-'));
  mkdirSync(join(userDir, 'node_modules'));
  symlinkSync(modbusPackage, join(userDir, 'node_modules', 'node-red-contrib-modbus'), 'dir');
  writeFileSync(join(userDir, 'flows.json'), JSON.stringify(options.flow, null, 2));
  writeFileSync(join(userDir, 'settings.js'), settingsJs(userDir, options.settings ?? {}));

  const child = spawn(process.execPath, [...(options.nodeFlags ?? []), redJs, '--userDir', userDir, '--settings', join(userDir, 'settings.js')], {
    cwd: userDir,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NODE_RED_ENABLE_PROJECTS: 'false' },
  });
  const logs: NodeRedLogEntry[] = [];
  const waiters = new Set<{ pattern: RegExp; resolve: (e: NodeRedLogEntry) => void }>();
  let stderrTail = '';
  createInterface({ input: child.stdout! }).on('line', (line) => {
    let entry: NodeRedLogEntry;
    try {
      const parsed = JSON.parse(line) as NodeRedLogEntry & Record<string, unknown>;
      if (parsed[MARKER] !== 1) throw new Error('not ours');
      delete parsed[MARKER];
      entry = parsed;
    } catch {
      entry = { level: NODE_RED_LEVEL.info, msg: line }; // a node's own console output
    }
    logs.push(entry);
    if (logs.length > KEEP_LOGS) logs.shift();
    for (const w of waiters) {
      if (w.pattern.test(entry.msg)) {
        waiters.delete(w);
        w.resolve(entry);
      }
    }
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    stderrTail = (stderrTail + chunk.toString()).slice(-2000);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let exitCode: number | null | undefined;
  void exited.then((c) => (exitCode = c));

  const describe = (): string => {
    const tail = logs
      .slice(-15)
      .map((e) => `  [${e.level}] ${e.type ? `${e.type}${e.name ? ` "${e.name}"` : ''}: ` : ''}${e.msg}`)
      .join('\n');
    return `${tail}${stderrTail ? `\n  stderr: ${stderrTail.trim()}` : ''}`;
  };

  const waitForLog = (pattern: RegExp, timeoutMs = 30_000): Promise<NodeRedLogEntry> => {
    const seen = logs.find((e) => pattern.test(e.msg));
    if (seen) return Promise.resolve(seen);
    return new Promise<NodeRedLogEntry>((resolve, reject) => {
      const waiter = {
        pattern,
        resolve: (e: NodeRedLogEntry) => {
          clearTimeout(timer);
          resolve(e);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(new Error(`Node-RED did not log ${pattern} within ${timeoutMs / 1000} s:\n${describe()}`));
      }, timeoutMs);
      waiters.add(waiter);
      void exited.then((code) => {
        if (!waiters.has(waiter)) return;
        waiters.delete(waiter);
        clearTimeout(timer);
        reject(new Error(`Node-RED exited (${code}) before it logged ${pattern}:\n${describe()}`));
      });
    });
  };

  let stopped: Promise<number | null> | undefined;
  const stop = (): Promise<number | null> => {
    stopped ??= (async () => {
      if (exitCode === undefined) {
        child.kill('SIGINT');
        const timer = setTimeout(() => child.kill('SIGKILL'), 8000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(userDir, { recursive: true, force: true });
      return exitCode ?? null;
    })();
    return stopped;
  };

  try {
    await waitForLog(/^Started flows$/, options.startTimeoutMs ?? 60_000);
  } catch (e) {
    await stop();
    throw e;
  }
  const pid = child.pid!;
  return {
    child,
    pid,
    userDir,
    logs,
    waitForLog,
    cpuMs: () => treeCpuMs(pid),
    rssKb: () => treeRssKb(pid),
    stop,
  };
}

/** Entries of level warn or worse a node (not the runtime) logged: a flow that misbehaves. */
export function nodeProblems(red: NodeRedRuntime): NodeRedLogEntry[] {
  return red.logs.filter((e) => e.level <= NODE_RED_LEVEL.warn && e.type !== undefined);
}
