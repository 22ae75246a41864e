/**
 * Reading YAML documents (`readDocument`) and their problems against a zod schema, as an installer
 * can act on them: the path, what was expected and what was found, and the line and column in the
 * file. Used for the config (agent/config/load.ts) and device profiles (drivers/profiles/load.ts).
 */
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Node } from 'yaml';
import type { z } from 'zod';

export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

function describeFound(input: unknown): string {
  if (input === undefined) return 'nothing';
  if (input === null) return 'null';
  if (typeof input === 'string') return JSON.stringify(input.length > 60 ? `${input.slice(0, 57)}...` : input);
  if (typeof input === 'number' || typeof input === 'boolean') return String(input);
  if (Array.isArray(input)) return `a list of ${input.length}`;
  return 'a mapping';
}

export function describeIssue(issue: z.core.$ZodIssue): string {
  const input = (issue as { input?: unknown }).input;
  const found = `found ${describeFound(input)}`;
  switch (issue.code) {
    case 'invalid_type':
      if (input === undefined) return `required, but missing (expected ${issue.expected})`;
      return `expected ${issue.expected === 'number' && Number.isFinite(input) ? 'an integer' : issue.expected}, ${found}`;
    case 'too_small':
      if (issue.origin === 'array') return `${issue.message}, found ${describeFound(input)}`;
      if (issue.origin === 'string') return `expected at least ${issue.minimum} characters, ${found}`;
      return `expected ${issue.inclusive ? '≥' : '>'} ${issue.minimum}, ${found}`;
    case 'too_big':
      if (issue.origin === 'string') return `expected at most ${issue.maximum} characters, ${found}`;
      return `expected ${issue.inclusive ? '≤' : '<'} ${issue.maximum}, ${found}`;
    case 'invalid_value':
      return `expected ${issue.values.length === 1 ? JSON.stringify(issue.values[0]) : `one of ${issue.values.map((v) => JSON.stringify(v)).join(', ')}`}, ${found}`;
    case 'invalid_union':
      if (input === undefined) return 'required, but missing';
      return `${issue.message}, ${found}`;
    case 'invalid_format':
      return `${issue.message.startsWith('Invalid') ? `expected a valid ${issue.format}` : issue.message}, ${found}`;
    case 'custom':
      return input === undefined || typeof input === 'object' ? issue.message : `${issue.message}, ${found}`;
    default:
      return `${issue.message}, ${found}`;
  }
}

/** Aliases a document may expand (`*name`): enough for any real file, not for a "billion laughs". */
const MAX_ALIAS_COUNT = 100;

/** A problem that stops a document before its data can be checked, with where it is. */
export interface DocumentProblem {
  message: string;
  line?: number;
  column?: number;
}

/**
 * Parses YAML text (duplicate keys are errors) into its document, line counter (for `position`)
 * and plain data, or returns the problems that stop it: its YAML syntax errors; else an alias
 * whose anchor is not set before it (`*name` with no `&name` above), or aliases expanding past
 * MAX_ALIAS_COUNT — the yaml library reports these two not in `doc.errors` but by throwing when
 * the data is built.
 */
export function readDocument(text: string): { doc: ReturnType<typeof parseDocument>; lineCounter: LineCounter; data: unknown } | { problems: DocumentProblem[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length > 0) {
    return {
      problems: doc.errors.map((e) => {
        const pos = e.linePos?.[0];
        return { message: `YAML syntax: ${e.message.split('\n')[0]}`, line: pos?.line, column: pos?.col };
      }),
    };
  }
  try {
    return { doc, lineCounter, data: doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) };
  } catch (e) {
    let at: { line?: number; column?: number } = {};
    let unresolved: string | undefined;
    visit(doc, {
      Alias(_, node) {
        if (node.resolve(doc) !== undefined) return undefined;
        unresolved = node.source;
        const offset = node.range?.[0];
        if (offset !== undefined) {
          const { line, col } = lineCounter.linePos(offset);
          at = { line, column: col };
        }
        return visit.BREAK;
      },
    });
    if (unresolved !== undefined) return { problems: [{ message: `YAML alias *${unresolved}: no anchor &${unresolved} is set before it`, ...at }] };
    const detail = e instanceof Error ? e.message : String(e);
    return { problems: [{ message: `YAML aliases: ${detail} (at most ${MAX_ALIAS_COUNT} alias expansions)` }] };
  }
}

/** Line and column of the node at `path` (or of its key, for unknown keys). */
export function position(
  doc: ReturnType<typeof parseDocument>,
  lineCounter: LineCounter,
  path: readonly PropertyKey[],
  wantKey: boolean,
): { line?: number; column?: number } {
  let node: unknown = doc.contents;
  let last: Node | undefined = isNodeLike(node) ? node : undefined;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && p.key.value === seg);
      if (!pair) break;
      if (wantKey && i === path.length - 1 && isNodeLike(pair.key)) {
        last = pair.key;
        break;
      }
      node = pair.value;
    } else if (isSeq(node) && typeof seg === 'number') {
      node = node.items[seg];
    } else break;
    if (isNodeLike(node)) last = node;
  }
  const offset = last?.range?.[0];
  if (offset === undefined) return {};
  const { line, col } = lineCounter.linePos(offset);
  return { line, column: col };
}

function isNodeLike(n: unknown): n is Node {
  return typeof n === 'object' && n !== null && 'range' in n;
}

/** The keys the schema allows at a path (walking the zod definition), for "did you mean". */
export function knownKeysAt(root: z.core.$ZodType, path: readonly PropertyKey[]): string[] {
  let schema: z.core.$ZodType | undefined = root;
  const unwrap = (s: z.core.$ZodType | undefined): z.core.$ZodType | undefined => {
    let cur = s;
    for (let guard = 0; cur && guard < 10; guard++) {
      const def = cur._zod.def as { type: string; innerType?: z.core.$ZodType; in?: z.core.$ZodType };
      if ((def.type === 'optional' || def.type === 'default' || def.type === 'nullable' || def.type === 'prefault') && def.innerType) cur = def.innerType;
      else if (def.type === 'pipe' && def.in) cur = def.in;
      else break;
    }
    return cur;
  };
  schema = unwrap(schema);
  for (const seg of path) {
    if (!schema) return [];
    const def = schema._zod.def as { type: string; shape?: Record<string, z.core.$ZodType>; element?: z.core.$ZodType; valueType?: z.core.$ZodType };
    if (def.type === 'object' && typeof seg === 'string' && def.shape) schema = unwrap(def.shape[seg]);
    else if (def.type === 'array' && typeof seg === 'number' && def.element) schema = unwrap(def.element);
    else if (def.type === 'record' && def.valueType) schema = unwrap(def.valueType);
    else return [];
  }
  const def = schema?._zod.def as { type: string; shape?: Record<string, unknown> } | undefined;
  return def?.type === 'object' && def.shape ? Object.keys(def.shape) : [];
}

export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = c;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(word.length / 4)) ? best : undefined;
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0]!;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = row[j]!;
      row[j] = Math.min(row[j]! + 1, row[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return row[b.length]!;
}
