// A fio-like job: keeps `iodepth` I/Os in flight until `ios` have ended.
// The plan (op and block of each I/O) depends only on the workload and its
// seed. Two I/Os never touch one block at the same time (the later waits, and
// waiters get the block in arrival order: block-locks.ts), so "the last
// acknowledged write" of a block is always well defined and a block's I/Os
// reach the device in the order their history records are numbered.
// (An I/O failed at its deadline frees its block though the device may still
// hold the request; a late write is then counted as uncertain, not ordered.)
// fsyncEvery: N issues a FLUSH after every N completed writes; it covers every
// write completed before it was submitted by the same device instance (epoch),
// and those become `durable` when it completes in that epoch too. FLUSHes ride
// beside the planned I/Os: they take no iodepth slot and are not counted in
// submitted/completed/failed (the history shows them).
// After a device reset (new epoch) the completed writes no FLUSH made durable
// may have been lost with the device's volatile cache: the engine writes them
// again (same stamp, same block, under the block's lock; not when a newer
// write of the block completed since), and a FLUSH follows. A rewrite is a
// record of its own (a write with the original's stamp); the original record
// becomes durable when a rewrite of it does.
// history: every I/O's IoRecord, in submission order (record i is history[i]).
import type { IoRecord, IoReport, Workload } from '@nestlab/protocol';
import { resetIoTraceBudget } from '@nestlab/telemetry';
import { SECTOR_SIZE } from '@nestlab/virtio';
import type { BlkIo, BlkOp } from '../block/blk-request.js';
import type { IoResult } from '../block/block-device.js';
import { below, mulberry32, unit } from './prng.js';
import { Dom0Error } from '../errors.js';
import { BlockLocks } from './block-locks.js';
import { UnflushedWrites } from './unflushed.js';
import { blockContent, describeBlock, type BlockModel, type BlockStamp } from './verify.js';

export interface PlannedIo {
  readonly op: BlkOp;
  readonly block: number;
}

export interface IoTarget {
  submit(io: BlkIo, deadlineMs: number): Promise<IoResult>;
  /**
   * VIRTIO_BLK_F_FLUSH was negotiated. Without it the device is write-through
   * (spec 5.2.6.2: a device that does not offer FLUSH must not cache writes):
   * a completed write is durable at once, and no FLUSH is ever sent.
   */
  readonly canFlush?: boolean;
  /**
   * The device instance now: bumped by every reset/re-init the driver performs.
   * Results carry the epoch they completed in. Absent: the device is never reset.
   */
  epoch?(): number;
}

export interface JobEvents {
  /** A completed, not yet durable write was written again after a device reset. */
  rewrite?(block: number): void;
  /** True once the job was cancelled (JobCancel): submit no more planned I/Os. */
  cancelled?(): boolean;
}

/** Times one planned write is written again before the engine gives up on it (left not durable). */
export const MAX_REWRITES = 3;

/** A completed write no FLUSH has made durable yet. */
interface Unflushed {
  /** The record of the write the device completed: the planned one or its latest rewrite. */
  readonly rec: IoRecord;
  /** The planned write's record. */
  readonly original: IoRecord;
  readonly stamp: BlockStamp;
  /** The device epoch it completed in. */
  readonly epoch: number;
  readonly rewrites: number;
}

export const MAX_TRACE_IDS = 64;
/** The most IoRecords one report carries (the IoReport schema's bound). */
export const MAX_HISTORY = 20_000;

/** Records a workload's history would hold: its I/Os and, at most, one FLUSH per fsyncEvery writes. */
export function historyLength(w: Workload): number {
  const n = w.fsyncEvery ?? 0;
  return w.ios + (n > 0 ? Math.floor(w.ios / n) : 0);
}

const stampWire = (s: BlockStamp) => ({ seed: s.seed, block: s.block, generation: s.generation });

/** The deterministic sequence of I/Os of a workload. */
export function* plan(w: Workload): Generator<PlannedIo> {
  const blocks = Math.floor(w.spanBytes / w.bs);
  const next = mulberry32(w.seed);
  const written: number[] = [];
  const seen = new Set<number>();
  for (let i = 0; i < w.ios; i++) {
    let op: BlkOp;
    let block: number;
    switch (w.rw) {
      case 'read':
      case 'write':
        op = w.rw;
        block = i % blocks;
        break;
      case 'randread':
      case 'randwrite':
        op = w.rw === 'randread' ? 'read' : 'write';
        block = below(next, blocks);
        break;
      default:
        op = unit(next) < 0.5 ? 'read' : 'write';
        // randrw reads target blocks this job wrote; before any write, any block (zeros expected).
        block =
          op === 'read' && written.length > 0
            ? written[below(next, written.length)]!
            : below(next, blocks);
    }
    if (op === 'write' && !seen.has(block)) {
      seen.add(block);
      written.push(block);
    }
    yield { op, block };
  }
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(p * sorted.length) - 1)]!);
}

export async function runJob(
  w: Workload,
  target: IoTarget,
  model: BlockModel,
  idPrefix: string,
  events: JobEvents = {},
): Promise<IoReport> {
  if (w.history === true && historyLength(w) > MAX_HISTORY) {
    throw new Dom0Error(
      'HISTORY_TOO_LONG',
      `a history of ${w.ios} I/Os (and up to ${historyLength(w) - w.ios} FLUSHes) exceeds ${MAX_HISTORY} records: run fewer I/Os or no history`,
    );
  }
  const started = Date.now();
  const now = () => Date.now() - started;
  // Every run gets the same trace budget (the first N I/Os of each job are traced).
  resetIoTraceBudget();
  const report: IoReport = {
    submitted: 0,
    completed: 0,
    verified: 0,
    corrupted: 0,
    failed: 0,
    errors: {},
    latencyUs: { p50: 0, p99: 0 },
    elapsedMs: 0,
    traceIds: [],
  };
  const latencies: number[] = [];
  const locks = new BlockLocks();
  const fail = (code: string) => {
    report.failed++;
    report.errors[code] = (report.errors[code] ?? 0) + 1;
  };
  const history: IoRecord[] | null = w.history === true ? [] : null;
  /**
   * A record in submission order (a detached one when no history was asked
   * for, or when rewrites and their FLUSHes would take it past MAX_HISTORY).
   */
  const record = (op: IoRecord['op'], block: number): IoRecord => {
    const r: IoRecord = { i: history?.length ?? 0, op, block, ok: false, startMs: now(), endMs: 0 };
    if (history !== null && history.length < MAX_HISTORY) history.push(r);
    return r;
  };
  const ended = new WeakSet<IoRecord>();
  const end = (r: IoRecord, ok: boolean, code?: string) => {
    ended.add(r);
    r.ok = ok;
    if (code !== undefined) r.code = code;
    r.endMs = now();
  };

  // FLUSH bookkeeping: completed writes no FLUSH has covered yet.
  const fsyncEvery = w.fsyncEvery ?? 0;
  const canFlush = target.canFlush === true;
  const epochNow = () => target.epoch?.() ?? 0;
  const notDurable = new UnflushedWrites<Unflushed>();
  let writesSinceFlush = 0;
  let flushes = 0;
  let rewrites = 0;
  const flushing = new Set<Promise<void>>();
  const rewriting = new Set<Promise<void>>();
  /** Per block, the newest generation this job wrote successfully: it supersedes older ones. */
  const newestOk = new Map<number, number>();
  /** Per block, the last planned write queued or running, until it ends. */
  const writing = new Map<number, Promise<void>>();
  const issueFlush = () => {
    const covered = notDurable.takeAll();
    const r = record('flush', 0);
    const submittedIn = epochNow();
    const io: BlkIo = { id: `${idPrefix}-f${flushes++}`, op: 'flush', sector: 0n, len: 0 };
    const p = target
      .submit(io, w.deadlineMs)
      .then(
        (res) => {
          end(r, res.ok, res.ok ? undefined : (res.code ?? 'INTERNAL'));
          if (!res.ok) {
            // Not covered after all: a later FLUSH covers them (it covers all completed before it).
            notDurable.restore(covered);
            return;
          }
          // Only what this device instance completed before the FLUSH; a reset in
          // between (FLUSH resubmitted on the new instance) covers none of these.
          const epoch = res.epoch ?? 0;
          const missed: Unflushed[] = [];
          for (const c of covered) {
            if (c.epoch === epoch && epoch === submittedIn) {
              c.rec.durable = true;
              c.original.durable = true;
            } else missed.push(c);
          }
          notDurable.restore(missed);
        },
        () => {
          end(r, false, 'INTERNAL');
          notDurable.restore(covered);
        },
      )
      .then(rescue)
      .finally(() => flushing.delete(p));
    flushing.add(p);
  };

  /** Completed writes of an older device epoch, not durable: written again, then a FLUSH. */
  function rescue(): void {
    const epoch = epochNow();
    const stale = notDurable.takeOlderThan(epoch);
    if (stale.length === 0) return;
    const batch = Promise.all(stale.map(rewrite))
      .then((done) => {
        if (fsyncEvery > 0 && done.some((d) => d)) issueFlush();
      })
      .finally(() => rewriting.delete(batch));
    rewriting.add(batch);
  }

  /** Writes `c` again in the current epoch; true when the device completed it. */
  async function rewrite(c: Unflushed): Promise<boolean> {
    const { block, generation } = c.stamp;
    // A planned write of the block queued or running is newer than this one: its outcome decides.
    for (let newer = writing.get(block); newer !== undefined; newer = writing.get(block))
      await newer;
    // Given up (the device keeps being reset), or a newer write of the block completed.
    if (c.rewrites >= MAX_REWRITES || (newestOk.get(block) ?? 0) > generation) return false;
    // Recorded as it queues for the block, as planned I/Os are: history order is the block's order.
    const started = Date.now();
    const rec = record('write', block);
    rec.wrote = stampWire(c.stamp);
    const id = `${idPrefix}-r${++rewrites}`;
    events.rewrite?.(block);
    const release = await locks.acquire(block, w.deadlineMs);
    if (release === null) {
      end(rec, false, 'TIMEOUT'); // the block stayed busy past a deadline: left not durable
      return false;
    }
    try {
      const io: BlkIo = {
        id,
        op: 'write',
        sector: (BigInt(block) * BigInt(w.bs)) / BigInt(SECTOR_SIZE),
        len: w.bs,
        data: blockContent(c.stamp, w.bs),
      };
      const res = await target
        .submit(io, Math.max(1, w.deadlineMs - (Date.now() - started)))
        .catch(() => null);
      if (res === null || !res.ok) {
        end(rec, false, res?.code ?? 'INTERNAL');
        return false;
      }
      end(rec, true);
      rec.durable = false;
      const again = { ...c, rec, epoch: res.epoch ?? 0, rewrites: c.rewrites + 1 };
      notDurable.push(again);
      return true;
    } finally {
      release();
    }
  }

  const writeCompleted = (r: IoRecord, stamp: BlockStamp, epoch: number) => {
    newestOk.set(stamp.block, Math.max(newestOk.get(stamp.block) ?? 0, stamp.generation));
    if (!canFlush) {
      r.durable = true; // write-through device: completed means on the disk
      return;
    }
    r.durable = false;
    notDurable.push({ rec: r, original: r, stamp, epoch, rewrites: 0 });
    rescue(); // a completion of a newer epoch: the device was reset since the older ones
    if (fsyncEvery > 0 && ++writesSinceFlush >= fsyncEvery) {
      writesSinceFlush = 0;
      issueFlush();
    }
  };

  async function one(i: number, p: PlannedIo): Promise<void> {
    if (p.op !== 'write') return runPlanned(i, p);
    let ended!: () => void;
    const mine = new Promise<void>((r) => (ended = r));
    writing.set(p.block, mine);
    try {
      return await runPlanned(i, p);
    } finally {
      if (writing.get(p.block) === mine) writing.delete(p.block);
      ended();
    }
  }

  async function runPlanned(i: number, p: PlannedIo): Promise<void> {
    const slotStart = Date.now();
    const rec = record(p.op, p.block);
    // The deadline runs from taking the slot, so a job ends within ~(ios/iodepth + 1) deadlines.
    const release = await locks.acquire(p.block, w.deadlineMs);
    if (release === null) {
      report.submitted++;
      fail('TIMEOUT');
      end(rec, false, 'TIMEOUT');
      return;
    }
    try {
      const stamp =
        p.op === 'write'
          ? { seed: w.seed, block: p.block, generation: model.nextGeneration(p.block) }
          : null;
      if (stamp) rec.wrote = stampWire(stamp);
      const io: BlkIo = {
        id: `${idPrefix}-${i}`,
        op: p.op,
        sector: (BigInt(p.block) * BigInt(w.bs)) / BigInt(SECTOR_SIZE),
        len: w.bs,
        ...(stamp ? { data: blockContent(stamp, w.bs) } : {}),
      };
      report.submitted++;
      const r = await target.submit(io, Math.max(1, w.deadlineMs - (Date.now() - slotStart)));
      if (report.traceIds.length < MAX_TRACE_IDS) report.traceIds.push(r.traceId);
      if (!r.ok) {
        if (stamp) model.uncertainWrite(stamp);
        fail(r.code ?? 'INTERNAL');
        end(rec, false, r.code ?? 'INTERNAL');
        return;
      }
      report.completed++;
      latencies.push(r.latencyUs);
      end(rec, true);
      if (stamp) {
        model.ackWrite(stamp);
        if (w.verify) report.verified++;
        writeCompleted(rec, stamp, r.epoch ?? 0);
      } else {
        if (history !== null && r.data !== undefined) {
          const found = describeBlock(r.data);
          rec.read = typeof found === 'string' ? found : stampWire(found);
        }
        if (w.verify) {
          const ok = r.data !== undefined && model.check(p.block, r.data);
          rec.verified = ok;
          if (ok) report.verified++;
          else report.corrupted++;
        }
      }
    } catch (err) {
      if (!ended.has(rec)) end(rec, false, 'INTERNAL');
      throw err;
    } finally {
      release();
    }
  }

  const it = plan(w);
  await new Promise<void>((resolve) => {
    let issued = 0;
    let inFlight = 0;
    const more = () => issued < w.ios && events.cancelled?.() !== true;
    const launch = () => {
      while (inFlight < w.iodepth && more()) {
        const p = it.next();
        if (p.done) break;
        const i = issued++;
        inFlight++;
        void one(i, p.value)
          .catch(() => fail('INTERNAL'))
          .finally(() => {
            inFlight--;
            if (inFlight === 0 && !more()) resolve();
            else launch();
          });
      }
      if (inFlight === 0 && !more()) resolve();
    };
    launch();
  });
  // A FLUSH issued by the last writes still counts: the job ends when it does,
  // and so do rewrites after a reset (and the FLUSH after them).
  for (;;) {
    if (flushing.size > 0 || rewriting.size > 0) {
      await Promise.all([...flushing, ...rewriting]);
      continue;
    }
    rescue(); // a reset after the last completion
    if (rewriting.size === 0) break;
  }

  latencies.sort((a, b) => a - b);
  report.latencyUs = { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
  report.elapsedMs = Date.now() - started;
  if (history !== null) report.history = history;
  return report;
}
