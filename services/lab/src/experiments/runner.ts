// Runs one experiment on a private fleet: configures the scenario's stack,
// runs the workload with history while the fault steps are applied at their
// logical points (fault-schedule.ts, main-job.ts), then a verification job
// that reads every block and the disk image file back (verification.ts), and
// judges the whole history (judging.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  FaultControl,
  historyLength,
  MAX_HISTORY,
  maxHistoryIos,
  type Workload,
} from '@nestlab/protocol';
import { startFleet, type Fleet } from '../fleet/fleet.js';
import { labSeat } from '../fleet/lab-seat.js';
import { catalogue } from '../scenarios/builtin.js';
import { describeFound, type Evidence, type Verdicts } from './checkers.js';
import type { Mismatch } from './expect.js';
import type { ExperimentFile } from './file-schema.js';
import { FaultSchedule } from './fault-schedule.js';
import type { HistoryOp, TimedFault } from './history.js';
import { judge } from './judging.js';
import { runMainJob } from './main-job.js';
import {
  faultLogs,
  type DmaJudgement,
  type InjectedTransport,
  type IoSummary,
  type Observed,
} from './observe.js';
import { configureStack, ExperimentError } from './stack.js';
import type { InjectedStep, StepContext } from './steps.js';
import { runVerification } from './verification.js';

export interface ExperimentOptions {
  seed?: number;
  ios?: number;
  /** Extra service env on top of the file's (tests: broken variants). */
  env?: Record<string, string>;
  progress?: (line: string) => void;
  /** Keep the fleet's logs and data after the run (else kept only when it did not pass). */
  keep?: boolean;
  /** Put every I/O record into the result (for reading a verdict's evidence in full). */
  history?: boolean;
  /** A NATS user per service, as `nestlab up` runs them (default true). */
  auth?: boolean;
}

export interface ExperimentResult {
  id: string;
  seed: number;
  pass: boolean;
  /**
   * Why the run tested less than the file declares (a step the workload
   * outran), else null. Such a run does not pass; running it again may.
   */
  inconclusive: string | null;
  checkers: Verdicts;
  /** The oracle's judgement of every device access (null when the log could not be read). */
  dma: DmaJudgement | null;
  faults: { injected: (InjectedStep | InjectedTransport)[]; observed: Observed[] };
  ios: IoSummary;
  expect: ExperimentFile['expect'];
  mismatches: Mismatch[];
  evidence: Evidence;
  /** Discrete faults on the run's time line (ms since the fleet was configured). */
  timeline: TimedFault[];
  elapsedMs: number;
  /** Where the fleet's logs and data were kept, or null when removed. */
  kept: string | null;
  /** Every I/O record and the image as read back, when asked for. */
  history?: { ops: HistoryOp[]; image: string[] };
}

const STACK = 'xp';

export function workloadOf(e: ExperimentFile, opts: ExperimentOptions, seed: number): Workload {
  const w = e.workload ?? {};
  const bs = w.bs ?? 4096;
  return {
    rw: w.rw ?? 'randrw',
    bs,
    iodepth: w.iodepth ?? 4,
    ios: opts.ios ?? w.ios ?? 100,
    seed,
    verify: true,
    deadlineMs: w.deadlineMs ?? 2000,
    spanBytes: (w.blocks ?? 64) * bs,
    fsyncEvery: w.fsyncEvery ?? 4,
    history: true,
  };
}

export async function runExperiment(
  e: ExperimentFile,
  opts: ExperimentOptions = {},
): Promise<ExperimentResult> {
  const progress = opts.progress ?? (() => undefined);
  runnableScenario(e);
  const planned = workloadOf(e, opts, 0);
  if (historyLength(planned) > MAX_HISTORY)
    throw new ExperimentError(
      'HISTORY_TOO_LONG',
      `${e.id}: ${planned.ios} I/Os with a FLUSH every ${planned.fsyncEvery} writes make ${historyLength(planned)} records; ` +
        `an experiment judges at most ${MAX_HISTORY}: run at most ${maxHistoryIos(planned.fsyncEvery)} I/Os`,
    );
  const started = Date.now();
  const scratch = mkdtempSync(join(tmpdir(), `nestlab-xp-${e.id}-`));
  const dataDir = join(scratch, 'data');
  progress(`${e.id}: starting a private fleet (logs in ${join(scratch, 'logs')})`);
  const fleet = await startFleet({
    stack: STACK,
    natsPort: 0,
    adminBasePort: 0,
    auth: opts.auth ?? true,
    // A loaded machine (CI, parallel tests) can take a while to start four Node processes.
    readyTimeoutMs: 60_000,
    logDir: join(scratch, 'logs'),
    env: { NESTLAB_DATA_DIR: dataDir, LOG_LEVEL: 'warn', ...e.env, ...opts.env },
  });
  const seat = await labSeat(fleet.natsUrl, STACK, fleet.labAuth).catch(async (err: unknown) => {
    await fleet.stop();
    throw err;
  });
  let result: ExperimentResult | null = null;
  try {
    result = await runExperimentOnFleet(e, opts, fleet, seat.bus, dataDir);
    result.elapsedMs = Date.now() - started;
    return result;
  } finally {
    await seat.close().catch(() => undefined);
    await fleet.stop();
    if (result && result.pass && !opts.keep) rmSync(scratch, { recursive: true, force: true });
    else {
      if (result) result.kept = scratch;
      progress(`${e.id}: logs and data kept in ${scratch}`);
    }
  }
}

function runnableScenario(e: ExperimentFile) {
  const cat = catalogue();
  const why = cat.whyNot(e.scenario);
  const scenario = cat.find(e.scenario);
  if (why !== null || !scenario)
    throw new ExperimentError('SCENARIO_NOT_RUNNABLE', `${e.id}: scenario ${e.scenario}: ${why}`);
  return scenario;
}

/**
 * Runs the experiment on a fleet that is already up (runExperiment's private
 * one, or a sweep worker's long-lived stack): configures the scenario's stack
 * on a fresh disk first, so what an earlier run left behind does not count.
 */
export async function runExperimentOnFleet(
  e: ExperimentFile,
  opts: ExperimentOptions,
  fleet: Fleet,
  bus: StepContext['bus'],
  dataDir: string,
): Promise<ExperimentResult> {
  const progress = opts.progress ?? (() => undefined);
  const scenario = runnableScenario(e);
  const seed = opts.seed ?? e.seed ?? 1;
  const started = Date.now();
  progress(`${e.id}: configuring ${scenario.id} (seed ${seed})`);
  await configureStack(bus, scenario, seed);
  const result = await experiment(e, opts, seed, fleet, bus, dataDir, progress);
  result.elapsedMs = Date.now() - started;
  return result;
}

/** One run: initial steps, the main job under the schedule, verification, judging. */
async function experiment(
  e: ExperimentFile,
  opts: ExperimentOptions,
  seed: number,
  fleet: Fleet,
  bus: StepContext['bus'],
  dataDir: string,
  progress: (line: string) => void,
): Promise<ExperimentResult> {
  const t0 = Date.now();
  const now = () => Date.now() - t0;
  const w = workloadOf(e, opts, seed);
  const blocks = w.spanBytes / w.bs;
  const dom0Url = fleet.services.find((p) => p.service.token === 'dom0')!.adminUrl;
  const observed: Observed[] = [];
  const schedule = new FaultSchedule(e, bus, fleet, seed, observed, now, progress);
  await schedule.applyInitial();

  progress(
    `${e.id}: running ${w.ios} I/Os (${w.rw}, iodepth ${w.iodepth}, fsync every ${w.fsyncEvery}, ${blocks} blocks)`,
  );
  const main = await runMainJob(bus, w, dom0Url, schedule, observed, now);
  const inconclusive = schedule.markRestNotApplied();
  if (inconclusive) observed.push({ kind: 'note', text: `inconclusive: ${inconclusive}` });

  // What the services logged, before their transport plans are cleared for the verification.
  const logs = await faultLogs(bus, observed);
  for (const [svc] of schedule.ctx.rules)
    await bus.request(FaultControl[svc].set, { seed, rules: [] });

  const trustModel = !schedule.restarted.has('dom0') && !schedule.restarted.has('l0');
  progress(
    `${e.id}: verification: reading all ${blocks} blocks back${trustModel ? '' : ' (judged by the lab)'}`,
  );
  const check = await runVerification(bus, fleet, dataDir, w, trustModel, observed, now);

  const ops = [...main.ops, ...check.ops];
  const run = {
    bs: w.bs,
    jobs: [main.summary, check.summary],
    ops,
    timeline: schedule.timeline,
    found: check.found,
    logs,
  };
  const verdict = await judge(bus, e.expect, run, observed);
  const injected = [...schedule.injected].sort((a, b) => a.step - b.step);
  return {
    id: e.id,
    seed,
    pass: verdict.pass && inconclusive === null,
    inconclusive,
    checkers: verdict.checkers,
    dma: verdict.dma,
    faults: { injected: [...injected, ...sortTransport(logs.transport)], observed },
    ios: verdict.ios,
    expect: e.expect,
    mismatches: verdict.mismatches,
    evidence: verdict.evidence,
    timeline: schedule.timeline,
    elapsedMs: 0,
    kept: null,
    ...(opts.history ? { history: { ops, image: check.found.map(describeFound) } } : {}),
  };
}

/** Services log injections in arrival order; across rules that order is timing, not seed. */
function sortTransport(list: InjectedTransport[]): InjectedTransport[] {
  const key = (f: InjectedTransport) => `${f.service}\u0000${f.rule}`;
  return [...list].sort((a, b) => key(a).localeCompare(key(b)) || a.n - b.n);
}
