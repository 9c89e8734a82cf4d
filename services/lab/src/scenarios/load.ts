import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { validator } from '@nestlab/protocol';
import { YamlFileError, loadIdFile, loadIdFolders, parseYamlFile } from '../files/yaml-file.js';
import { ScenarioFile } from './file-schema.js';

/** A scenario file that cannot be used: names the file, the line and field, and why. */
export class ScenarioFileError extends YamlFileError {
  override readonly name = 'ScenarioFileError';
  readonly code = 'SCENARIO_INVALID';
}

const check = validator(ScenarioFile);

/** Shipped scenarios live beside the package; users add theirs in .nestlab/scenarios or NESTLAB_SCENARIOS. */
export const BUILTIN_DIR = fileURLToPath(new URL('../../scenarios/', import.meta.url));
export function userScenarioDir(): string {
  return process.env['NESTLAB_SCENARIOS'] ?? join(process.cwd(), '.nestlab', 'scenarios');
}

export function parseScenarioText(text: string, file: string): ScenarioFile {
  const f = parseYamlFile(text, file, check, {
    fail: (line, field, reason) => new ScenarioFileError(file, line, field, reason),
    notMapping: 'must be a YAML mapping of scenario fields (id, title, expected, …)',
  });
  if (f.mmioVersion !== undefined && f.transport !== 'mmio')
    throw failScenario(
      file,
      'mmioVersion',
      'applies only to a virtio-mmio device (transport: mmio)',
    );
  return f;
}

export function loadScenarioFile(path: string): ScenarioFile {
  return loadIdFile(path, parseScenarioText, failScenario);
}

/** Every scenario: shipped ones, then the user's folder; a user file may not reuse a shipped id. */
export function loadAllScenarios(
  dirs: string[] = [BUILTIN_DIR, userScenarioDir()],
): ScenarioFile[] {
  return loadIdFolders(dirs, loadScenarioFile, failScenario);
}

const failScenario = (file: string, field: string | null, reason: string) =>
  new ScenarioFileError(file, null, field, reason);
