import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RunReport } from './report.js';

/** The last report of each scenario, so `nestlab explain` can show what happened. */
export function runsDir(): string {
  return process.env['NESTLAB_RUNS'] ?? join(process.cwd(), '.nestlab', 'runs');
}

/** `dir`: a sweep worker keeps each of its stacks' runs apart (`<runs>/<stack>`). */
export function saveReport(report: RunReport, dir = runsDir()): void {
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${report.scenario}.json`), `${JSON.stringify(report, null, 2)}\n`);
  } catch {
    // Keeping the last report is a convenience; a read-only cwd must not fail the run.
  }
}

export function lastReport(id: string): RunReport | null {
  try {
    return JSON.parse(readFileSync(join(runsDir(), `${id}.json`), 'utf8')) as RunReport;
  } catch {
    return null;
  }
}
