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

/**
 * The DMA engine's cache of IOMMU translations, per (BDF, IOVA page). It must
 * honour IotlbInvalidate events, or a device keeps reaching unmapped frames.
 */
export class Iotlb {
  private readonly entries = new Map<string, IotlbEntry>();

  constructor(
    private readonly hits: Counter,
    private readonly misses: Counter,
  ) {}

  private static key(bdf: string, page: bigint): string {
    return `${bdf}/${page.toString(16)}`;
  }

  /** A cached entry that allows the access, counted as hit or miss. */
  lookup(bdf: string, iova: bigint, write: boolean): IotlbEntry | undefined {
    const e = this.entries.get(Iotlb.key(bdf, iova >> BigInt(PAGE_SHIFT)));
    // An entry without the needed permission is a miss: the IOMMU decides (and faults).
    const usable = e && (write ? e.write : e.read) ? e : undefined;
    (usable ? this.hits : this.misses).inc({ bdf });
    return usable;
  }

  insert(bdf: string, iova: bigint, entry: IotlbEntry): void {
    if (this.entries.size >= MAX_ENTRIES) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
    this.entries.set(Iotlb.key(bdf, iova >> BigInt(PAGE_SHIFT)), entry);
  }

  /** Drops the entries of `pages` pages from `iova` on; returns how many were held. */
  invalidate(bdf: string, iova: bigint, pages: number): number {
    const first = iova >> BigInt(PAGE_SHIFT);
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
    this.entries.clear();
  }

  get size(): number {
    return this.entries.size;
  }
}
