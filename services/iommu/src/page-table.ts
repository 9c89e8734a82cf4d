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

/** One range of a map request: `mfns[i]` backs page `firstPage + i`. */
export interface MapRange {
  readonly firstPage: number;
  readonly mfns: readonly number[];
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
    return this.mapAll(bdf, [{ firstPage, mfns, read, write }]);
  }

  /**
   * Maps several ranges; all or nothing: refuses the whole list (and changes
   * nothing) if any page is present or two ranges overlap. Returns pages mapped.
   */
  mapAll(bdf: string, ranges: readonly MapRange[]): number {
    const pt = this.domains.get(bdf) ?? new DevicePageTable();
    const asked = ranges.length > 1 ? new Set<number>() : undefined;
    for (const r of ranges) {
      for (let i = 0; i < r.mfns.length; i++) {
        const page = r.firstPage + i;
        const dup = asked?.has(page) ?? false;
        if (dup || pt.get(page))
          throw new IommuError(
            'IOVA_IN_USE',
            `${bdf}: iova page 0x${page.toString(16)} is ${dup ? 'in two ranges of the request' : 'already mapped'}`,
          );
        asked?.add(page);
      }
    }
    this.domains.set(bdf, pt);
    let mapped = 0;
    for (const { firstPage, mfns, read, write } of ranges) {
      mfns.forEach((mfn, i) => pt.set(firstPage + i, { mfn, read, write }));
      mapped += mfns.length;
    }
    return mapped;
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

  /** The present entries from `page` on, up to `max` of them or the first hole. */
  run(bdf: string, page: number, max: number): PageEntry[] {
    const pt = this.domains.get(bdf);
    const out: PageEntry[] = [];
    for (let e = pt?.get(page); e && out.length < max; e = pt?.get(page + out.length)) out.push(e);
    return out;
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
