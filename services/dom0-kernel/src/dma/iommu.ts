// DMA API over an IOMMU (Linux dma-iommu.c): dom0 picks an IOVA from its own
// allocator and asks Xen to map its pfns there (Xen translates pfn → mfn,
// checks ownership and programs the IOMMU); unmapped after completion.
import {
  PAGE_SHIFT,
  addOffset,
  crossing,
  machineOfFrame,
  mfn,
  pageOffset,
  toHex,
  type BusAddr,
  type PseudoPhysAddr,
} from '@nestlab/addr';
import { IommuMapHypercall, IommuUnmapHypercall } from '@nestlab/protocol';
import { Dom0Error } from '../errors.js';
import { DOM0_DOMID } from '../mm/cpu-memory.js';
import { IovaAllocator } from './iova-allocator.js';
import {
  pagesFor,
  type DmaDirection,
  type DmaEnv,
  type DmaMapping,
  type DmaPolicyImpl,
} from './policy.js';

/** pseudo-physical → IOVA, by a mapping dom0 had Xen program into the IOMMU. */
export const iommuMapIova = crossing({
  fn: 'iommuMapIova',
  from: 'pseudo_phys',
  to: 'bus',
  by: 'iommu',
});

interface IommuHandle {
  iova: BusAddr;
  pages: number;
}

export function iommuPolicy(env: DmaEnv, iovas = new IovaAllocator()): DmaPolicyImpl {
  const opts = env.timeoutMs === undefined ? {} : { timeoutMs: env.timeoutMs };

  async function mapPages(
    pseudo: PseudoPhysAddr,
    len: number,
    dir: DmaDirection,
    what: 'ring' | 'buffer',
  ): Promise<DmaMapping> {
    const firstPfn = Number(pseudo >> BigInt(PAGE_SHIFT));
    const pages = pagesFor(pageOffset(pseudo) + len);
    const pfns = Array.from({ length: pages }, (_, i) => firstPfn + i);
    const iova = iovas.alloc(pages);
    // On failure Xen may or may not have mapped it: the IOVA is never handed out again.
    const reply = await env.bus.request(
      IommuMapHypercall,
      { domain: DOM0_DOMID, bdf: env.bdf, iova: toHex(iova), pfns, write: dir !== 'to-device' },
      opts,
    );
    const mfns = reply.head.mfns;
    if (mfns.length !== pages) {
      throw new Dom0Error('BAD_REPLY', `iommu_map mapped ${mfns.length} pages, asked ${pages}`);
    }
    const bus = addOffset(iova, pageOffset(pseudo));
    const t = iommuMapIova.ok(pseudo, bus);
    env.ledger.append({ what, bus: toHex(bus), len, pseudo: toHex(pseudo), mfns });
    const handle: IommuHandle = { iova, pages };
    return {
      pseudo,
      len,
      dir,
      bus,
      machine: machineOfFrame(mfn(mfns[0]!), pageOffset(pseudo)),
      by: 'iommu',
      steps: [t.step],
      bounce: null,
      handle,
    };
  }

  async function unmapPages(h: IommuHandle): Promise<void> {
    await env.bus.request(
      IommuUnmapHypercall,
      { domain: DOM0_DOMID, bdf: env.bdf, iova: toHex(h.iova), pages: h.pages },
      opts,
    );
    // Only after the unmap (and its IOTLB invalidation) succeeded may the IOVA be reused.
    iovas.release(h.iova, h.pages);
  }

  return {
    name: 'iommu',
    async init() {},
    async allocCoherent(bytes) {
      const pages = env.pages.alloc(pagesFor(bytes));
      try {
        const mapping = await mapPages(pages.addr, bytes, 'bidirectional', 'ring');
        return { pages, bytes, mapping };
      } catch (err) {
        env.pages.release(pages);
        throw err;
      }
    },
    async freeCoherent(region) {
      await unmapPages(region.mapping.handle as IommuHandle);
      env.pages.release(region.pages);
    },
    map: (pseudo, len, dir) => mapPages(pseudo, len, dir, 'buffer'),
    unmap: (m) => unmapPages(m.handle as IommuHandle),
  };
}
