import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validator } from '@nestlab/protocol';
import { parseYamlFile } from '../scenarios/load.js';
import { ExperimentFile } from './file-schema.js';

/** An experiment file that cannot be used: names the file, the line and field, and why. */
export class ExperimentFileError extends Error {
  override readonly name = 'ExperimentFileError';
  readonly code = 'EXPERIMENT_INVALID';
  constructor(
    readonly file: string,
    readonly line: number | null,
    readonly field: string | null,
    readonly reason: string,
  ) {
    super(`${file}${line ? `:${line}` : ''}: ${field ? `${field}: ` : ''}${reason}`);
  }
}

const check = validator(ExperimentFile);

/** Shipped experiments live beside the package; users add theirs in .nestlab/experiments or NESTLAB_EXPERIMENTS. */
export const BUILTIN_EXPERIMENTS = fileURLToPath(new URL('../../experiments/', import.meta.url));
export function userExperimentDir(): string {
  return process.env['NESTLAB_EXPERIMENTS'] ?? join(process.cwd(), '.nestlab', 'experiments');
}

export function parseExperimentText(text: string, file: string): ExperimentFile {
  const e = parseYamlFile(text, file, check, {
    fail: (line, field, reason) => new ExperimentFileError(file, line, field, reason),
    notMapping:
      'must be a YAML mapping of experiment fields (id, title, scenario, faults, expect, …)',
  });
  // Steps run in the order of their logical points; a file that says otherwise is a mistake.
  e.faults.forEach((s, i) => {
    const prev = e.faults[i - 1];
    if (prev && s.at.completed < prev.at.completed)
      throw new ExperimentFileError(
        file,
        null,
        `faults.${i}.at.completed`,
        `is ${s.at.completed}, before the previous step's ${prev.at.completed}: list steps in order`,
      );
  });
  return e;
}

export function loadExperimentFile(path: string): ExperimentFile {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ExperimentFileError(path, null, null, `cannot read: ${(err as Error).message}`);
  }
  const e = parseExperimentText(text, path);
  const stem = basename(path).replace(/\.ya?ml$/, '');
  if (stem !== e.id)
    throw new ExperimentFileError(
      path,
      null,
      'id',
      `is ${e.id} but the file is named ${basename(path)}`,
    );
  return e;
}

/** Every experiment: shipped ones, then the user's folder; a user file may not reuse a shipped id. */
export function loadAllExperiments(
  dirs: string[] = [BUILTIN_EXPERIMENTS, userExperimentDir()],
): ExperimentFile[] {
  const byId = new Map<string, { e: ExperimentFile; file: string }>();
  for (const dir of dirs) {
    let names: string[];
    try {
      names = readdirSync(dir)
        .filter((n) => /\.ya?ml$/.test(n))
        .sort();
    } catch {
      continue; // a user folder that does not exist holds no experiments
    }
    for (const name of names) {
      const file = join(dir, name);
      const e = loadExperimentFile(file);
      const seen = byId.get(e.id);
      if (seen)
        throw new ExperimentFileError(
          file,
          null,
          'id',
          `${e.id} is already defined by ${seen.file}`,
        );
      byId.set(e.id, { e, file });
    }
  }
  return [...byId.values()].map((v) => v.e);
}
