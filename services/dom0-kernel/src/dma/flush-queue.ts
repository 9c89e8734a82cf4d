// Deferred IOVA unmaps, as Linux's lazy IOMMU mode (iommu.strict=0,
// dma-iommu.c's flush queue): dma_unmap only queues the range; the queue goes
// out as one multi-range unmap when it holds `size` entries or `timeoutMs`
// after its first entry. An IOVA is released for reuse only once the unmap
// (and with it the IOTLB invalidation) is acknowledged, never earlier, so a
// device can never reach a new buffer through an old IOTLB entry.
// Strict mode sends what is queued at the end of the current turn and the
// caller waits for it (iommu.strict=1, still one message per turn).
import { PAGE_SHIFT, toHex, type BusAddr } from '@nestlab/addr';
import { MAX_DMA_RANGES, MAX_RANGE_PAGES, type IovaRange } from '@nestlab/protocol';
import { afterTurn } from '@nestlab/service-kit';

export interface UnmapEntry {
  readonly iova: BusAddr;
  readonly pages: number;
}

export interface FlushQueueOptions {
  readonly strict: boolean;
  /** Entries that make the queue go out at once (Linux: IOVA_FQ_SIZE). */
  readonly size: number;
  /** The longest an entry waits (Linux: IOVA_FQ_TIMEOUT, 10 ms). */
  readonly timeoutMs: number;
}

export const LAZY_FLUSH: FlushQueueOptions = { strict: false, size: 64, timeoutMs: 10 };

/** The unmaps of one call (an I/O's buffers): one promise for them all. */
interface Queued {
  readonly entries: readonly UnmapEntry[];
  readonly resolve: () => void;
  readonly reject: (err: unknown) => void;
}

/** Sorted entries as ranges, adjacent ones merged (a batch was mapped contiguously). */
export function mergeRanges(entries: readonly UnmapEntry[]): IovaRange[] {
  const sorted = [...entries].sort((a, b) => (a.iova < b.iova ? -1 : a.iova > b.iova ? 1 : 0));
  const out: { iova: BusAddr; pages: number }[] = [];
  for (const e of sorted) {
    const last = out[out.length - 1];
    const end = last ? last.iova + (BigInt(last.pages) << BigInt(PAGE_SHIFT)) : -1n;
    if (last && end === e.iova && last.pages + e.pages <= MAX_RANGE_PAGES) last.pages += e.pages;
    else out.push({ iova: e.iova, pages: e.pages });
  }
  return out.map((r) => ({ iova: toHex(r.iova), pages: r.pages }));
}

export class FlushQueue {
  private queued: Queued[] = [];
  /** Entries in `queued`. */
  private entries = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private soon = false;
  /** Unmaps sent (each one hypercall), and entries they carried. */
  flushes = 0;
  flushed = 0;

  constructor(
    private readonly send: (ranges: IovaRange[]) => Promise<void>,
    /** Gives the IOVAs back to the allocator; called only after the unmap was acknowledged. */
    private readonly release: (e: UnmapEntry) => void,
    readonly opts: FlushQueueOptions,
  ) {}

  /** Queues an unmap; resolves once it was acknowledged and the IOVA released. */
  add(entry: UnmapEntry): Promise<void> {
    return this.addAll([entry]);
  }

  /** Queues several unmaps; resolves once all were acknowledged and their IOVAs released. */
  addAll(entries: readonly UnmapEntry[]): Promise<void> {
    if (entries.length === 0) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      this.queued.push({ entries, resolve, reject });
      this.entries += entries.length;
      if (this.opts.strict || this.entries >= this.opts.size) this.flushSoon();
      else this.timer ??= setTimeout(() => this.flush(), this.opts.timeoutMs);
    });
  }

  /** Sends what is queued at the end of this turn (what else this turn unmaps joins it). */
  flushSoon(): void {
    if (this.soon) return;
    this.soon = true;
    // flush() never throws (each group's failure rejects that group's callers).
    afterTurn(
      () => this.flush(),
      () => undefined,
    );
  }

  get pending(): number {
    return this.entries;
  }

  private flush(): void {
    this.soon = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const all = this.queued;
    this.queued = [];
    this.entries = 0;
    // Groups of at most MAX_DMA_RANGES entries; one call's entries stay together.
    let group: Queued[] = [];
    let n = 0;
    for (const q of all) {
      if (n > 0 && n + q.entries.length > MAX_DMA_RANGES) {
        void this.sendOne(group, n);
        group = [];
        n = 0;
      }
      group.push(q);
      n += q.entries.length;
    }
    if (group.length > 0) void this.sendOne(group, n);
  }

  private async sendOne(group: readonly Queued[], entries: number): Promise<void> {
    this.flushes++;
    this.flushed += entries;
    try {
      await this.send(mergeRanges(group.flatMap((q) => q.entries)));
    } catch (err) {
      // The ranges may still be mapped: their IOVAs are not released (the caller may retry).
      for (const q of group) q.reject(err);
      return;
    }
    for (const q of group) {
      let failed: { err: unknown } | null = null;
      for (const e of q.entries) {
        try {
          this.release(e);
        } catch (err) {
          failed ??= { err };
        }
      }
      if (failed === null) q.resolve();
      else q.reject(failed.err);
    }
  }
}
