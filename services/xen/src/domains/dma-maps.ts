// The IOMMU mappings Xen programmed for its domains (iommu_map hypercalls),
// newest last: what a domain relies on after probe, and what the p2m-change
// fault picks from (the newest DMA-mapped page).

export interface DmaMap {
  readonly domain: number;
  readonly bdf: string;
  /** IOVA of the first page, hex. */
  readonly iova: string;
  readonly pfns: readonly number[];
  /** The machine frames the IOMMU was given, as of the map. */
  readonly mfns: readonly number[];
  readonly write: boolean;
}

const MAX_TRACKED = 65_536;
const PAGE = 4096n;
const key = (bdf: string, iova: bigint) => `${bdf}/${iova.toString(16)}`;

export class DmaMaps {
  // Insertion order is map order: the last entry is the newest.
  private readonly maps = new Map<string, DmaMap>();

  add(m: DmaMap): void {
    const k = key(m.bdf, BigInt(m.iova));
    this.maps.delete(k);
    this.maps.set(k, m);
    if (this.maps.size > MAX_TRACKED) {
      const oldest = this.maps.keys().next().value;
      if (oldest !== undefined) this.maps.delete(oldest);
    }
  }

  /** Forgets the mappings that start inside the unmapped range. */
  remove(bdf: string, iova: string, pages: number): void {
    const lo = BigInt(iova);
    const hi = lo + BigInt(pages) * PAGE;
    for (const [k, m] of this.maps) {
      const at = BigInt(m.iova);
      if (m.bdf === bdf && at >= lo && at < hi) this.maps.delete(k);
    }
  }

  newestOf(domain: number): DmaMap | undefined {
    const all = [...this.maps.values()];
    for (let i = all.length - 1; i >= 0; i--) if (all[i]!.domain === domain) return all[i];
    return undefined;
  }

  list(): DmaMap[] {
    return [...this.maps.values()];
  }

  get size(): number {
    return this.maps.size;
  }
}
