// Runs one sweep item on one of the worker's stacks, the way `nestlab run`
// and `nestlab experiment` would for that seed, and keeps the report under
// the stack's own runs directory (`<runs>/<stack>/`).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SweepItem } from '@nestlab/protocol';
import { loadAllExperiments } from '../experiments/load.js';
import { runExperiment, runExperimentOnFleet } from '../experiments/runner.js';
import { runScenario } from '../run/orchestrator.js';
import { runsDir, saveReport } from '../run/store.js';
import { catalogue } from '../scenarios/builtin.js';
import type { HostedStack } from './stack-host.js';

export interface ItemOutcome {
  pass: boolean;
  verdict: string;
}

export class ItemError extends Error {
  override readonly name = 'ItemError';
  constructor(
    readonly code: 'UNKNOWN_SCENARIO' | 'UNKNOWN_EXPERIMENT',
    message: string,
  ) {
    super(message);
  }
}

/** Runs of one experiment item, when each is inconclusive, before its last one is reported. */
const INCONCLUSIVE_ATTEMPTS = 3;

export async function runItem(
  item: SweepItem,
  host: HostedStack,
  progress: (line: string) => void,
): Promise<ItemOutcome> {
  const dir = join(runsDir(), host.stack);
  const ios = item.ios === undefined ? {} : { ios: item.ios };
  if (item.kind === 'scenario') {
    const scenario = catalogue().find(item.id);
    if (!scenario) throw new ItemError('UNKNOWN_SCENARIO', `no runnable scenario ${item.id} here`);
    const report = await runScenario(host.bus, scenario, { seed: item.seed, ...ios, progress });
    saveReport(report, dir);
    return {
      pass: report.pass,
      verdict: report.pass ? report.outcome : `${report.outcome} (expected ${report.expected})`,
    };
  }
  const e = loadAllExperiments().find((x) => x.id === item.id);
  if (!e) throw new ItemError('UNKNOWN_EXPERIMENT', `no experiment ${item.id} here`);
  const opts = { seed: item.seed, ...ios, progress };
  // Service env of the file's own cannot go into a running fleet: such a run gets a private one.
  const once = () =>
    e.env && Object.keys(e.env).length > 0
      ? runExperiment(e, opts)
      : runExperimentOnFleet(e, opts, host.fleet, host.bus, host.dataDir);
  // A run whose workload outran a fault step tested nothing of it: run it again, a few times.
  let r = await once();
  let retried = 0;
  for (; r.inconclusive && retried < INCONCLUSIVE_ATTEMPTS - 1; retried++) {
    progress(`${e.id} seed ${item.seed}: inconclusive (${r.inconclusive}); running it again`);
    r = await once();
  }
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `experiment-${e.id}.json`), `${JSON.stringify(r, null, 2)}\n`);
  } catch {
    // As saveReport: keeping the last result is a convenience.
  }
  const miss = r.mismatches.map(
    (m) => `${m.key} ${m.got ?? 'null'} (expected ${JSON.stringify(m.expected)})`,
  );
  const c = r.checkers;
  const checked = `lost ${c.lostAckedWrites}, silent ${c.silentCorruptions}, unended ${c.unendedIos}, recovery ${c.recoveryMs ?? 'n/a'} ms`;
  const failed = [...(r.inconclusive ? [`inconclusive: ${r.inconclusive}`] : []), ...miss];
  const again = retried > 0 ? ` (after ${retried} inconclusive run${retried > 1 ? 's' : ''})` : '';
  // The result's verdict is at most 500 characters (protocol SweepResult).
  const said = (r.pass ? checked : failed.join(', ') || 'fail').slice(0, 500 - again.length);
  return { pass: r.pass, verdict: `${said}${again}` };
}
