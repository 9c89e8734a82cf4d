import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineCounter, parseDocument, isNode } from 'yaml';
import { validator } from '@nestlab/protocol';
import { ScenarioFile } from './file-schema.js';

/** A scenario file that cannot be used: names the file, the line and field, and why. */
export class ScenarioFileError extends Error {
  override readonly name = 'ScenarioFileError';
  readonly code = 'SCENARIO_INVALID';
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly field: string | null,
    readonly reason: string,
  ) {
    super(`${file}${line ? `:${line}` : ''}: ${field ? `${field}: ` : ''}${reason}`);
  }
}

const check = validator(ScenarioFile);

/** Shipped scenarios live beside the package; users add theirs in .nestlab/scenarios or NESTLAB_SCENARIOS. */
export const BUILTIN_DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));
export function userScenarioDir(): string {
  return process.env['NESTLAB_SCENARIOS'] ?? join(process.cwd(), '.nestlab', 'scenarios');
}

export function parseScenarioText(text: string, file: string): ScenarioFile {
  return parseYamlFile(text, file, check, {
    fail: (line, field, reason) => new ScenarioFileError(file, line, field, reason),
    notMapping: 'must be a YAML mapping of scenario fields (id, title, expected, …)',
  });
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

export function loadScenarioFile(path: string): ScenarioFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ScenarioFileError(path, null, null, `cannot read: ${(err as Error).message}`);
  }
  const s = parseScenarioText(text, path);
  const stem = basename(path).replace(/\.ya?ml$/, '');
  if (stem !== s.id)
    throw new ScenarioFileError(
      path,
      null,
      'id',
      `is ${s.id} but the file is named ${basename(path)}`,
    );
  return s;
}

/** Every scenario: shipped ones, then the user's folder; a user file may not reuse a shipped id. */
export function loadAllScenarios(
  dirs: string[] = [BUILTIN_DIR, userScenarioDir()],
): ScenarioFile[] {
  const byId = new Map<string, { s: ScenarioFile; file: string }>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir)
        .filter((n) => /\.ya?ml$/.test(n))
        .sort();
    } catch {
      continue; // a user folder that does not exist holds no scenarios
    }
    for (const name of names) {
      const file = join(dir, name);
      const s = loadScenarioFile(file);
      const seen = byId.get(s.id);
      if (seen)
        throw new ScenarioFileError(file, null, 'id', `${s.id} is already defined by ${seen.file}`);
      byId.set(s.id, { s, file });
    }
  }
  return [...byId.values()].map((v) => v.s);
}
