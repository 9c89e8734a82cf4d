import { loadAllScenarios } from './load.js';
import { notRunnable, toScenario } from './from-file.js';
import type { Scenario } from './scenario.js';
import type { ScenarioFile } from './file-schema.js';

export interface Catalogue {
  readonly files: readonly ScenarioFile[];
  find(id: string): Scenario | undefined;
  /** Null when runnable, else the reason. */
  whyNot(id: string): string | null;
}

/** Shipped scenario files plus the user's folder, validated. Throws ScenarioFileError. */
export function catalogue(dirs?: string[]): Catalogue {
  const files = loadAllScenarios(dirs);
  return {
    files,
    find: (id) => {
      const f = files.find((s) => s.id === id);
      return f ? toScenario(f) : undefined;
    },
    whyNot: (id) => {
      const f = files.find((s) => s.id === id);
      return f ? notRunnable(f) : `unknown scenario ${id}`;
    },
  };
}

/** A shipped scenario by id (tests and the orchestrator's defaults). */
export function findScenario(id: string): Scenario | undefined {
  return catalogue().find(id);
}
