// What scenario and experiment files have in common: YAML validated against a
// TypeBox schema with errors that name the line and field, one file per id
// (named after it), and folders of them where a user file may not reuse an id.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { LineCounter, isNode, isScalar, parseDocument, visit } from 'yaml';

/** A file that cannot be used: names the file, the line and field, and why. */
export abstract class YamlFileError extends Error {
  abstract readonly code: string;
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly field: string | null,
    readonly reason: string,
  ) {
    super(`${file}${line ? `:${line}` : ''}: ${field ? `${oneLine(field)}: ` : ''}${reason}`);
  }
}

/** A field name as it can be shown on one line of an error: quoted when it holds control characters, cut when long. */
function oneLine(field: string): string {
  // eslint-disable-next-line no-control-regex
  const shown = /[\u0000-\u001f\u007f]/.test(field) ? JSON.stringify(field) : field;
  return shown.length > 80 ? `${shown.slice(0, 77)}...` : shown;
}

/** How a YAML file kind reports its errors (scenario files, experiment files). */
export interface YamlFileKind {
  fail(line: number | null, field: string | null, reason: string): Error;
  /** The reason given when the document is not a mapping. */
  notMapping: string;
}

/**
 * Parses YAML text and validates it against a TypeBox check; errors name the
 * line of the deepest node that exists on the failing path, and the field.
 */
export function parseYamlFile<T>(
  text: string,
  file: string,
  schema: { check(v: unknown): v is T; errorsOf(v: unknown): Iterable<ValueErrorLike> },
  kind: YamlFileKind,
): T {
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError) {
    const at = yamlError.linePos?.[0]?.line ?? null;
    throw kind.fail(at, null, `not valid YAML: ${yamlError.message.split('\n')[0]}`);
  }
  // A key must be a name: `? {…}` or `? [..]` would make a mapping key of a collection.
  let complexKey: number | null | undefined;
  visit(doc, {
    Pair(_, pair) {
      if (pair.key === null || isScalar(pair.key)) return undefined;
      const start = isNode(pair.key) ? pair.key.range?.[0] : undefined;
      complexKey = start === undefined ? null : lines.linePos(start).line;
      return visit.BREAK;
    },
  });
  if (complexKey !== undefined)
    throw kind.fail(complexKey, null, 'a mapping key must be a name, not a list or a mapping');
  const value = toPlainValue(doc, kind);
  if (schema.check(value)) return value;
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw kind.fail(1, null, kind.notMapping);
  const first = [...schema.errorsOf(value)][0];
  const path = (first?.path ?? '').split('/').filter(Boolean);
  // Point at the deepest node that exists: for a missing field, its parent.
  let line: number | null = null;
  for (let depth = path.length; depth >= 0 && line === null; depth--) {
    const node: unknown = doc.getIn(
      path.slice(0, depth).map((p) => (/^\d+$/.test(p) ? Number(p) : p)),
      true,
    );
    if (isNode(node) && node.range) line = lines.linePos(node.range[0]).line;
  }
  const field = path.length ? path.join('.') : null;
  throw kind.fail(
    line,
    field,
    describe(first?.message ?? 'does not match the schema', first?.schema),
  );
}

interface ValueErrorLike {
  readonly path: string;
  readonly message: string;
  readonly schema?: unknown;
}

/** The document as plain data; aliases that point nowhere, loop or explode are refused. */
function toPlainValue(doc: ReturnType<typeof parseDocument>, kind: YamlFileKind): unknown {
  let value: unknown;
  try {
    // A small alias budget stops "billion laughs" documents from growing without bound.
    value = doc.toJS({ maxAliasCount: 50 });
  } catch (err) {
    throw kind.fail(null, null, `not valid YAML: ${(err as Error).message}`);
  }
  try {
    JSON.stringify(value);
  } catch {
    throw kind.fail(null, null, 'not valid YAML: an alias refers to itself');
  }
  return value;
}

function describe(message: string, schema: unknown): string {
  const s = schema as { anyOf?: { const?: unknown }[] } | undefined;
  const choices = s?.anyOf?.map((a) => a.const).filter((c) => c !== undefined);
  if (choices && choices.length > 0 && choices.length <= 40)
    return `must be one of ${choices.join(', ')}`;
  return message.replace(/^Unexpected property$/, 'unknown field');
}

/** Reads one file whose name must be its id. */
export function loadIdFile<T extends { id: string }>(
  path: string,
  parse: (text: string, file: string) => T,
  fail: (file: string, field: string | null, reason: string) => Error,
): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw fail(path, null, `cannot read: ${(err as Error).message}`);
  }
  const v = parse(text, path);
  const stem = basename(path).replace(/\.ya?ml$/, '');
  if (stem !== v.id) throw fail(path, 'id', `is ${v.id} but the file is named ${basename(path)}`);
  return v;
}

/** Every file of the folders, in order; a folder that does not exist holds none. */
export function loadIdFolders<T extends { id: string }>(
  dirs: readonly string[],
  loadOne: (path: string) => T,
  fail: (file: string, field: string | null, reason: string) => Error,
): T[] {
  const byId = new Map<string, { v: T; file: string }>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir)
        .filter((n) => /\.ya?ml$/.test(n))
        .sort();
    } catch {
      continue;
    }
    for (const name of names) {
      const file = join(dir, name);
      const v = loadOne(file);
      const seen = byId.get(v.id);
      if (seen) throw fail(file, 'id', `${v.id} is already defined by ${seen.file}`);
      byId.set(v.id, { v, file });
    }
  }
  return [...byId.values()].map((e) => e.v);
}
