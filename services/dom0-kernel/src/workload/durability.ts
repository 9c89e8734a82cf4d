// Durability tracking of one job. fsyncEvery: N issues a FLUSH after every N
// completed writes; it covers every write completed before it was submitted
// by the same device instance (epoch), and those become `durable` when it
// completes in that epoch too. FLUSHes ride beside the planned I/Os: they
// take no iodepth slot and are not counted in submitted/completed/failed
// (the history shows them).
// After a device reset (new epoch) the completed writes no FLUSH made durable
// may have been lost with the device's volatile cache: they are written again
// (same stamp, same block, under the block's lock; not when a newer write of
// the block completed since), and a FLUSH follows. A rewrite is a record of
// its own (a write with the original's stamp); the original record becomes
// durable when a rewrite of it does.
import type { IoRecord, Workload } from '@nestlab/protocol';
import { SECTOR_SIZE } from '@nestlab/virtio';
import type { BlkIo } from '../block/blk-request.js';
import type { BlockLocks } from './block-locks.js';
import { stampWire, type JobHistory } from './history.js';
import type { IoTarget } from './io-target.js';
import { UnflushedWrites } from './unflushed.js';
import { blockContent, type BlockStamp } from '@nestlab/formats';

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

/**
 * A planned write queued or running. Only a rewrite after a device reset
 * waits for one, so the promise is made for such a waiter, not per write.
 */
class WriteInFlight {
  private done = false;
  private waiters: (() => void)[] | null = null;

  ended(): Promise<void> {
    if (this.done) return Promise.resolve();
    return new Promise((resolve) => (this.waiters ??= []).push(resolve));
  }

  end(): void {
    this.done = true;
    for (const w of this.waiters ?? []) w();
    this.waiters = null;
  }
}

export interface JobEvents {
  /** A completed, not yet durable write was written again after a device reset. */
  rewrite?(block: number): void;
  /** True once the job was cancelled (JobCancel): submit no more planned I/Os. */
  cancelled?(): boolean;
}

export interface DurabilityDeps {
  readonly w: Workload;
  readonly target: IoTarget;
  readonly history: JobHistory;
  readonly locks: BlockLocks;
  readonly idPrefix: string;
  readonly events: JobEvents;
}

export class Durability {
  private readonly fsyncEvery: number;
  private readonly canFlush: boolean;
  private readonly notDurable = new UnflushedWrites<Unflushed>();
  private writesSinceFlush = 0;
  private flushes = 0;
  private rewrites = 0;
  private readonly flushing = new Set<Promise<void>>();
  private readonly rewriting = new Set<Promise<void>>();
  /** Per block, the newest generation this job wrote successfully: it supersedes older ones. */
  private readonly newestOk = new Map<number, number>();
  /** Per block, the last planned write queued or running, until it ends. */
  private readonly writing = new Map<number, WriteInFlight>();

  constructor(private readonly d: DurabilityDeps) {
    this.fsyncEvery = d.w.fsyncEvery ?? 0;
    this.canFlush = d.target.canFlush === true;
  }

  private epochNow(): number {
    return this.d.target.epoch?.() ?? 0;
  }

  /** Runs a planned write of `block`, known as the block's newest while it runs (rewrites wait for it). */
  plannedWrite(block: number, run: () => Promise<void>): Promise<void> {
    const mine = new WriteInFlight();
    this.writing.set(block, mine);
    return run().finally(() => {
      if (this.writing.get(block) === mine) this.writing.delete(block);
      mine.end();
    });
  }

  /** The device completed a write in `epoch`: durable at once on a write-through device, else tracked. */
  writeCompleted(r: IoRecord, stamp: BlockStamp, epoch: number): void {
    const { newestOk } = this;
    newestOk.set(stamp.block, Math.max(newestOk.get(stamp.block) ?? 0, stamp.generation));
    if (!this.canFlush) {
      r.durable = true; // write-through device: completed means on the disk
      return;
    }
    r.durable = false;
    this.notDurable.push({ rec: r, original: r, stamp, epoch, rewrites: 0 });
    this.rescue(); // a completion of a newer epoch: the device was reset since the older ones
    if (this.fsyncEvery > 0 && ++this.writesSinceFlush >= this.fsyncEvery) {
      this.writesSinceFlush = 0;
      this.issueFlush();
    }
  }

  /**
   * Resolves once no FLUSH or rewrite is running: a FLUSH issued by the last
   * writes still counts, and so do rewrites after a reset (and the FLUSH after them).
   */
  async settle(): Promise<void> {
    for (;;) {
      if (this.flushing.size > 0 || this.rewriting.size > 0) {
        await Promise.all([...this.flushing, ...this.rewriting]);
        continue;
      }
      this.rescue(); // a reset after the last completion
      if (this.rewriting.size === 0) break;
    }
  }

  private issueFlush(): void {
    const { history, target, w } = this.d;
    const covered = this.notDurable.takeAll();
    const r = history.record('flush', 0);
    const submittedIn = this.epochNow();
    const io: BlkIo = {
      id: `${this.d.idPrefix}-f${this.flushes++}`,
      op: 'flush',
      sector: 0n,
      len: 0,
    };
    const p = target
      .submit(io, w.deadlineMs)
      .then(
        (res) => {
          history.end(r, res.ok, res.ok ? undefined : (res.code ?? 'INTERNAL'));
          if (!res.ok) {
            // Not covered after all: a later FLUSH covers them (it covers all completed before it).
            this.notDurable.restore(covered);
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
          this.notDurable.restore(missed);
        },
        () => {
          history.end(r, false, 'INTERNAL');
          this.notDurable.restore(covered);
        },
      )
      .then(() => this.rescue())
      .finally(() => this.flushing.delete(p));
    this.flushing.add(p);
  }

  /** Completed writes of an older device epoch, not durable: written again, then a FLUSH. */
  private rescue(): void {
    const stale = this.notDurable.takeOlderThan(this.epochNow());
    if (stale.length === 0) return;
    const batch = Promise.all(stale.map((c) => this.rewrite(c)))
      .then((done) => {
        if (this.fsyncEvery > 0 && done.some((d) => d)) this.issueFlush();
      })
      .finally(() => this.rewriting.delete(batch));
    this.rewriting.add(batch);
  }

  /** Writes `c` again in the current epoch; true when the device completed it. */
  private async rewrite(c: Unflushed): Promise<boolean> {
    const { history, locks, target, w } = this.d;
    const { block, generation } = c.stamp;
    // A planned write of the block queued or running is newer than this one: its outcome decides.
    for (let newer = this.writing.get(block); newer !== undefined; newer = this.writing.get(block))
      await newer.ended();
    // Given up (the device keeps being reset), or a newer write of the block completed.
    if (c.rewrites >= MAX_REWRITES || (this.newestOk.get(block) ?? 0) > generation) return false;
    // Recorded as it queues for the block, as planned I/Os are: history order is the block's order.
    const started = Date.now();
    const rec = history.record('write', block);
    rec.wrote = stampWire(c.stamp);
    const id = `${this.d.idPrefix}-r${++this.rewrites}`;
    this.d.events.rewrite?.(block);
    const release = await locks.acquire(block, w.deadlineMs);
    if (release === null) {
      history.end(rec, false, 'TIMEOUT'); // the block stayed busy past a deadline: left not durable
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
        history.end(rec, false, res?.code ?? 'INTERNAL');
        return false;
      }
      history.end(rec, true);
      rec.durable = false;
      this.notDurable.push({ ...c, rec, epoch: res.epoch ?? 0, rewrites: c.rewrites + 1 });
      return true;
    } finally {
      release();
    }
  }
}
