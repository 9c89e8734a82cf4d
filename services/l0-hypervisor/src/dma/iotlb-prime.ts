// The IOMMU's note of new mappings (IotlbPrime, sent before it answers the
// map): the IOTLB caches the pages it does not hold, so the device's first
// access to a fresh IOVA needs no translate round trip. Handled on arrival,
// in order with the IOMMU's invalidations (both come from the same sender).
import { PAGE_SHIFT, parseHex } from '@nestlab/addr';
import { IotlbPrime, type MappedRange } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import type { Iotlb, IotlbEntry } from './iotlb.js';

const PAGE_SHIFT_N = BigInt(PAGE_SHIFT);

/** The IOTLB entries of one primed range, page by page. */
export function primedEntries(r: MappedRange): IotlbEntry[] {
  return r.mfns.map((m) => ({
    machinePage: BigInt(m) << PAGE_SHIFT_N,
    read: r.read,
    write: r.write,
    by: 'iommu' as const,
  }));
}

export function registerIotlbPrime(bus: Bus, iotlb: Iotlb): void {
  bus.handle(IotlbPrime, ({ head }) => {
    for (const r of head.ranges) iotlb.prime(head.bdf, parseHex('bus', r.iova), primedEntries(r));
  });
}
