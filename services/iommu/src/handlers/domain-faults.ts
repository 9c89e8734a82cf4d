// The IOMMU's domain faults (issue #8), armed through FaultControl.iommu.inject:
//  stale-iotlb:     the next `count` IOTLB invalidations are lost (or late by
//                   `delayMs`): the unmap replies as usual, but the DMA
//                   engine keeps translating through its cached entry.
//  unmap-in-flight: the newest live mapping is unmapped (properly
//                   invalidated) under the device, as a buggy driver or a
//                   hostile hypervisor would; the device's DMA then faults.
import { PAGE_SHIFT } from '@nestlab/addr';
import { Countdown, afterTurn } from '@nestlab/service-kit';
import type { IommuService, Invalidation } from '../iommu-service.js';
import type { LiveMap } from '../live-maps.js';

const hex = (n: number | bigint) => `0x${n.toString(16)}`;
const iovaOf = (page: number) => BigInt(page) << BigInt(PAGE_SHIFT);

export function registerDomainFaults(iommu: IommuService): void {
  const { faults, log } = iommu.ctx;

  faults.on('stale-iotlb', (req) => {
    const count = req.count ?? 1;
    const arm = new Countdown(req.after ?? 0, count);
    const late = req.delayMs;
    iommu.onInvalidate = (inv: Invalidation) => {
      if (!arm.hit()) return false;
      const what = `${inv.bdf} iova ${inv.iova} +${inv.pages} pages (mfn ${inv.mfn === undefined ? 'none' : hex(inv.mfn)})`;
      if (late === undefined) {
        faults.fired('stale-iotlb', `${what}: IOTLB invalidation lost`);
      } else {
        faults.fired('stale-iotlb', `${what}: IOTLB invalidation late by ${late} ms`);
        setTimeout(() => iommu.invalidate(inv.bdf, [{ iova: inv.iova, pages: inv.pages }]), late);
      }
      return true;
    };
    return count;
  });

  faults.on('unmap-in-flight', async (req) => {
    let left = req.count ?? 1;
    const after = req.after ?? 0;
    if (after === 0) {
      const now = iommu.live.newest(iommu.tables);
      if (now) {
        await unmapUnder(iommu, now);
        left--;
      }
    }
    const arm = new Countdown(after, left);
    // Strikes right after the map's reply is sent: the driver believes the
    // buffer is mapped and hands it to the device.
    iommu.onMapped = (m: LiveMap) => {
      if (!arm.hit()) return;
      afterTurn(
        () => unmapUnder(iommu, m),
        (err) => log.warn({ err: (err as Error).message }, 'unmap-in-flight failed'),
      );
    };
    return left;
  });
}

async function unmapUnder(iommu: IommuService, m: LiveMap): Promise<void> {
  const mfn = iommu.tables.lookup(m.bdf, m.first)?.mfn;
  const iova = hex(iovaOf(m.first));
  const unmapped = iommu.unmap(m.bdf, m.first, m.pages);
  iommu.invalidate(m.bdf, [{ iova, pages: m.pages }]);
  // Reported once the invalidation is at the server, as an unmap's reply would be.
  await iommu.ctx.bus.nc.flush();
  iommu.ctx.faults.fired(
    'unmap-in-flight',
    `${m.bdf} iova ${iova} +${unmapped} pages (mfn ${mfn === undefined ? 'none' : hex(mfn)}) unmapped under the device`,
  );
}
