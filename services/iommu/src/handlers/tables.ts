// Programming the IOMMU: mode, map (with the IOTLB prime of the new
// mappings) and unmap (with the IOTLB invalidation an unmap owes before its reply).
import { parseHex } from '@nestlab/addr';
import { IommuConfigure, IommuMap, IommuUnmap, type IovaRange } from '@nestlab/protocol';
import type { IommuService } from '../iommu-service.js';
import { checkMfns, firstPageOf } from '../translate.js';

export function registerTables(iommu: IommuService): void {
  const { bus } = iommu.ctx;

  bus.handle(IommuConfigure, ({ head }) => {
    iommu.mode = head.mode;
    iommu.tables.clear();
    iommu.faults.clear();
    iommu.live.clear();
    iommu.persist({ t: 'cfg', mode: head.mode });
    iommu.ctx.log.info({ mode: head.mode }, 'configured');
    return { body: { mode: iommu.mode } };
  });

  // A scatter list (iommu_map_sg): every range is checked before any is applied.
  bus.handle(IommuMap, ({ head }) => {
    iommu.requireOn();
    const ranges = head.ranges.map((r) => {
      checkMfns(r.mfns);
      const firstPage = firstPageOf(parseHex('bus', r.iova), r.mfns.length);
      return { firstPage, mfns: r.mfns, read: r.read, write: r.write };
    });
    const mapped = iommu.tables.mapAll(head.bdf, ranges);
    for (const r of ranges) {
      iommu.persist({
        t: 'map',
        bdf: head.bdf,
        page: r.firstPage,
        mfns: r.mfns,
        r: r.read,
        w: r.write,
      });
      const live = { bdf: head.bdf, first: r.firstPage, pages: r.mfns.length };
      iommu.live.add(live);
      iommu.onMapped?.(live);
    }
    iommu.m.maps.inc({}, mapped);
    iommu.prime(head.bdf, head.ranges);
    return { body: { mapped } };
  });

  // Unmap, then invalidate before replying: the driver may reuse the IOVAs as
  // soon as it has the reply, so every IOTLB must have dropped them by then
  // (Linux: iommu_unmap() -> iotlb_sync before returning). One event carries
  // every range; a range the stale-iotlb fault takes over is left out of it.
  bus.handle(IommuUnmap, ({ head }) => {
    iommu.requireOn();
    const ranges = head.ranges.map((r) => ({
      ...r,
      first: firstPageOf(parseHex('bus', r.iova), r.pages),
    }));
    let unmapped = 0;
    const owed: IovaRange[] = [];
    for (const r of ranges) {
      const was = iommu.tables.lookup(head.bdf, r.first);
      unmapped += iommu.unmap(head.bdf, r.first, r.pages);
      const inv = { bdf: head.bdf, iova: r.iova, pages: r.pages, mfn: was?.mfn };
      if (!iommu.onInvalidate?.(inv)) owed.push({ iova: r.iova, pages: r.pages });
    }
    // The Bus flushes this to the server before the reply (IommuUnmap.flushBeforeReply).
    if (owed.length > 0) iommu.invalidate(head.bdf, owed);
    return { body: { unmapped } };
  });
}
