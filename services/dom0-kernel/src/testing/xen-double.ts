// A test double of the Xen hypercalls dom0 makes (P2M read, memory exchange,
// IOMMU map/unmap, MSI binding); it records calls and keeps an IOVA table so
// a test playing the device can translate bus addresses.
import {
  BindMsi,
  IommuMapHypercall,
  IommuUnmapHypercall,
  MemoryExchange,
  P2mGet,
} from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';

export interface P2mRangeSpec {
  pfn: number;
  mfn: number;
  count: number;
}

/** A P2M shaped like the one in docs/DOMAIN.md ("Xen side") but small: pfn 0x20000.. is backed by machine frames in 2-page runs, reversed. */
export function shuffledP2m(firstPfn: number, pages: number, mfnBase: number): P2mRangeSpec[] {
  const out: P2mRangeSpec[] = [];
  for (let i = 0; i < pages; i += 2) {
    out.push({ pfn: firstPfn + i, mfn: mfnBase + (pages - i - 2), count: Math.min(2, pages - i) });
  }
  return out;
}

export class XenDouble {
  readonly calls: string[] = [];
  readonly p2m = new Map<number, number>();
  /** IOVA page → mfn, as the IOMMU would hold it. */
  readonly iommu = new Map<number, { mfn: number; write: boolean }>();
  readonly ports = { config: 5, queue: 6 };
  /** While set, an unmap hypercall is recorded but neither applied nor answered until it settles. */
  unmapGate: Promise<void> | undefined;
  /** pfns an iommu_map refuses (NOT_OWNER), failing its whole list. */
  readonly refusePfns = new Set<number>();
  private nextExchange: number;

  constructor(ranges: P2mRangeSpec[], exchangeMfnBase = 0x1000) {
    for (const r of ranges) for (let i = 0; i < r.count; i++) this.p2m.set(r.pfn + i, r.mfn + i);
    this.nextExchange = exchangeMfnBase;
  }

  serve(bus: Bus): void {
    bus.handle(P2mGet, () => {
      this.calls.push('p2m_get');
      const ranges: P2mRangeSpec[] = [];
      for (const [pfn, mfn] of [...this.p2m].sort((a, b) => a[0] - b[0])) {
        const last = ranges[ranges.length - 1];
        if (last && last.pfn + last.count === pfn && last.mfn + last.count === mfn) last.count++;
        else ranges.push({ pfn, mfn, count: 1 });
      }
      return { body: { domain: 0, pages: ranges.length, ranges } };
    });
    bus.handle(MemoryExchange, ({ head }) => {
      this.calls.push(`memory_exchange:${head.pfns.length}`);
      const first = this.nextExchange;
      this.nextExchange += head.pfns.length;
      const updates = head.pfns.map((pfn, i) => ({ pfn, mfn: first + i }));
      for (const u of updates) this.p2m.set(u.pfn, u.mfn);
      return { body: { mfnFirst: first, updates } };
    });
    bus.handle(BindMsi, ({ head }) => {
      this.calls.push(`bind_msi:${head.vector}`);
      return { body: { port: head.vector === 0 ? this.ports.config : this.ports.queue } };
    });
    // One entry per hypercall: its ranges as iova:pages, comma-separated.
    bus.handle(IommuMapHypercall, ({ head }) => {
      this.calls.push(
        `iommu_map:${head.ranges.map((r) => `${r.iova}:${r.pfns.length}`).join(',')}`,
      );
      // All or nothing, as Xen: a list naming a refused pfn maps nothing.
      const refused = head.ranges.flatMap((r) => r.pfns).find((p) => this.refusePfns.has(p));
      if (refused !== undefined)
        throw Object.assign(new Error(`pfn 0x${refused.toString(16)} is not dom0's`), {
          code: 'NOT_OWNER',
          kind: 'guest',
        });
      const ranges = head.ranges.map((r) => {
        const base = Number(BigInt(r.iova) >> 12n);
        const mfns = r.pfns.map((p) => this.p2m.get(p) ?? 0);
        mfns.forEach((mfn, i) => this.iommu.set(base + i, { mfn, write: r.write }));
        return { mfns };
      });
      return { body: { ranges } };
    });
    bus.handle(IommuUnmapHypercall, async ({ head }) => {
      this.calls.push(`iommu_unmap:${head.ranges.map((r) => `${r.iova}:${r.pages}`).join(',')}`);
      if (this.unmapGate) await this.unmapGate;
      let unmapped = 0;
      for (const r of head.ranges) {
        const base = Number(BigInt(r.iova) >> 12n);
        for (let i = 0; i < r.pages; i++) this.iommu.delete(base + i);
        unmapped += r.pages;
      }
      return { body: { unmapped } };
    });
  }

  /** What the device would reach for a bus address: through the IOMMU table, or bus as machine. */
  deviceAddr(bus: bigint, viaIommu: boolean): bigint {
    if (!viaIommu) return bus;
    const e = this.iommu.get(Number(bus >> 12n));
    if (e === undefined) throw new Error(`IOMMU fault at 0x${bus.toString(16)}`);
    return (BigInt(e.mfn) << 12n) | (bus & 0xfffn);
  }
}
