// Per-device translation domains (keyed by requester id, here the BDF):
// IOVA page -> {mfn, read, write}. Stored like a real IOMMU's last level:
// leaves of 512 entries in typed arrays, so a million mapped pages cost a few
// MiB, and a leaf is dropped once it is empty.
import { IommuError } from './errors.js';

const LEAF = 512;
const PRESENT = 1;
const READ = 2;
const WRITE = 4;

interface Leaf {
  readonly mfn: Float64Array;
  readonly perm: Uint8Array;
  used: number;
}

export interface PageEntry {
  readonly mfn: number;
  readonly read: boolean;
  readonly write: boolean;
}

export class DevicePageTable {
  private readonly leaves = new Map<number, Leaf>();
  mapped = 0;

  get(page: number): PageEntry | undefined {
    const leaf = this.leaves.get(Math.floor(page / LEAF));
    const i = page % LEAF;
    const perm = leaf?.perm[i] ?? 0;
    if (!leaf || !(perm & PRESENT)) return undefined;
    return { mfn: leaf.mfn[i]!, read: (perm & READ) !== 0, write: (perm & WRITE) !== 0 };
  }

  set(page: number, e: PageEntry): void {
    const key = Math.floor(page / LEAF);
    let leaf = this.leaves.get(key);
    if (!leaf) {
      leaf = { mfn: new Float64Array(LEAF), perm: new Uint8Array(LEAF), used: 0 };
      this.leaves.set(key, leaf);
    }
    const i = page % LEAF;
    if (!(leaf.perm[i]! & PRESENT)) {
      leaf.used++;
      this.mapped++;
    }
    leaf.mfn[i] = e.mfn;
    leaf.perm[i] = PRESENT | (e.read ? READ : 0) | (e.write ? WRITE : 0);
  }

  /** Returns whether the page was mapped. */
  clear(page: number): boolean {
    const key = Math.floor(page / LEAF);
    const leaf = this.leaves.get(key);
    const i = page % LEAF;
    if (!leaf || !(leaf.perm[i]! & PRESENT)) return false;
    leaf.perm[i] = 0;
    leaf.used--;
    this.mapped--;
    if (leaf.used === 0) this.leaves.delete(key);
    return true;
  }

  /** Every present entry, as [page, entry]. */
  *entries(): Generator<[number, PageEntry]> {
    for (const [key, leaf] of this.leaves) {
      for (let i = 0; i < LEAF; i++) {
        const perm = leaf.perm[i]!;
        if (perm & PRESENT)
          yield [
            key * LEAF + i,
            { mfn: leaf.mfn[i]!, read: (perm & READ) !== 0, write: (perm & WRITE) !== 0 },
          ];
      }
    }
  }
}

export class PageTables {
  private readonly domains = new Map<string, DevicePageTable>();

  /** Maps consecutive pages from `firstPage`; all or nothing: refuses if any page is present. */
  map(
    bdf: string,
    firstPage: number,
    mfns: readonly number[],
    read: boolean,
    write: boolean,
  ): number {
    const pt = this.domains.get(bdf) ?? new DevicePageTable();
    for (let i = 0; i < mfns.length; i++) {
      if (pt.get(firstPage + i))
        throw new IommuError(
          'IOVA_IN_USE',
          `${bdf}: iova page 0x${(firstPage + i).toString(16)} is already mapped`,
        );
    }
    this.domains.set(bdf, pt);
    mfns.forEach((mfn, i) => pt.set(firstPage + i, { mfn, read, write }));
    return mfns.length;
  }

  /** Unmaps what is mapped; `absent` counts pages that were not (not an error). */
  unmap(bdf: string, firstPage: number, pages: number): { unmapped: number; absent: number } {
    const pt = this.domains.get(bdf);
    let unmapped = 0;
    for (let i = 0; i < pages; i++) if (pt?.clear(firstPage + i)) unmapped++;
    if (pt && pt.mapped === 0) this.domains.delete(bdf);
    return { unmapped, absent: pages - unmapped };
  }

  lookup(bdf: string, page: number): PageEntry | undefined {
    return this.domains.get(bdf)?.get(page);
  }

  clear(): void {
    this.domains.clear();
  }

  /** Every present entry of every domain (what a snapshot keeps). */
  *entries(): Generator<{ bdf: string; page: number } & PageEntry> {
    for (const [bdf, pt] of this.domains)
      for (const [page, e] of pt.entries()) yield { bdf, page, ...e };
  }

  get mappedPages(): number {
    let n = 0;
    for (const pt of this.domains.values()) n += pt.mapped;
    return n;
  }

  summary(): { bdf: string; mappedPages: number }[] {
    return [...this.domains].map(([bdf, pt]) => ({ bdf, mappedPages: pt.mapped }));
  }
}
