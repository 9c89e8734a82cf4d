// What the stack showed during an experiment: transport injections and
// domain events the services logged, IOMMU faults in L0's DMA log, restarts,
// and errors by code; and the I/O counts of every job.
import {
  DmaLedger,
  DmaLog,
  FaultControl,
  FrameOwners,
  type DmaRecord,
  type InjectedFault,
  type LedgerEntry,
} from '@nestlab/protocol';
import { frameMoves } from '../oracle/frame-moves.js';
import { judge } from '../oracle/oracle.js';
import type { Bus } from '@nestlab/service-kit';
import type { HistoryOp, JobSummary } from './history.js';
import { TOKENS, type Token } from './steps.js';

export type InjectedTransport = InjectedFault & { readonly service: Token };

export type Observed =
  | { kind: 'domain'; service: Token; fault: string; n: number; detail: string }
  | { kind: 'restart'; service: string; step: number; downMs: number; backAfterMs: number }
  | { kind: 'io-errors'; code: string; count: number }
  | { kind: 'iommu-faults'; count: number }
  | { kind: 'stale-accesses'; count: number }
  | { kind: 'note'; text: string };

export interface ServiceFaultLogs {
  transport: InjectedTransport[];
  domain: Observed[];
  dropped: number;
}

/** Each service's fault log (FaultControl list); a service that does not answer is noted. */
export async function faultLogs(bus: Bus, notes: Observed[]): Promise<ServiceFaultLogs> {
  const out: ServiceFaultLogs = { transport: [], domain: [], dropped: 0 };
  for (const service of TOKENS) {
    try {
      const l = (await bus.request(FaultControl[service].list, {}, { timeoutMs: 5000 })).head;
      out.transport.push(...l.injected.map((f) => ({ service, ...f })));
      out.dropped += l.dropped;
      out.domain.push(
        ...l.domain.map((e): Observed => ({
          kind: 'domain',
          service,
          fault: e.kind,
          n: e.n,
          detail: e.detail,
        })),
      );
    } catch (err) {
      notes.push({
        kind: 'note',
        text: `${service} fault log unavailable: ${(err as Error).message}`,
      });
    }
  }
  return out;
}

/** The oracle's counts over L0's DMA log (since L0's last start) against dom0's ledger. */
export interface DmaJudgement {
  total: number;
  intended: number;
  stale: number;
  misdirected: number;
  /** Refused by the IOMMU (DMA log verdict `faulted`). */
  faulted: number;
  outside: number;
  /** Frames Xen moved under dom0 (p2m-change) that the judgement took into account. */
  framesMoved: number;
}

/** Judges every device access of the run, as `nestlab run` does (oracle.ts). */
export async function judgeDma(bus: Bus): Promise<DmaJudgement> {
  const slow = { timeoutMs: 30_000 };
  const records: DmaRecord[] = [];
  for (let since = 0; ;) {
    const page = (await bus.request(DmaLog, { since, limit: 2000 }, slow)).head;
    records.push(...page.records);
    if (page.records.length === 0 || page.next === since) break;
    since = page.next;
  }
  const ledger: LedgerEntry[] = [];
  for (let since = 0; ;) {
    const page = (await bus.request(DmaLedger, { since, limit: 2000 }, slow)).head;
    ledger.push(...page.entries);
    if (page.entries.length === 0 || page.next === since) break;
    since = page.next;
  }
  const owners = async (mfns: number[]) =>
    (await bus.request(FrameOwners, { mfns }, slow)).head.owners;
  const moves = await frameMoves(bus);
  const { counts } = await judge(records, ledger, owners, moves);
  const { total, intended, stale, misdirected, faulted, outside } = counts;
  return { total, intended, stale, misdirected, faulted, outside, framesMoved: moves.length };
}

export interface IoSummary {
  planned: number;
  ok: number;
  failed: number;
  flushes: number;
  /** Writes the driver issued again after a device reset lost them (same stamp as an earlier write). */
  rewrites: number;
  durableWrites: number;
  errors: Record<string, number>;
  jobs: { job: number; kind: 'workload' | 'verify'; ios: number; seed: number; crashed: boolean }[];
}

export function summarize(jobs: readonly JobSummary[], ops: readonly HistoryOp[]): IoSummary {
  const s: IoSummary = {
    planned: 0,
    ok: 0,
    failed: 0,
    flushes: 0,
    rewrites: 0,
    durableWrites: 0,
    errors: {},
    jobs: [],
  };
  const fail = (code: string, n = 1) => {
    s.failed += n;
    s.errors[code] = (s.errors[code] ?? 0) + n;
  };
  for (const j of jobs) {
    s.planned += j.ios;
    s.jobs.push({
      job: j.job,
      kind: j.job === 0 ? 'workload' : 'verify',
      ios: j.ios,
      seed: j.seed,
      crashed: j.crashed,
    });
    if (j.crashed) fail(j.lostCode ?? 'DOM0_CRASHED', j.ios);
  }
  const stamps = new Set<string>();
  for (const o of ops) {
    if (o.op === 'flush') {
      s.flushes++;
      continue;
    }
    if (o.op === 'write' && o.wrote) {
      const stamp = `${o.job}/${o.wrote.seed}/${o.wrote.block}/${o.wrote.generation}`;
      if (stamps.has(stamp)) {
        s.rewrites++;
        continue;
      }
      stamps.add(stamp);
    }
    if (o.ok) s.ok++;
    else fail(o.code ?? 'UNKNOWN');
    if (o.op === 'write' && o.durable === true) s.durableWrites++;
  }
  return s;
}

export function errorObservations(s: IoSummary): Observed[] {
  return Object.entries(s.errors)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([code, count]) => ({ kind: 'io-errors', code, count }));
}
