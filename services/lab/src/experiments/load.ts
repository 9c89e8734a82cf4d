import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validator } from '@nestlab/protocol';
import { YamlFileError, loadIdFile, loadIdFolders, parseYamlFile } from '../files/yaml-file.js';
import { ExperimentFile } from './file-schema.js';

/** An experiment file that cannot be used: names the file, the line and field, and why. */
export class ExperimentFileError extends YamlFileError {
  override readonly name = 'ExperimentFileError';
  readonly code = 'EXPERIMENT_INVALID';
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
  return loadIdFile(path, parseExperimentText, failExperiment);
}

/** Every experiment: shipped ones, then the user's folder; a user file may not reuse a shipped id. */
export function loadAllExperiments(
  dirs: string[] = [BUILTIN_EXPERIMENTS, userExperimentDir()],
): ExperimentFile[] {
  return loadIdFolders(dirs, loadExperimentFile, failExperiment);
}

const failExperiment = (file: string, field: string | null, reason: string) =>
  new ExperimentFileError(file, null, field, reason);
