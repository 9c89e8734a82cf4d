import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorFamily } from '@nestlab/protocol';
import { realGuestRunSchema, type RealGuestRun } from './real-guest-run.js';
import type { RunReport } from './report.js';

/** The last report of each scenario, so `nestlab explain` can show what happened. */
export function runsDir(): string {
  return process.env['NESTLAB_RUNS'] ?? join(process.cwd(), '.nestlab', 'runs');
}

function writeJson(dir: string, name: string, value: unknown): void {
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${name}.json`), `${JSON.stringify(value, null, 2)}\n`);
  } catch {
    // Keeping the last report is a convenience; a read-only cwd must not fail the run.
  }
}

/** `dir`: a sweep worker keeps each of its stacks' runs apart (`<runs>/<stack>`). */
export function saveReport(report: RunReport, dir = runsDir()): void {
  writeJson(dir, report.scenario, report);
}

export function lastReport(id: string): RunReport | null {
  try {
    return JSON.parse(readFileSync(join(runsDir(), `${id}.json`), 'utf8')) as RunReport;
  } catch {
    return null;
  }
}

/** Real-guest runs live apart: the same scenario's emulated run keeps its own last report. */
export const realGuestDir = (dir = runsDir()) => join(dir, 'real-guest');

export function saveRealGuestRun(run: RealGuestRun, dir = runsDir()): void {
  writeJson(realGuestDir(dir), realGuestRunSchema.parse(run, 'real-guest run').scenario, run);
}

/** A file in the store that is not a real-guest run (hand-edited, truncated, older format). */
export interface UnreadableRun {
  file: string;
  message: string;
}

/** A stored run that cannot be read back: not JSON, or not the shape it should have. */
export const RunStoreError = errorFamily('RunStoreError', { RUN_UNREADABLE: 'input' });
export type RunStoreError = InstanceType<typeof RunStoreError>;

function readRealGuestRun(path: string): RealGuestRun {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new RunStoreError('RUN_UNREADABLE', `not JSON: ${(err as Error).message}`);
  }
  try {
    return realGuestRunSchema.parse(value, 'real-guest run');
  } catch (err) {
    throw new RunStoreError('RUN_UNREADABLE', (err as Error).message);
  }
}

/** The last real-guest run of each scenario, newest first; the files that are not one, named. */
export function realGuestRuns(dir = runsDir()): {
  runs: RealGuestRun[];
  unreadable: UnreadableRun[];
} {
  const runs: RealGuestRun[] = [];
  const unreadable: UnreadableRun[] = [];
  let files: string[] = [];
  try {
    files = readdirSync(realGuestDir(dir)).filter((f) => f.endsWith('.json'));
  } catch {
    // No real-guest run yet.
  }
  for (const file of files.sort()) {
    try {
      runs.push(readRealGuestRun(join(realGuestDir(dir), file)));
    } catch (err) {
      unreadable.push({ file, message: (err as Error).message });
    }
  }
  runs.sort((a, b) => b.savedAt.localeCompare(a.savedAt));
  return { runs, unreadable };
}

/** One scenario's last real-guest run; null when there is none (a bad file throws RunStoreError). */
export function lastRealGuestRun(scenario: string, dir = runsDir()): RealGuestRun | null {
  const path = join(realGuestDir(dir), `${scenario}.json`);
  return existsSync(path) ? readRealGuestRun(path) : null;
}
