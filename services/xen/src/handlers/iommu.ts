// IOMMU programming on behalf of a domain (Xen's iommu_map/iommu_unmap for a
// PV domain's device): the domain names its own pfns, Xen translates them
// through the P2M, checks it owns the frames, and programs the IOMMU.
import { PAGE_SIZE, parseHex, pfn, pseudoPhysOfFrame, toHex, type BusAddr } from '@nestlab/addr';
import { IommuMap, IommuMapHypercall, IommuUnmap, IommuUnmapHypercall } from '@nestlab/protocol';
import { ATTR, recordStep } from '@nestlab/telemetry';
import { trace } from '@opentelemetry/api';
import { domOwner } from '../domains/frame-table.js';
import { mfnsOwnedBy } from '../domains/ownership.js';
import { XenError } from '../errors.js';
import { remoteFailure, type XenService } from '../xen-service.js';

const ADDR_LIMIT = 1n << 64n;

function checkIova(text: string, pages: number): BusAddr {
  const iova = parseHex('bus', text);
  if (iova % BigInt(PAGE_SIZE) !== 0n)
    throw new XenError('BAD_ADDRESS', `iova ${text} is not page-aligned`);
  if (iova + BigInt(pages * PAGE_SIZE) > ADDR_LIMIT)
    throw new XenError('BAD_ADDRESS', `iova ${text} + ${pages} pages wraps the address space`);
  return iova;
}

export function registerIommuHypercalls(xen: XenService): void {
  const { bus } = xen.ctx;

  const counted = async <T>(op: string, fn: () => Promise<T>): Promise<T> => {
    try {
      const out = await fn();
      xen.metrics.hypercalls.inc({ op, result: 'ok' });
      return out;
    } catch (err) {
      xen.metrics.hypercalls.inc({ op, result: 'error' });
      throw err;
    }
  };

  // A scatter list, all or nothing: every range is checked (alignment, every
  // pfn owned) and translated before the IOMMU is asked, and the IOMMU refuses
  // the whole list if any page is in use. Nothing is recorded unless all mapped.
  bus.handle(IommuMapHypercall, ({ head }) =>
    counted('iommu_map', async () => {
      const state = xen.require();
      const { p2m } = state.domain(head.domain);
      const owner = domOwner(head.domain);
      const ranges = head.ranges.map((r) => {
        const iova = checkIova(r.iova, r.pfns.length);
        return { ...r, iova: toHex(iova), mfns: mfnsOwnedBy(state, head.domain, r.pfns) };
      });
      const first = ranges[0]!;
      // The step (two hex strings) is built only for a span that records it.
      if (trace.getActiveSpan()?.isRecording())
        recordStep(p2m.translate(pseudoPhysOfFrame(pfn(first.pfns[0]!))).step, {
          [ATTR.addrBus]: first.iova,
          [ATTR.frameOwner]: owner,
          [ATTR.dmaRanges]: ranges.length,
        });
      try {
        await bus.request(IommuMap, {
          bdf: head.bdf,
          ranges: ranges.map((r) => ({ iova: r.iova, mfns: r.mfns, read: true, write: r.write })),
        });
      } catch (err) {
        throw remoteFailure('IOMMU_UNAVAILABLE', 'IommuMap failed', err, true);
      }
      for (const r of ranges)
        xen.mapped(state, {
          domain: head.domain,
          bdf: head.bdf,
          iova: r.iova,
          pfns: r.pfns,
          mfns: r.mfns,
          write: r.write,
        });
      return { body: { ranges: ranges.map((r) => ({ mfns: r.mfns })) } };
    }),
  );

  bus.handle(IommuUnmapHypercall, ({ head }) =>
    counted('iommu_unmap', async () => {
      const state = xen.require();
      state.domain(head.domain);
      const ranges = head.ranges.map((r) => ({
        iova: toHex(checkIova(r.iova, r.pages)),
        pages: r.pages,
      }));
      try {
        const reply = await bus.request(IommuUnmap, { bdf: head.bdf, ranges });
        for (const r of ranges) {
          state.dmaMaps.remove(head.bdf, r.iova, r.pages);
          xen.persist({ t: 'unmap', bdf: head.bdf, iova: r.iova, pages: r.pages });
        }
        return { body: { unmapped: reply.head.unmapped } };
      } catch (err) {
        throw remoteFailure('IOMMU_UNAVAILABLE', 'IommuUnmap failed', err, true);
      }
    }),
  );
}
