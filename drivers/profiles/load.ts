/**
 * Loading device profiles: a shipped profile by name (drivers/profiles/library/<name>.yaml) or a file
 * of the installer's. Every problem is reported with the file, the line and column, and the path in
 * the profile, and a profile that does not hold together (unknown names, overlapping writes, missing
 * class fields) is rejected at load, never at the first write.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closest, describeIssue, formatPath, knownKeysAt, position, readDocument } from '../yaml-problems.js';
import { checkProfile, profileSchema, type Profile } from './schema.js';

export interface ProfileProblem {
  path: string;
  message: string;
  line?: number;
  column?: number;
}

export class ProfileError extends Error {
  constructor(
    readonly file: string,
    readonly problems: readonly ProfileProblem[],
  ) {
    super(
      `profile ${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}\n` +
        problems.map((p) => `${p.line !== undefined ? `${file}:${p.line}:${p.column ?? 1}` : file}: ${p.path === '' ? '(top level)' : p.path}: ${p.message}`).join('\n'),
    );
    this.name = 'ProfileError';
  }
}

/** The folder of shipped profiles: next to this file under tsx, in the package's source tree when compiled. */
export function libraryDir(): string {
  const candidates = [new URL('./library/', import.meta.url), new URL('../../../drivers/profiles/library/', import.meta.url)];
  for (const c of candidates) {
    const dir = fileURLToPath(c);
    if (existsSync(dir)) return dir;
  }
  return fileURLToPath(candidates[0]!);
}

/** Names of the shipped profiles (files starting with _ are blueprints, not profiles). */
export function listProfiles(): string[] {
  return readdirSync(libraryDir())
    .filter((f) => f.endsWith('.yaml') && !f.startsWith('_'))
    .map((f) => basename(f, '.yaml'))
    .sort();
}

/** A shipped profile name, or the path of a profile file. */
export function resolveProfilePath(nameOrPath: string): string {
  if (/^[a-z0-9][a-z0-9-]*$/.test(nameOrPath)) return join(libraryDir(), `${nameOrPath}.yaml`);
  return nameOrPath;
}

export function loadProfile(nameOrPath: string): Profile {
  const file = resolveProfilePath(nameOrPath);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const shipped = file.startsWith(libraryDir());
    const why =
      code === 'ENOENT'
        ? shipped
          ? `no shipped profile "${nameOrPath}" (shipped: ${listProfiles().join(', ')}); a file path must contain / or end in .yaml`
          : 'file not found'
        : String((e as Error).message);
    throw new ProfileError(file, [{ path: '', message: why }]);
  }
  return parseProfileText(text, file);
}

export function parseProfileText(text: string, file = 'profile.yaml'): Profile {
  const read = readDocument(text);
  if ('problems' in read) throw new ProfileError(file, read.problems.map((p) => ({ path: '', ...p })));
  const { doc, lineCounter, data } = read;
  if (data === null || typeof data !== 'object' || Array.isArray(data)) {
    throw new ProfileError(file, [{ path: '', message: 'expected a mapping with profile, class, transport, readings, controls and revert' }]);
  }
  const result = profileSchema.safeParse(data, { reportInput: true });
  const problems: ProfileProblem[] = [];
  if (!result.success) {
    for (const issue of result.error.issues) {
      if (issue.code === 'unrecognized_keys') {
        for (const key of issue.keys) {
          const path = [...issue.path, key];
          const suggestion = closest(key, knownKeysAt(profileSchema, issue.path));
          problems.push({ path: formatPath(path), message: `unknown key "${key}"${suggestion ? ` (did you mean "${suggestion}"?)` : ''}`, ...position(doc, lineCounter, path, true) });
        }
        continue;
      }
      problems.push({ path: formatPath(issue.path), message: describeIssue(issue), ...position(doc, lineCounter, issue.path, false) });
    }
  } else {
    for (const issue of checkProfile(result.data)) {
      problems.push({ path: formatPath(issue.path), message: issue.message, ...position(doc, lineCounter, issue.path, false) });
    }
  }
  if (problems.length > 0 || !result.success) {
    problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
    throw new ProfileError(file, problems);
  }
  return result.data;
}
