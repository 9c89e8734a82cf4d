import { toHex } from '@nestlab/addr';
import {
  DeviceDma,
  DmaLedger,
  DmaLog,
  FrameOwners,
  JobCancel,
  JobRun,
  emptyIoReport,
  type DmaRecord,
  type IoReport,
  type LedgerEntry,
  type RequestOf,
} from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import { trace } from '@opentelemetry/api';
import { judge, type OracleVerdict } from '../oracle/oracle.js';
import { emitOracleSpans } from '../oracle/oracle-spans.js';
import { frameMoves } from '../oracle/frame-moves.js';
import { busOf, type Outcome, type Scenario } from '../scenarios/scenario.js';
import { configureLayers, DEVICE_BDF } from './configure.js';
import { explainOutcome, type RunReport } from './report.js';
import { withFleetHeld } from '../fleet/fleet-lease.js';

const DISK_BYTES = 64 * 2 ** 20;
/** Records per page of the DMA log and the ledger: keeps each reply well under NATS's 1 MiB payload. */
const PAGE_LIMIT = 2000;
/** A bus address no driver mapping covers: above every RAM and IOVA range the lab uses. */
const ROGUE_BUS = 0x7ff000000n;

export interface RunOptions {
  ios?: number;
  iodepth?: number;
  bs?: number;
  seed: number;
  progress?: (line: string) => void;
  /**
   * Cancels the run: the running job submits no more I/Os (JobCancel), the
   * history so far is still judged, and the report says `cancelled`.
   */
  signal?: AbortSignal;
}

async function pageAll<T>(
  fetch: (since: number) => Promise<{ items: T[]; next: number }>,
): Promise<T[]> {
  const all: T[] = [];
  for (let since = 0; ;) {
    const { items, next } = await fetch(since);
    all.push(...items);
    if (items.length === 0 || next === since) return all;
    since = next;
  }
}

/** The longest a timer may wait: Node fires a longer one after 1 ms (a 32-bit signed count). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * How long to wait for a job's reply: every I/O at its deadline, one wave of
 * `iodepth` after another, plus slack; capped at the longest timer Node keeps
 * (about 24.8 days), which `--ios 10000000` at iodepth 1 would overflow.
 */
export function jobTimeoutMs(ios: number, iodepth: number, deadlineMs: number): number {
  return Math.min(MAX_TIMER_MS, (Math.ceil(ios / iodepth) + 2) * deadlineMs + 30_000);
}

/**
 * Configures every layer for the scenario, runs the workload, collects and
 * judges the history; holding the fleet, so no other run configures it meanwhile.
 */
export async function runScenario(
  bus: Bus,
  scenario: Scenario,
  opts: RunOptions,
): Promise<RunReport> {
  return withFleetHeld(bus, `run ${scenario.id}`, () => runHeld(bus, scenario, opts));
}

async function runHeld(bus: Bus, scenario: Scenario, opts: RunOptions): Promise<RunReport> {
  const progress = opts.progress ?? (() => undefined);
  const started = Date.now();
  const slow = { timeoutMs: 30_000 };

  const probe = await configureLayers(bus, scenario, opts.seed, DISK_BYTES, progress);

  const w = scenario.workload;
  const ios = opts.ios ?? w.ios;
  const iodepth = opts.iodepth ?? w.iodepth;
  let job: IoReport = emptyIoReport();
  // A run cancelled while its layers were configured never starts its job.
  if (probe.ok && opts.signal?.aborted !== true) {
    progress(`dom0: running ${ios} I/Os (${w.rw}, bs ${opts.bs ?? w.bs}, iodepth ${iodepth})`);
    job = await runJob(bus, opts.signal, progress, {
      rw: w.rw,
      bs: opts.bs ?? w.bs,
      iodepth,
      ios,
      seed: opts.seed,
      verify: w.verify,
      deadlineMs: w.deadlineMs,
      spanBytes: DISK_BYTES,
    });
  }

  let rogue: DmaRecord | null = null;
  if (scenario.checks.rogueProbe) {
    rogue = (
      await bus.request(DeviceDma, {
        bdf: DEVICE_BDF,
        bus: toHex(ROGUE_BUS),
        len: 64,
        write: false,
      })
    ).head.record;
  }

  progress('collecting the DMA log and the driver ledger');
  const records = await pageAll(async (since) => {
    const r = (await bus.request(DmaLog, { since, limit: PAGE_LIMIT }, slow)).head;
    return { items: r.records, next: r.next };
  });
  const ledger: LedgerEntry[] = await pageAll(async (since) => {
    const r = (await bus.request(DmaLedger, { since, limit: PAGE_LIMIT }, slow)).head;
    return { items: r.entries, next: r.next };
  });
  const owners = async (mfns: number[]) =>
    (await bus.request(FrameOwners, { mfns }, slow)).head.owners;
  const verdict = await judge(records, ledger, owners, await frameMoves(bus));
  await emitOracleSpans(trace.getTracer('nestlab.lab'), verdict.notable, bus);

  const outcome = decideOutcome(probe.ok, probe.error?.code ?? null, job, verdict, rogue);
  const m = verdict.firstMisdirected;
  const report: RunReport = {
    scenario: scenario.id,
    expected: scenario.expected,
    outcome,
    pass: false,
    seed: opts.seed,
    ios: {
      submitted: job.submitted,
      completed: job.completed,
      verified: job.verified,
      corrupted: job.corrupted,
      failed: job.failed,
    },
    dma: {
      total: verdict.counts.total,
      translated: verdict.counts.translated,
      bypassed: verdict.counts.bypassed,
      direct: verdict.counts.direct,
      misdirected: verdict.counts.misdirected,
      stale: verdict.counts.stale,
      faulted: verdict.counts.faulted,
      intended: verdict.counts.intended,
      outside: verdict.counts.outside,
      ...(verdict.counts.deviceLocal > 0 ? { deviceLocal: verdict.counts.deviceLocal } : {}),
    },
    features: { offered: probe.offered, negotiated: probe.negotiated },
    device: {
      bdf: DEVICE_BDF,
      bus: busOf(DEVICE_BDF),
      iommu: scenario.device.iommu,
      exemptBuses: [...scenario.iommu.virtioExemptBuses],
    },
    driver: { ok: probe.ok, status: probe.status, error: probe.error },
    traceIds: job.traceIds,
    firstMisdirected: m
      ? {
          bus: m.record.bus,
          machine: m.record.machine ?? '',
          owner: m.owner ?? 'none',
          intendedMachine:
            m.intendedMfn === null
              ? null
              : toHex((BigInt(m.intendedMfn) << 12n) | (BigInt(m.record.machine ?? '0') & 0xfffn)),
          pseudo: m.ledger
            ? toHex(BigInt(m.ledger.pseudo) + (BigInt(m.record.bus) - BigInt(m.ledger.bus)))
            : null,
          hostPhys: m.record.hostPhys,
          what: m.record.what,
          traceId: m.record.traceId ?? null,
        }
      : null,
    ...(verdict.counts.misdirected > 0 ? { astray: verdict.astray } : {}),
    rogue: rogue
      ? {
          bus: rogue.bus,
          verdict: rogue.verdict,
          machine: rogue.machine,
          owner: rogue.machine
            ? ((await owners([Number(BigInt(rogue.machine) >> 12n)]))[0] ?? null)
            : null,
        }
      : null,
    errors: job.errors,
    latencyUs: job.latencyUs,
    elapsedMs: Date.now() - started,
    ...(opts.signal?.aborted ? { cancelled: true } : {}),
    explanation: '',
  };
  report.pass =
    !report.cancelled && report.outcome === scenario.expected && extraChecks(scenario, report);
  report.explanation = explainOutcome(report);
  return report;
}

/** How often a cancel is asked again while dom0 has not started the job yet. */
const CANCEL_RETRY_MS = 100;

/**
 * Runs the job on dom0, cancelling it when `signal` fires. A JobCancel that
 * reaches dom0 before the job (it answers `running: false`) is asked again
 * until the job ends, so a cancel is never lost to that race.
 */
async function runJob(
  bus: Bus,
  signal: AbortSignal | undefined,
  progress: (line: string) => void,
  work: RequestOf<typeof JobRun>,
): Promise<IoReport> {
  let done = false;
  const cancel = async (): Promise<void> => {
    progress('cancelling: dom0 submits no more I/Os');
    while (!done) {
      const running = await bus
        .request(JobCancel, {})
        .then((r) => r.head.running)
        .catch(() => false);
      if (running || done) return;
      await new Promise((r) => setTimeout(r, CANCEL_RETRY_MS));
    }
  };
  const onAbort = () => void cancel();
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return (
      await bus.request(JobRun, work, {
        timeoutMs: jobTimeoutMs(work.ios, work.iodepth, work.deadlineMs),
      })
    ).head;
  } finally {
    done = true;
    signal?.removeEventListener('abort', onAbort);
  }
}

function decideOutcome(
  probeOk: boolean,
  probeError: string | null,
  job: IoReport,
  v: OracleVerdict,
  rogue: DmaRecord | null,
): Outcome {
  if (!probeOk && probeError === 'FEATURES_REJECTED') return 'features-rejected';
  if (v.counts.misdirected > 0) {
    // Rings found, requests completed, data elsewhere: nothing the driver can see.
    return v.counts.misdirectedRing === 0 && job.completed > 0
      ? 'silent-corruption'
      : 'misdirected-dma';
  }
  if (v.counts.faulted > 0) return 'iommu-fault';
  if (rogue && rogue.verdict !== 'faulted') return 'isolation-bypass';
  if (job.corrupted > 0) return 'corruption';
  if (!probeOk || job.failed > 0 || job.completed < job.submitted) return 'timeout';
  return 'ok';
}

/** Figures an outcome alone does not pin down. */
function extraChecks(s: Scenario, r: RunReport): boolean {
  if (s.expected === 'ok') {
    const allVerified =
      r.ios.verified === r.ios.submitted && r.ios.corrupted === 0 && r.ios.failed === 0;
    // Ring accesses in the device's own memory are not DMA: nothing to translate.
    const dma = r.dma.total - (r.dma.deviceLocal ?? 0);
    const translatedAll = !s.checks?.allTranslated || r.dma.translated === dma;
    return allVerified && r.dma.misdirected === 0 && dma > 0 && translatedAll;
  }
  if (s.expected === 'silent-corruption') {
    // No error reached the driver, and every hit frame has a named owner other than dom0.
    const owned = r.astray?.frames.every((f) => f.owner !== 'none' && f.owner !== 'dom0') === true;
    return r.ios.failed === 0 && r.ios.completed === r.ios.submitted && owned;
  }
  return true;
}
