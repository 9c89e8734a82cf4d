// Verification: after the main job, a job that reads every block back, and
// the disk image file read by the lab itself (not through L0), so the
// checkers see both what the stack returns and what the disk holds.
import { JobRun, type IoReport, type Workload } from '@nestlab/protocol';
import { diskImagePath } from '@nestlab/formats';
import type { Fleet } from '../fleet/fleet.js';
import { DEVICE_BDF } from '../run/configure.js';
import { placeRecords, type Found } from './history.js';
import { readImageBlocks } from './image.js';
import { jobSummary, type JobOutcome } from './main-job.js';
import type { Observed } from './observe.js';
import type { StepContext } from './steps.js';

export interface Verification extends JobOutcome {
  /** What each block of the disk image holds, read from the file. */
  readonly found: Found[];
}

/**
 * Reads all blocks of the main job's span. `trustModel`: dom0 judges the reads
 * itself only if its model of the disk is still right (neither dom0 nor L0
 * was restarted); otherwise the lab judges them.
 */
export async function runVerification(
  bus: StepContext['bus'],
  fleet: Fleet,
  dataDir: string,
  w: Workload,
  trustModel: boolean,
  observed: Observed[],
  now: () => number,
): Promise<Verification> {
  const blocks = w.spanBytes / w.bs;
  const v: Workload = {
    ...w,
    rw: 'read',
    ios: blocks,
    iodepth: Math.min(4, blocks),
    seed: (w.seed + 1) >>> 0,
    verify: trustModel,
    fsyncEvery: 0,
  };
  const start = now();
  let report: IoReport | null = null;
  try {
    report = (await bus.request(JobRun, v, { timeoutMs: (blocks + 4) * v.deadlineMs + 60_000 }))
      .head;
  } catch (err) {
    observed.push({ kind: 'note', text: `verification job failed: ${(err as Error).message}` });
  }
  const image = diskImagePath(dataDir, fleet.stack, DEVICE_BDF);
  return {
    summary: { ...jobSummary(1, v, start, now(), report), crashed: false },
    ops: report ? placeRecords(1, start, report.history ?? []) : [],
    found: readImageBlocks(image, w.bs, blocks),
  };
}
