// The history an experiment is judged on: every job's I/O records on one
// time line (ms since the experiment started), the jobs themselves, and the
// discrete faults the runner applied.
import type { IoRecord } from '@nestlab/protocol';

export interface Stamp {
  readonly seed: number;
  readonly block: number;
  readonly generation: number;
}
export type Found = Stamp | 'zeros' | 'garbage';

/** One I/O of one job, on the experiment's time line. */
export interface HistoryOp extends Omit<IoRecord, 'startMs' | 'endMs'> {
  /** Which job of the run (0: the main workload). */
  readonly job: number;
  readonly startMs: number;
  readonly endMs: number;
}

export interface JobSummary {
  readonly job: number;
  /** Each job writes with its own seed, so its stamps name it. */
  readonly seed: number;
  readonly ios: number;
  readonly deadlineMs: number;
  readonly startMs: number;
  readonly endMs: number;
  /**
   * dom0 died under the job: its report (and so its records) never came.
   * Every planned I/O then counts as failed (DOM0_CRASHED), and every write
   * it may have issued as uncertain: any stamp with its seed.
   */
  readonly crashed: boolean;
  /** I/Os the job's report counted as submitted (0 when crashed). */
  readonly submitted: number;
  /** The code its I/Os fail with when it has no report: DOM0_CRASHED unless said otherwise. */
  readonly lostCode?: string;
}

/** A discrete fault (crash, domain fault) on the time line. */
export interface TimedFault {
  readonly step: number;
  readonly what: string;
  readonly atMs: number;
  /** When the runner had finished applying it (service back, fault armed). */
  readonly doneMs: number;
  /** L0 lost its volatile state: writes not yet flushed may be gone. */
  readonly volatileLoss: boolean;
}

export interface History {
  readonly bs: number;
  readonly jobs: readonly JobSummary[];
  readonly ops: readonly HistoryOp[];
  readonly faults: readonly TimedFault[];
}

/** Records of one job's report, moved onto the experiment's time line. */
export function placeRecords(
  job: number,
  startMs: number,
  records: readonly IoRecord[],
): HistoryOp[] {
  return records.map((r) => ({
    ...r,
    job,
    startMs: startMs + r.startMs,
    endMs: startMs + r.endMs,
  }));
}

export const sameStamp = (a: Found | undefined, b: Stamp) =>
  typeof a === 'object' &&
  a.seed === b.seed &&
  a.block === b.block &&
  a.generation === b.generation;
