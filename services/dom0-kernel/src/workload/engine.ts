// A fio-like job: keeps `iodepth` I/Os in flight until `ios` have ended.
// The plan (op and block of each I/O) depends only on the workload and its
// seed. Two I/Os never touch one block at the same time (the later waits, and
// waiters get the block in arrival order: block-locks.ts), so "the last
// acknowledged write" of a block is always well defined and a block's I/Os
// reach the device in the order their history records are numbered.
// (An I/O failed at its deadline frees its block though the device may still
// hold the request; a late write is then counted as uncertain, not ordered.)
// The parts: the plan, depth scheduling (runAtDepth), one planned I/O and
// its counts (PlannedIos), what the disk should hold (BlockModel) — all
// here — then FLUSHes and rewrites after a device reset (durability.ts) and
// the per-I/O records (history.ts).
import {
  emptyIoReport,
  historyLength,
  type IoRecord,
  type IoReport,
  type Workload,
} from '@nestlab/protocol';
import { resetIoTraceBudget } from '@nestlab/telemetry';
import { SECTOR_SIZE } from '@nestlab/virtio';
import type { BlkIo, BlkOp } from '../block/blk-request.js';
import type { IoResult } from '../block/block-device.js';
import { below, mulberry32, unit } from './prng.js';
import { Dom0Error } from '../errors.js';
import { BlockLocks } from './block-locks.js';
import { Durability, type JobEvents } from './durability.js';
import { JobHistory, MAX_HISTORY, stampWire } from './history.js';
import {
  blockContent,
  describeBlock,
  isBlockContent,
  isZeroBlock,
  type BlockStamp,
} from '@nestlab/formats';
import type { IoTarget } from './io-target.js';

export { MAX_REWRITES } from './durability.js';
export { MAX_HISTORY } from './history.js';
export { historyLength };

export interface PlannedIo {
  readonly op: BlkOp;
  readonly block: number;
}

export const MAX_TRACE_IDS = 64;

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

/** The first sector of `block`; in plain numbers while they are exact (bs is a multiple of a sector). */
export function sectorOf(block: number, bs: number): bigint {
  const byte = block * bs;
  return Number.isSafeInteger(byte) && byte % SECTOR_SIZE === 0
    ? BigInt(byte / SECTOR_SIZE)
    : (BigInt(block) * BigInt(bs)) / BigInt(SECTOR_SIZE);
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
  // Every run gets the same trace budget (the first N I/Os of each job are traced).
  resetIoTraceBudget();
  const job = new PlannedIos(w, target, model, idPrefix, events);
  await runAtDepth(
    plan(w),
    w.ios,
    w.iodepth,
    (i, p) => job.run(i, p),
    () => job.fail('INTERNAL'),
    () => events.cancelled?.() === true,
  );
  await job.durability.settle();
  return job.finish();
}

/** The planned I/Os of one job: each one's submission, outcome, verification and counts. */
class PlannedIos {
  private readonly started = Date.now();
  private readonly report: IoReport = emptyIoReport();
  private readonly latencies: number[] = [];
  private readonly locks = new BlockLocks();
  private readonly history: JobHistory;
  readonly durability: Durability;

  constructor(
    private readonly w: Workload,
    private readonly target: IoTarget,
    private readonly model: BlockModel,
    private readonly idPrefix: string,
    events: JobEvents,
  ) {
    this.history = new JobHistory(w.history === true);
    this.durability = new Durability({
      w,
      target,
      history: this.history,
      locks: this.locks,
      idPrefix,
      events,
    });
  }

  fail(code: string): void {
    this.report.failed++;
    this.report.errors[code] = (this.report.errors[code] ?? 0) + 1;
  }

  run(i: number, p: PlannedIo): Promise<void> {
    if (p.op !== 'write') return this.one(i, p);
    return this.durability.plannedWrite(p.block, () => this.one(i, p));
  }

  private async one(i: number, p: PlannedIo): Promise<void> {
    const { w, history, report } = this;
    const slotStart = Date.now();
    const rec = history.record(p.op, p.block);
    // The deadline runs from taking the slot, so a job ends within ~(ios/iodepth + 1) deadlines.
    const release = await this.locks.acquire(p.block, w.deadlineMs);
    if (release === null) {
      report.submitted++;
      this.fail('TIMEOUT');
      history.end(rec, false, 'TIMEOUT');
      return;
    }
    let ended = false;
    try {
      const stamp =
        p.op === 'write'
          ? { seed: w.seed, block: p.block, generation: this.model.nextGeneration(p.block) }
          : null;
      if (stamp) rec.wrote = stampWire(stamp);
      const id = `${this.idPrefix}-${i}`;
      const sector = sectorOf(p.block, w.bs);
      // Built whole, not spread: one object per I/O, no copies.
      const io: BlkIo = stamp
        ? { id, op: p.op, sector, len: w.bs, data: blockContent(stamp, w.bs) }
        : // Verify tells "not delivered" from "stale but equal" only on a poisoned buffer.
          w.verify
          ? { id, op: p.op, sector, len: w.bs, poison: true }
          : { id, op: p.op, sector, len: w.bs };
      report.submitted++;
      const r = await this.target.submit(io, Math.max(1, w.deadlineMs - (Date.now() - slotStart)));
      if (report.traceIds.length < MAX_TRACE_IDS) report.traceIds.push(r.traceId);
      if (!r.ok) {
        if (stamp) this.model.uncertainWrite(stamp);
        this.fail(r.code ?? 'INTERNAL');
        ended = true;
        history.end(rec, false, r.code ?? 'INTERNAL');
        return;
      }
      report.completed++;
      this.latencies.push(r.latencyUs);
      ended = true;
      history.end(rec, true);
      if (stamp) {
        this.model.ackWrite(stamp);
        if (w.verify) report.verified++;
        this.durability.writeCompleted(rec, stamp, r.epoch ?? 0);
      } else this.readCompleted(rec, p.block, r);
    } catch (err) {
      if (!ended) history.end(rec, false, 'INTERNAL');
      throw err;
    } finally {
      release();
    }
  }

  /** What a read found: recorded in the history, checked against the model with verify. */
  private readCompleted(rec: IoRecord, block: number, r: IoResult): void {
    if (this.history.kept && r.data !== undefined) {
      const found = describeBlock(r.data);
      rec.read = typeof found === 'string' ? found : stampWire(found);
    }
    if (this.w.verify) {
      const ok = r.data !== undefined && this.model.check(block, r.data);
      rec.verified = ok;
      if (ok) this.report.verified++;
      else this.report.corrupted++;
    }
  }

  finish(): IoReport {
    const { report, latencies } = this;
    latencies.sort((a, b) => a - b);
    report.latencyUs = { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99) };
    report.elapsedMs = Date.now() - this.started;
    const history = this.history.records;
    if (history !== null) report.history = history;
    return report;
  }
}

// Depth scheduling (fio's iodepth): keeps up to `depth` planned I/Os running
// until `count` have been started (or `stopped()` says to start no more) and
// all of them have ended. A task that throws is reported to `onError` and its
// slot is reused.
async function runAtDepth<P>(
  items: Iterator<P>,
  count: number,
  depth: number,
  run: (i: number, item: P) => Promise<void>,
  onError: (err: unknown) => void,
  stopped: () => boolean = () => false,
): Promise<void> {
  await new Promise<void>((resolve) => {
    let issued = 0;
    let inFlight = 0;
    const more = () => issued < count && !stopped();
    const launch = () => {
      while (inFlight < depth && more()) {
        const p = items.next();
        if (p.done) break;
        const i = issued++;
        inFlight++;
        const ended = () => {
          inFlight--;
          if (inFlight === 0 && !more()) resolve();
          else launch();
        };
        // One reaction for both outcomes (catch-then-finally made two promises per I/O).
        void run(i, p.value).then(ended, (err: unknown) => {
          onError(err);
          ended();
        });
      }
      if (inFlight === 0 && !more()) resolve();
    };
    launch();
  });
}

// What the disk should hold, per the workload's own writes, checked against
// the self-describing block stamps of @nestlab/formats (the format both the
// workload and the lab's checkers read).
type Candidate = BlockStamp | 'zeros';

/**
 * What the disk should hold, block by block: the last acknowledged write,
 * zeros for a block never written, and — after a write that failed or timed
 * out — either the old or the new content (the device may or may not have done it).
 */
export class BlockModel {
  private readonly expect = new Map<number, Candidate[]>();
  private readonly generations = new Map<number, number>();

  constructor(readonly bs: number) {}

  nextGeneration(block: number): number {
    const g = (this.generations.get(block) ?? 0) + 1;
    this.generations.set(block, g);
    return g;
  }

  ackWrite(s: BlockStamp): void {
    this.expect.set(s.block, [s]);
  }

  uncertainWrite(s: BlockStamp): void {
    this.expect.set(s.block, [...this.candidates(s.block), s]);
  }

  candidates(block: number): Candidate[] {
    return this.expect.get(block) ?? ['zeros'];
  }

  /** True when `bytes` equal one of the block's expected contents. */
  check(block: number, bytes: Uint8Array): boolean {
    return this.candidates(block).some((c) =>
      c === 'zeros'
        ? bytes.byteLength === this.bs && isZeroBlock(bytes)
        : isBlockContent(c, this.bs, bytes),
    );
  }
}
