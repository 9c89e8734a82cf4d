// Judging: the checkers over the whole history and the disk image, the DMA
// oracle over every device access, and the experiment's expectations
// compared with what was seen.
import { runCheckers, type Evidence, type Verdicts } from './checkers.js';
import { mismatches, type Mismatch } from './expect.js';
import type { ExpectKey, ExperimentFile } from './file-schema.js';
import type { Found, HistoryOp, JobSummary, TimedFault } from './history.js';
import {
  errorObservations,
  judgeDma,
  summarize,
  type DmaJudgement,
  type IoSummary,
  type Observed,
  type ServiceFaultLogs,
} from './observe.js';
import type { StepContext } from './steps.js';

export interface Judgement {
  readonly pass: boolean;
  readonly checkers: Verdicts;
  readonly evidence: Evidence;
  /** The oracle's judgement of every device access (null when the log could not be read). */
  readonly dma: DmaJudgement | null;
  readonly ios: IoSummary;
  readonly mismatches: Mismatch[];
}

export interface RunRecord {
  readonly bs: number;
  readonly jobs: JobSummary[];
  readonly ops: HistoryOp[];
  readonly timeline: TimedFault[];
  readonly found: Found[];
  readonly logs: ServiceFaultLogs;
}

/** Judges a finished run; adds what it observed (domain faults, errors, DMA findings) to `observed`. */
export async function judge(
  bus: StepContext['bus'],
  expect: ExperimentFile['expect'],
  run: RunRecord,
  observed: Observed[],
): Promise<Judgement> {
  const { verdicts, evidence } = runCheckers(
    { bs: run.bs, jobs: run.jobs, ops: run.ops, faults: run.timeline },
    (b) => run.found[b] ?? 'zeros',
  );
  const ios = summarize(run.jobs, run.ops);
  const dma = await judgeDma(bus).catch((err: Error): DmaJudgement | null => {
    observed.push({ kind: 'note', text: `DMA log not judged: ${err.message}` });
    return null;
  });
  observed.push(...run.logs.domain, ...errorObservations(ios));
  if (dma && dma.faulted > 0) observed.push({ kind: 'iommu-faults', count: dma.faulted });
  if (dma && dma.stale > 0) observed.push({ kind: 'stale-accesses', count: dma.stale });
  const got: Record<ExpectKey, number | null> = {
    ...verdicts,
    iommuFaults: dma?.faulted ?? null,
    staleAccesses: dma?.stale ?? null,
    misdirectedAccesses: dma?.misdirected ?? null,
    failedIos: ios.failed,
    domainFaultsFired: run.logs.domain.length,
  };
  const miss = mismatches(expect, got);
  return { pass: miss.length === 0, checkers: verdicts, evidence, dma, ios, mismatches: miss };
}
