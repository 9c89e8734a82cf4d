// Jepsen-style checkers over an experiment's history and the final disk
// image (read from the file, not through the services). Each returns a count
// and the first few offending I/Os, so a failing verdict names its evidence.
import { sameStamp, type Found, type History, type HistoryOp, type Stamp } from './history.js';

export interface Verdicts {
  /** Durable-acknowledged writes whose block on disk is neither that write nor a later one. */
  lostAckedWrites: number;
  /** Reads reported ok (and not flagged) whose data no correct disk could have returned. */
  silentCorruptions: number;
  /** I/Os with no outcome, or that ended later than their deadline plus slack. */
  unendedIos: number;
  /** Reads the workload itself flagged as wrong data. */
  detectedCorruptions: number;
  /** Longest time from a discrete fault to the first successful I/O started after it; null: none. */
  recoveryMs: number | null;
}

export interface Evidence {
  lost: { job: number; i: number; block: number; onDisk: string }[];
  silent: { job: number; i: number; block: number; read: string; expected: string[] }[];
  unended: { job: number; i: number | null; why: string }[];
  unrecovered: string[];
}

const EXAMPLES = 10;
/** Ending within twice the deadline is ending: a recovered I/O may be resubmitted once. */
export const DEFAULT_SLACK = (deadlineMs: number) => deadlineMs;

export const describeFound = (f: Found | undefined): string =>
  f === undefined ? 'nothing' : typeof f === 'string' ? f : `${f.seed}/${f.block}/g${f.generation}`;

/** Order of writes: job first, then the block's generation within the job. */
function writeOrder(h: History) {
  const jobOfSeed = new Map(h.jobs.map((j) => [j.seed, j.job]));
  return {
    jobOf: (s: Stamp) => jobOfSeed.get(s.seed),
    /** True when `found` is a stamp written after the write `w` (any outcome). */
    later(found: Found, w: HistoryOp): boolean {
      if (typeof found === 'string' || !w.wrote) return false;
      const j = jobOfSeed.get(found.seed);
      if (j === undefined || found.block !== w.block) return false;
      return j > w.job || (j === w.job && found.generation > w.wrote.generation);
    },
  };
}

export function lostAckedWrites(h: History, onDisk: (block: number) => Found, ev?: Evidence) {
  const order = writeOrder(h);
  let lost = 0;
  for (const w of h.ops) {
    if (w.op !== 'write' || !w.ok || w.durable !== true || !w.wrote) continue;
    const f = onDisk(w.block);
    if (sameStamp(f, w.wrote) || order.later(f, w)) continue;
    lost++;
    if (ev && ev.lost.length < EXAMPLES)
      ev.lost.push({ job: w.job, i: w.i, block: w.block, onDisk: describeFound(f) });
  }
  return lost;
}

const before = (a: HistoryOp, b: HistoryOp) => a.job < b.job || (a.job === b.job && a.i < b.i);

/** When a write became durable: the end of the first successful FLUSH issued after it completed. */
function durableAt(h: History) {
  const flushes = h.ops.filter((o) => o.op === 'flush' && o.ok);
  return (w: HistoryOp): number | null => {
    if (!w.ok || w.durable !== true) return null;
    const f = flushes.find((x) => x.job === w.job && x.startMs >= w.endMs);
    return f ? f.endMs : w.endMs; // durable with no FLUSH: a write-through device
  };
}

/** Every content a correct stack could return for read `r` (see the README's checker notes). */
export function acceptableFor(h: History, r: HistoryOp): Found[] {
  const writes = h.ops
    .filter((o) => o.op === 'write' && o.block === r.block && o.wrote)
    .sort((a, b) => (before(a, b) ? -1 : 1));
  const earlier = writes.filter((w) => before(w, r));
  // Writes racing the read (none, when dom0 serializes a block's I/Os) may or may not be seen.
  const racing = writes.filter((w) => !before(w, r) && w.startMs < r.endMs && w.endMs > r.startMs);
  const out: Found[] = [];
  const add = (k: number) => out.push(k < 0 ? 'zeros' : earlier[k]!.wrote!);
  let k = earlier.length - 1;
  // Uncertain: failed writes after the last acknowledged one, and writes still
  // in flight when the read started (the read may see either side of them).
  while (k >= 0 && (!earlier[k]!.ok || earlier[k]!.endMs > r.startMs)) add(k--);
  add(k);
  // L0 lost its cache between that write and this read: anything back to the last durable one.
  const durable = durableAt(h);
  const losses = h.faults.filter((f) => f.volatileLoss && f.atMs < r.startMs);
  while (k >= 0) {
    const w = earlier[k]!;
    const d = durable(w);
    const lostAt = losses.some((c) => c.atMs > w.startMs && (d === null || d > c.atMs));
    if (!lostAt) break;
    add(--k);
  }
  for (const w of racing) out.push(w.wrote!);
  const crashedSeeds = h.jobs.filter((j) => j.crashed && j.job < r.job).map((j) => j.seed);
  if (typeof r.read === 'object' && crashedSeeds.includes(r.read.seed) && r.read.block === r.block)
    out.push(r.read); // a write of a job dom0 died under: it may have reached the disk
  return out;
}

const matches = (f: Found | undefined, c: Found) =>
  f !== undefined && (typeof c === 'string' ? f === c : sameStamp(f, c));

export function silentCorruptions(h: History, ev?: Evidence): number {
  let n = 0;
  for (const r of h.ops) {
    if (r.op !== 'read' || !r.ok || r.verified === false || r.read === undefined) continue;
    const ok = acceptableFor(h, r);
    if (ok.some((c) => matches(r.read, c))) continue;
    n++;
    if (ev && ev.silent.length < EXAMPLES)
      ev.silent.push({
        job: r.job,
        i: r.i,
        block: r.block,
        read: describeFound(r.read),
        expected: ok.map(describeFound),
      });
  }
  return n;
}

export function detectedCorruptions(h: History): number {
  return h.ops.filter((r) => r.op === 'read' && r.ok && r.verified === false).length;
}

export function unendedIos(h: History, ev?: Evidence, slack = DEFAULT_SLACK): number {
  let n = 0;
  const note = (job: number, i: number | null, why: string) => {
    n++;
    if (ev && ev.unended.length < EXAMPLES) ev.unended.push({ job, i, why });
  };
  for (const j of h.jobs) {
    if (j.crashed) continue; // its I/Os failed with DOM0_CRASHED: ended, not unended
    const ops = h.ops.filter((o) => o.job === j.job);
    const planned = ops.filter((o) => o.op !== 'flush').length;
    for (let k = planned; k < j.ios; k++) note(j.job, null, 'no record: the job never ended it');
    for (const o of ops) {
      if (o.endMs < o.startMs) note(j.job, o.i, 'no outcome');
      else if (o.endMs - o.startMs > j.deadlineMs + slack(j.deadlineMs))
        note(j.job, o.i, `ended after ${o.endMs - o.startMs} ms (deadline ${j.deadlineMs} ms)`);
    }
  }
  return n;
}

export function recoveryMs(h: History, ev?: Evidence): number | null {
  if (h.faults.length === 0) return null;
  let worst: number | null = null;
  for (const f of h.faults) {
    const first = h.ops
      .filter((o) => o.ok && o.startMs >= f.atMs)
      .reduce<HistoryOp | null>((a, o) => (a === null || o.endMs < a.endMs ? o : a), null);
    if (first === null) {
      ev?.unrecovered.push(`step ${f.step} (${f.what}): no successful I/O after it`);
      continue;
    }
    const ms = Math.round(first.endMs - f.atMs);
    worst = worst === null ? ms : Math.max(worst, ms);
  }
  return worst;
}

export function runCheckers(
  h: History,
  onDisk: (block: number) => Found,
): { verdicts: Verdicts; evidence: Evidence } {
  const evidence: Evidence = { lost: [], silent: [], unended: [], unrecovered: [] };
  return {
    verdicts: {
      lostAckedWrites: lostAckedWrites(h, onDisk, evidence),
      silentCorruptions: silentCorruptions(h, evidence),
      unendedIos: unendedIos(h, evidence),
      detectedCorruptions: detectedCorruptions(h),
      recoveryMs: recoveryMs(h, evidence),
    },
    evidence,
  };
}
