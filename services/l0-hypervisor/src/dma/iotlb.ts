import { PAGE_SHIFT } from '@nestlab/addr';
import type { Counter } from '@nestlab/service-kit';
import { TurnCounts } from '../turn-counts.js';

export interface IotlbEntry {
  /** Machine address of the page's first byte. */
  readonly machinePage: bigint;
  readonly read: boolean;
  readonly write: boolean;
  readonly by: 'iommu' | 'identity';
}

const MAX_ENTRIES = 4096;
const PAGE_SHIFT_N = BigInt(PAGE_SHIFT);
/** Enough for every invalidation that can arrive while one translation is out. */
const RECENT_INVALIDATIONS = 256;

/**
 * The DMA engine's cache of IOMMU translations, per (BDF, IOVA page). It must
 * honour IotlbInvalidate events, or a device keeps reaching unmapped frames.
 */
export class Iotlb {
  /**
   * Per BDF, per page number (a Number: pages of a 64-bit address fit in 52
   * bits), so a lookup builds no key string. Device maps stay in the order
   * devices were first cached, entries in insertion order: the oldest entry
   * of the first device is dropped when the cache is full.
   */
  private readonly entries = new Map<string, Map<number, IotlbEntry>>();
  private count = 0;
  /**
   * Bumped by every invalidation: a translation asked before it may describe
   * pages the invalidation was for, so those pages of its answer must not be
   * cached. The newest invalidations are kept to tell which pages they were.
   */
  generation = 0;
  private readonly recent: { gen: number; bdf: string; first: number; end: number }[] = [];
  /** Invalidations up to this generation are no longer in `recent`. */
  private floor = 0;

  /** Hits and misses by BDF, in the counters at the end of each turn (a lookup per 4 KiB access). */
  private readonly hits: TurnCounts<string>;
  private readonly misses: TurnCounts<string>;

  constructor(hits: Counter, misses: Counter) {
    this.hits = new TurnCounts((bdf, n) => hits.inc({ bdf }, n));
    this.misses = new TurnCounts((bdf, n) => misses.inc({ bdf }, n));
  }

  /** Moves the hit and miss counts into their counters now. */
  flushCounts(): void {
    this.hits.flush();
    this.misses.flush();
  }

  private static pageOf(iova: bigint): number {
    return Number(iova >> PAGE_SHIFT_N);
  }

  private device(bdf: string): Map<number, IotlbEntry> {
    let pages = this.entries.get(bdf);
    if (!pages) this.entries.set(bdf, (pages = new Map()));
    return pages;
  }

  /** A cached entry that allows the access, counted as hit or miss (unless `count` is false). */
  lookup(bdf: string, iova: bigint, write: boolean, count = true): IotlbEntry | undefined {
    const e = this.entries.get(bdf)?.get(Iotlb.pageOf(iova));
    // An entry without the needed permission is a miss: the IOMMU decides (and faults).
    const usable = e && (write ? e.write : e.read) ? e : undefined;
    if (count) (usable ? this.hits : this.misses).add(bdf);
    return usable;
  }

  insert(bdf: string, iova: bigint, entry: IotlbEntry): void {
    this.insertPage(this.device(bdf), Iotlb.pageOf(iova), entry);
  }

  private insertPage(pages: Map<number, IotlbEntry>, page: number, entry: IotlbEntry): void {
    if (!pages.has(page)) {
      if (this.count >= MAX_ENTRIES) this.evictOldest();
      this.count++;
    }
    pages.set(page, entry);
  }

  private evictOldest(): void {
    for (const pages of this.entries.values()) {
      const oldest = pages.keys().next();
      if (oldest.done) continue;
      pages.delete(oldest.value);
      this.count--;
      return;
    }
  }

  /**
   * Caches `run` from `iova` on where the page holds no entry yet (an
   * IOMMU's note of new mappings: a hint that never replaces what is cached,
   * stale or not; only an invalidation drops an entry). Returns pages cached.
   */
  prime(bdf: string, iova: bigint, run: readonly IotlbEntry[]): number {
    const first = Iotlb.pageOf(iova);
    const pages = this.device(bdf);
    let n = 0;
    for (let i = 0; i < run.length; i++) {
      if (pages.has(first + i)) continue;
      this.insertPage(pages, first + i, run[i]!);
      n++;
    }
    return n;
  }

  /**
   * Caches a run of consecutive pages from `iova` on (an IOMMU answer and its
   * prefetch), as asked at generation `since`: the run stops at the first page
   * an invalidation since then may have been for (it left the IOMMU after the
   * answer, so the answer may be stale for that page). Returns pages cached.
   */
  insertRun(bdf: string, iova: bigint, run: readonly IotlbEntry[], since: number): number {
    const first = Iotlb.pageOf(iova);
    const pages = this.device(bdf);
    let n = 0;
    for (const e of run) {
      if (this.invalidatedSince(bdf, first + n, since)) break;
      this.insertPage(pages, first + n, e);
      n++;
    }
    return n;
  }

  /** Whether an invalidation after generation `since` may have covered the page. */
  private invalidatedSince(bdf: string, page: number, since: number): boolean {
    if (since === this.generation) return false;
    if (since < this.floor) return true;
    for (let i = this.recent.length - 1; i >= 0; i--) {
      const r = this.recent[i]!;
      if (r.gen <= since) break;
      if (r.bdf === bdf && page >= r.first && page < r.end) return true;
    }
    return false;
  }

  /** Drops the entries of `pages` pages from `iova` on; returns how many were held. */
  invalidate(bdf: string, iova: bigint, pages: number): number {
    const first = Iotlb.pageOf(iova);
    const end = first + pages;
    this.generation++;
    this.recent.push({ gen: this.generation, bdf, first, end });
    if (this.recent.length > RECENT_INVALIDATIONS) this.floor = this.recent.shift()!.gen;
    const held = this.entries.get(bdf);
    if (!held) return 0;
    let dropped = 0;
    if (pages <= held.size) {
      for (let page = first; page < end; page++) if (held.delete(page)) dropped++;
    } else {
      for (const page of [...held.keys()])
        if (page >= first && page < end && held.delete(page)) dropped++;
    }
    this.count -= dropped;
    return dropped;
  }

  clear(): void {
    this.generation++;
    this.floor = this.generation;
    this.recent.length = 0;
    this.entries.clear();
    this.count = 0;
  }

  get size(): number {
    return this.count;
  }
}
