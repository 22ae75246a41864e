/**
 * Reading flexgate.yaml: YAML parsing with line numbers, schema validation, and problems an installer
 * can act on: each names the file, line and column, the path in the config, what was expected and
 * what was found. Unknown keys are errors, with a suggestion when one is close.
 */
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { closest, describeIssue, formatPath, knownKeysAt, position, readDocument } from '../../drivers/yaml-problems.js';
import { loadDeviceProfiles } from './profiles.js';
import { configSchema, type Config } from './schema.js';

export interface ConfigProblem {
  /** Path in the config, e.g. "devices[2].connection.tcp.port"; "" for the whole file. */
  path: string;
  message: string;
  line?: number;
  column?: number;
}

export class ConfigError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly ConfigProblem[],
  ) {
    super(`${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n${formatProblems(file, problems)}`);
    this.name = 'ConfigError';
  }
}

export function formatProblems(file: string, problems: readonly ConfigProblem[]): string {
  return problems
    .map((p) => {
      const where = p.line !== undefined ? `${file}:${p.line}:${p.column ?? 1}` : file;
      return `${where}: ${p.path === '' ? '(top level)' : p.path}: ${p.message}`;
    })
    .join('\n');
}

export type PathSegment = string | number;

export { formatPath };

/** Reads and validates a config file. Relative `gateway.dataDir` is taken relative to the file. */
export function loadConfigFile(file: string): Config {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'file not found' : code === 'EACCES' ? 'permission denied' : String((e as Error).message);
    throw new ConfigError(file, [{ path: '', message: `cannot read config: ${why}` }]);
  }
  const config = parseConfigText(text, file);
  const base = dirname(resolve(file));
  if (!isAbsolute(config.gateway.dataDir)) {
    config.gateway.dataDir = resolve(base, config.gateway.dataDir);
  }
  // A profile given as a path (not a shipped name) is taken relative to the config file.
  for (const device of config.devices) {
    if (device.profile !== undefined && /[/\\.]/.test(device.profile) && !isAbsolute(device.profile)) device.profile = resolve(base, device.profile);
  }
  const { problems } = loadDeviceProfiles(config);
  if (problems.length > 0) throw new ConfigError(file, problems);
  return config;
}

/** Parses YAML text and validates it; throws ConfigError listing every problem found. */
export function parseConfigText(text: string, file = 'flexgate.yaml'): Config {
  const read = readDocument(text);
  if ('problems' in read) throw new ConfigError(file, read.problems.map((p) => ({ path: '', ...p })));
  const { doc, lineCounter, data } = read;
  if (data === null || data === undefined) {
    throw new ConfigError(file, [{ path: '', message: 'the file is empty: expected a mapping with gateway and devices' }]);
  }
  const result = configSchema.safeParse(data, { reportInput: true });
  if (result.success) return result.data;
  const problems: ConfigProblem[] = [];
  for (const issue of result.error.issues) {
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const path = [...issue.path, key];
        const known = knownKeysAt(configSchema, issue.path);
        const suggestion = closest(key, known);
        problems.push({
          path: formatPath(path),
          message: `unknown key "${key}"${suggestion ? ` (did you mean "${suggestion}"?)` : known.length ? ` (expected one of: ${known.join(', ')})` : ''}`,
          ...position(doc, lineCounter, path, true),
        });
      }
      continue;
    }
    problems.push({ path: formatPath(issue.path), message: describeIssue(issue), ...position(doc, lineCounter, issue.path, false) });
  }
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  throw new ConfigError(file, problems);
}

