import { PAGE_SHIFT } from '@nestlab/addr';
import type { Counter } from '@nestlab/service-kit';

export interface IotlbEntry {
  /** Machine address of the page's first byte. */
  readonly machinePage: bigint;
  readonly read: boolean;
  readonly write: boolean;
  readonly by: 'iommu' | 'identity';
}

const MAX_ENTRIES = 4096;
/** Enough for every invalidation that can arrive while one translation is out. */
const RECENT_INVALIDATIONS = 256;

/**
 * The DMA engine's cache of IOMMU translations, per (BDF, IOVA page). It must
 * honour IotlbInvalidate events, or a device keeps reaching unmapped frames.
 */
export class Iotlb {
  private readonly entries = new Map<string, IotlbEntry>();
  /**
   * Bumped by every invalidation: a translation asked before it may describe
   * pages the invalidation was for, so those pages of its answer must not be
   * cached. The newest invalidations are kept to tell which pages they were.
   */
  generation = 0;
  private readonly recent: { gen: number; bdf: string; first: bigint; end: bigint }[] = [];
  /** Invalidations up to this generation are no longer in `recent`. */
  private floor = 0;

  constructor(
    private readonly hits: Counter,
    private readonly misses: Counter,
  ) {}

  private static key(bdf: string, page: bigint): string {
    return `${bdf}/${page.toString(16)}`;
  }

  /** A cached entry that allows the access, counted as hit or miss (unless `count` is false). */
  lookup(bdf: string, iova: bigint, write: boolean, count = true): IotlbEntry | undefined {
    const e = this.entries.get(Iotlb.key(bdf, iova >> BigInt(PAGE_SHIFT)));
    // An entry without the needed permission is a miss: the IOMMU decides (and faults).
    const usable = e && (write ? e.write : e.read) ? e : undefined;
    if (count) (usable ? this.hits : this.misses).inc({ bdf });
    return usable;
  }

  insert(bdf: string, iova: bigint, entry: IotlbEntry): void {
    if (this.entries.size >= MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(Iotlb.key(bdf, iova >> BigInt(PAGE_SHIFT)), entry);
  }

  /**
   * Caches `run` from `iova` on where the page holds no entry yet (an
   * IOMMU's note of new mappings: a hint that never replaces what is cached,
   * stale or not; only an invalidation drops an entry). Returns pages cached.
   */
  prime(bdf: string, iova: bigint, run: readonly IotlbEntry[]): number {
    const first = iova >> BigInt(PAGE_SHIFT);
    let n = 0;
    for (let i = 0; i < run.length; i++) {
      const page = first + BigInt(i);
      if (this.entries.has(Iotlb.key(bdf, page))) continue;
      this.insert(bdf, page << BigInt(PAGE_SHIFT), run[i]!);
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
    const first = iova >> BigInt(PAGE_SHIFT);
    let n = 0;
    for (const e of run) {
      const page = first + BigInt(n);
      if (this.invalidatedSince(bdf, page, since)) break;
      this.insert(bdf, page << BigInt(PAGE_SHIFT), e);
      n++;
    }
    return n;
  }

  /** Whether an invalidation after generation `since` may have covered the page. */
  private invalidatedSince(bdf: string, page: bigint, since: number): boolean {
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
    const first = iova >> BigInt(PAGE_SHIFT);
    this.generation++;
    this.recent.push({ gen: this.generation, bdf, first, end: first + BigInt(pages) });
    if (this.recent.length > RECENT_INVALIDATIONS) this.floor = this.recent.shift()!.gen;
    let dropped = 0;
    if (pages <= this.entries.size) {
      for (let i = 0; i < pages; i++) {
        if (this.entries.delete(Iotlb.key(bdf, first + BigInt(i)))) dropped++;
      }
      return dropped;
    }
    const end = first + BigInt(pages);
    for (const k of [...this.entries.keys()]) {
      const [b, p] = k.split('/');
      const page = BigInt(`0x${p ?? '0'}`);
      if (b === bdf && page >= first && page < end && this.entries.delete(k)) dropped++;
    }
    return dropped;
  }

  clear(): void {
    this.generation++;
    this.floor = this.generation;
    this.recent.length = 0;
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
