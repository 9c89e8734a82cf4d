// The main job: the workload with history, run while the fault schedule
// applies its steps. Its end is whichever comes first: the report, an error,
// dom0 killed under it, or dom0 done without its report ever arriving.
import { JobRun, type IoReport, type Workload } from '@nestlab/protocol';
import type { FaultSchedule } from './fault-schedule.js';
import { placeRecords, type HistoryOp, type JobSummary } from './history.js';
import type { Observed } from './observe.js';
import { completedNow, dom0Jobs, reportLost } from './progress.js';
import type { StepContext } from './steps.js';

/** dom0 says the job ended, yet no report: wait this long before calling the reply lost. */
const REPORT_GRACE_MS = 5000;

const BASE_ATTEMPTS = 8;

/**
 * dom0's completed count before the job: the steps' logical points count from
 * it. On a long-lived stack (a sweep worker's) it holds every earlier job's
 * I/Os, so a reading lost to a busy dom0 must be tried again, not taken as 0
 * (every step would then strike at once).
 */
async function baseCount(dom0Url: string, observed: Observed[]): Promise<number> {
  for (let attempt = 1; attempt <= BASE_ATTEMPTS; attempt++) {
    const c = await completedNow(dom0Url);
    if (c !== null) return c;
    await new Promise((r) => setTimeout(r, 250));
  }
  observed.push({
    kind: 'note',
    text: "dom0's progress unreadable before the job: counted from 0",
  });
  return 0;
}

export interface JobOutcome {
  readonly summary: JobSummary;
  readonly ops: HistoryOp[];
}

/** Job `job` of a run as the checkers see it: when it ran and what it was asked. */
export function jobSummary(
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

export async function runMainJob(
  bus: StepContext['bus'],
  w: Workload,
  dom0Url: string,
  schedule: FaultSchedule,
  observed: Observed[],
  now: () => number,
): Promise<JobOutcome> {
  const base = await baseCount(dom0Url, observed);
  const jobsBefore = (await dom0Jobs(dom0Url))?.jobs ?? 0;
  const jobStart = now();
  const worstMs = (Math.ceil(w.ios / w.iodepth) + 4) * w.deadlineMs * 2 + 60_000;
  const job = bus.request(JobRun, w, { timeoutMs: worstMs }).then((r) => r.head);
  job.catch(() => undefined); // judged below; a crashed dom0 never answers
  let jobOver = false;
  const stepping = schedule.follow(dom0Url, base, () => jobOver);
  const outcome = await Promise.race([
    job.then(
      (report) => ({ report }),
      (err: unknown) => ({ error: err as Error }),
    ),
    schedule.dom0Died,
    reportLost(dom0Url, jobsBefore, REPORT_GRACE_MS, () => jobOver),
  ]);
  jobOver = true;
  await stepping; // a crash step in progress finishes: the service is back
  const report = typeof outcome === 'object' && 'report' in outcome ? outcome.report : null;
  if (!report) {
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
  return {
    summary: {
      ...jobSummary(0, w, jobStart, now(), report),
      ...(outcome === 'crashed' || report ? {} : { lostCode: 'JOB_REPORT_LOST' }),
    },
    ops: report ? placeRecords(0, jobStart, report.history ?? []) : [],
  };
}
