// Runs one experiment on a private fleet: configures the scenario's stack,
// runs the workload with history, applies the fault steps at their logical
// points, then a verification job that reads every block, reads the disk
// image file back itself, and judges the whole history with the checkers.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FaultControl, JobRun, type IoReport, type Workload } from '@nestlab/protocol';
import { diskImagePath } from '@nestlab/formats';
import { startFleet, type Fleet } from '../fleet/fleet.js';
import { labSeat } from '../fleet/lab-seat.js';
import { DEVICE_BDF } from '../run/configure.js';
import { catalogue } from '../scenarios/builtin.js';
import { describeFound, runCheckers, type Evidence, type Verdicts } from './checkers.js';
import { mismatches, type Mismatch } from './expect.js';
import type { ExpectKey, ExperimentFile } from './file-schema.js';
import { placeRecords, type HistoryOp, type JobSummary, type TimedFault } from './history.js';
import { readImageBlocks } from './image.js';
import {
  errorObservations,
  faultLogs,
  judgeDma,
  type DmaJudgement,
  summarize,
  type InjectedTransport,
  type IoSummary,
  type Observed,
} from './observe.js';
import { completedNow, dom0Jobs, reportLost } from './progress.js';
import { configureStack, ExperimentError } from './stack.js';
import {
  applyStep,
  describeStep,
  type InjectedStep,
  type StepContext,
  type Token,
} from './steps.js';

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
const POLL_MS = 5;
/** dom0 says the job ended, yet no report: wait this long before calling the reply lost. */
const REPORT_GRACE_MS = 5000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

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
  const injected: InjectedStep[] = [];
  const timeline: TimedFault[] = [];
  const observed: Observed[] = [];
  const restarted = new Set<Token | 'nats'>();
  let dom0Died: () => void = () => undefined;
  const died = new Promise<'crashed'>((r) => (dom0Died = () => r('crashed')));
  const ctx: StepContext = {
    bus,
    fleet,
    seed,
    rules: new Map(),
    onKilled: (t) => {
      restarted.add(t);
      if (t === 'dom0') dom0Died();
    },
  };
  const apply = async (k: number) => {
    const s = e.faults[k]!;
    const what = describeStep(s);
    progress(`${e.id}: step ${k} at ${s.at.completed} completed: ${what}`);
    const atMs = now();
    let r: { armed?: number };
    try {
      r = await applyStep(ctx, s);
    } catch (err) {
      // A step the stack refused is a result to report, not a reason to abandon the run.
      const e = err as Error & { code?: string };
      injected.push({ step: k, at: s.at, what, applied: false });
      observed.push({ kind: 'note', text: `step ${k} failed: ${e.code ?? e.name}: ${e.message}` });
      return;
    }
    const doneMs = now();
    injected.push({ step: k, at: s.at, what, applied: true });
    if ('crash' in s)
      observed.push({
        kind: 'restart',
        service: s.crash,
        step: k,
        downMs: s.downMs ?? 0,
        backAfterMs: doneMs - atMs,
      });
    if (r.armed !== undefined) observed.push({ kind: 'note', text: `step ${k}: armed ${r.armed}` });
    if (!('transport' in s))
      timeline.push({
        step: k,
        what,
        atMs,
        doneMs,
        volatileLoss: 'crash' in s && s.crash === 'l0',
      });
  };

  let next = 0;
  // Steps at the start are in force before the first I/O: their effect is the same on every run.
  while (next < e.faults.length && e.faults[next]!.at.completed === 0) await apply(next++);

  progress(
    `${e.id}: running ${w.ios} I/Os (${w.rw}, iodepth ${w.iodepth}, fsync every ${w.fsyncEvery}, ${blocks} blocks)`,
  );
  const base = (await completedNow(dom0Url)) ?? 0;
  const jobsBefore = (await dom0Jobs(dom0Url))?.jobs ?? 0;
  const jobStart = now();
  const worstMs = (Math.ceil(w.ios / w.iodepth) + 4) * w.deadlineMs * 2 + 60_000;
  const job = bus.request(JobRun, w, { timeoutMs: worstMs }).then((r) => r.head);
  job.catch(() => undefined); // judged below; a crashed dom0 never answers
  let jobOver = false;
  const scheduler = (async () => {
    while (next < e.faults.length && !jobOver && !restarted.has('dom0')) {
      const c = await completedNow(dom0Url);
      if (c !== null && c - base >= e.faults[next]!.at.completed) await apply(next++);
      else await sleep(POLL_MS);
    }
  })();
  const outcome = await Promise.race([
    job.then(
      (report) => ({ report }),
      (err: unknown) => ({ error: err as Error }),
    ),
    died,
    reportLost(dom0Url, jobsBefore, REPORT_GRACE_MS, () => jobOver),
  ]);
  jobOver = true;
  await scheduler; // a crash step in progress finishes: the service is back
  const jobs: JobSummary[] = [];
  const ops: HistoryOp[] = [];
  const mainReport = typeof outcome === 'object' && 'report' in outcome ? outcome.report : null;
  if (mainReport) {
    ops.push(...placeRecords(0, jobStart, mainReport.history ?? []));
  } else {
    const why =
      outcome === 'crashed'
        ? 'dom0 was killed under it'
        : outcome === 'lost'
          ? 'dom0 ended the job but its report never arrived'
          : outcome === 'cancelled'
            ? 'cancelled'
            : 'error' in outcome
              ? outcome.error.message
              : 'no report';
    observed.push({ kind: 'note', text: `main job: no report (${why}); its I/Os count as failed` });
  }
  jobs.push({
    ...summary(0, w, jobStart, now(), mainReport),
    ...(outcome === 'crashed' || mainReport ? {} : { lostCode: 'JOB_REPORT_LOST' }),
  });
  for (let k = next; k < e.faults.length; k++)
    injected.push({
      step: k,
      at: e.faults[k]!.at,
      what: describeStep(e.faults[k]!),
      applied: false,
    });

  // What the services logged, before their transport plans are cleared for the verification.
  const logs = await faultLogs(bus, observed);
  for (const [svc] of ctx.rules) await bus.request(FaultControl[svc].set, { seed, rules: [] });

  // Reads of every block; dom0 judges them itself only if its model of the disk is still right.
  const trustModel = !restarted.has('dom0') && !restarted.has('l0');
  const v: Workload = {
    ...w,
    rw: 'read',
    ios: blocks,
    iodepth: Math.min(4, blocks),
    seed: (seed + 1) >>> 0,
    verify: trustModel,
    fsyncEvery: 0,
  };
  progress(
    `${e.id}: verification: reading all ${blocks} blocks back${trustModel ? '' : ' (judged by the lab)'}`,
  );
  const vStart = now();
  let vReport: IoReport | null = null;
  try {
    vReport = (await bus.request(JobRun, v, { timeoutMs: (blocks + 4) * v.deadlineMs + 60_000 }))
      .head;
    ops.push(...placeRecords(1, vStart, vReport.history ?? []));
  } catch (err) {
    observed.push({ kind: 'note', text: `verification job failed: ${(err as Error).message}` });
  }
  jobs.push({ ...summary(1, v, vStart, now(), vReport), crashed: false });

  const image = diskImagePath(dataDir, fleet.stack, DEVICE_BDF);
  const found = readImageBlocks(image, w.bs, blocks);
  const { verdicts, evidence } = runCheckers(
    { bs: w.bs, jobs, ops, faults: timeline },
    (b) => found[b] ?? 'zeros',
  );
  const ios = summarize(jobs, ops);
  const dma = await judgeDma(bus).catch((err: Error): DmaJudgement | null => {
    observed.push({ kind: 'note', text: `DMA log not judged: ${err.message}` });
    return null;
  });
  observed.push(...logs.domain, ...errorObservations(ios));
  if (dma && dma.faulted > 0) observed.push({ kind: 'iommu-faults', count: dma.faulted });
  if (dma && dma.stale > 0) observed.push({ kind: 'stale-accesses', count: dma.stale });
  const got: Record<ExpectKey, number | null> = {
    ...verdicts,
    iommuFaults: dma?.faulted ?? null,
    staleAccesses: dma?.stale ?? null,
    misdirectedAccesses: dma?.misdirected ?? null,
    failedIos: ios.failed,
    domainFaultsFired: logs.domain.length,
  };
  const miss = mismatches(e.expect, got);
  return {
    id: e.id,
    seed,
    pass: miss.length === 0,
    checkers: verdicts,
    dma,
    faults: {
      injected: [...injected.sort((a, b) => a.step - b.step), ...sortTransport(logs.transport)],
      observed,
    },
    ios,
    expect: e.expect,
    mismatches: miss,
    evidence,
    timeline,
    elapsedMs: 0,
    kept: null,
    ...(opts.history ? { history: { ops, image: found.map(describeFound) } } : {}),
  };
}

/** Services log injections in arrival order; across rules that order is timing, not seed. */
function sortTransport(list: InjectedTransport[]): InjectedTransport[] {
  const key = (f: InjectedTransport) => `${f.service}\u0000${f.rule}`;
  return [...list].sort((a, b) => key(a).localeCompare(key(b)) || a.n - b.n);
}

function summary(
  job: number,
  w: Workload,
  startMs: number,
  endMs: number,
  r: IoReport | null,
): JobSummary {
  return {
    job,
    seed: w.seed,
    ios: w.ios,
    deadlineMs: w.deadlineMs,
    startMs,
    endMs,
    crashed: r === null,
    submitted: r?.submitted ?? 0,
  };
}
