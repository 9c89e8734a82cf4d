import { Type, type Static } from '@sinclair/typebox';
import { Count, HexAddr, Obj, U16 } from '../schema-kit.js';
import { eventMessage, requestMessage } from '../message.js';
import { Bdf, ClockMs, DomId, FrameOwner } from './common.js';
import { IovaRange, MAX_DMA_RANGES, MAX_RANGE_PAGES } from './iommu.js';

export const FrameRange = Obj({ pfn: Count, mfn: Count, count: Count });

/**
 * Resets Xen for a run: machine memory size, dom0 size, the P2M seed, which
 * devices are passed through to dom0. Xen then builds dom0's P2M, the frame
 * table, and tells L0 which frames each domain's CPU may touch.
 */
export const XenConfigure = requestMessage({
  name: 'xen.stack.configure',
  service: 'xen',
  object: 'stack',
  verb: 'configure',
  request: Obj({
    /** false: a plain guest straight on L0 (no Xen): the P2M is the identity. */
    present: Type.Boolean(),
    machineBytes: Count,
    dom0Bytes: Count,
    seed: Type.Integer({ minimum: 0, maximum: 0xffffffff }),
    passthrough: Type.Array(Bdf, { maxItems: 8 }),
  }),
  reply: Obj({
    dom0Pages: Count,
    p2mRanges: Count,
    dom0MachineRanges: Type.Array(Obj({ first: HexAddr, last: HexAddr })),
  }),
});

/** A PV guest's view of its own P2M (Linux keeps it mapped; dom0 reads it at boot). */
export const P2mGet = requestMessage({
  name: 'xen.p2m.get',
  service: 'xen',
  object: 'p2m',
  verb: 'get',
  request: Obj({ domain: DomId }),
  reply: Obj({ domain: DomId, pages: Count, ranges: Type.Array(FrameRange) }),
});

/**
 * XENMEM_exchange: trade the given pseudo-physical frames for a run of
 * machine-contiguous frames (swiotlb-xen and coherent allocations need it).
 */
export const MemoryExchange = requestMessage({
  name: 'xen.hypercall.memory_exchange',
  service: 'xen',
  object: 'hypercall',
  verb: 'memory_exchange',
  request: Obj({ domain: DomId, pfns: Type.Array(Count, { minItems: 1, maxItems: 1024 }) }),
  reply: Obj({ mfnFirst: Count, updates: Type.Array(Obj({ pfn: Count, mfn: Count })) }),
});

/**
 * Map a domain's frames into a passed-through device's IOMMU domain, one IOVA
 * range per buffer (a scatter list, as Linux's iommu_map_sg). All or nothing:
 * Xen checks every range (alignment, ownership of every pfn) before it asks
 * the IOMMU, and the IOMMU refuses the whole list if any page is in use.
 * `ranges[i].mfns` of the reply answers `ranges[i]` of the request.
 */
export const IommuMapHypercall = requestMessage({
  name: 'xen.hypercall.iommu_map',
  service: 'xen',
  object: 'hypercall',
  verb: 'iommu_map',
  request: Obj({
    domain: DomId,
    bdf: Bdf,
    ranges: Type.Array(
      Obj({
        iova: HexAddr,
        pfns: Type.Array(Count, { minItems: 1, maxItems: MAX_RANGE_PAGES }),
        write: Type.Boolean(),
      }),
      { minItems: 1, maxItems: MAX_DMA_RANGES },
    ),
  }),
  reply: Obj({ ranges: Type.Array(Obj({ mfns: Type.Array(Count) })) }),
});

/** Unmap several IOVA ranges at once (one IOTLB invalidation for all of them). */
export const IommuUnmapHypercall = requestMessage({
  name: 'xen.hypercall.iommu_unmap',
  service: 'xen',
  object: 'hypercall',
  verb: 'iommu_unmap',
  request: Obj({
    domain: DomId,
    bdf: Bdf,
    ranges: Type.Array(IovaRange, { minItems: 1, maxItems: MAX_DMA_RANGES }),
  }),
  reply: Obj({ unmapped: Count }),
});

/** Bind a device's MSI-X vector to an event channel of the calling domain (PHYSDEVOP_map_pirq + bind). */
export const BindMsi = requestMessage({
  name: 'xen.hypercall.bind_msi',
  service: 'xen',
  object: 'hypercall',
  verb: 'bind_msi',
  request: Obj({ domain: DomId, bdf: Bdf, vector: U16 }),
  reply: Obj({ port: Type.Integer({ minimum: 1, maximum: 4095 }) }),
});

/** An MSI from a device model in L0, to be routed to the owning domain's event channel. */
export const Msi = eventMessage({
  name: 'xen.irq.msi',
  service: 'xen',
  object: 'irq',
  verb: 'msi',
  request: Obj({ bdf: Bdf, vector: U16 }),
});

/** Frame-table query: who owns each machine frame (for the oracle). */
export const FrameOwners = requestMessage({
  name: 'xen.frame.owner',
  service: 'xen',
  object: 'frame',
  verb: 'owner',
  request: Obj({ mfns: Type.Array(Count, { minItems: 1, maxItems: 65536 }) }),
  reply: Obj({ owners: Type.Array(FrameOwner) }),
});

/** The most frame moves Xen remembers (the oldest are forgotten first). */
export const MAX_FRAME_MOVES = 4096;

/** One frame the p2m-change fault moved: `pfn` of `domain` left machine frame `from` for `to` at `at`. */
export const FrameMove = Obj({ domain: DomId, pfn: Count, from: Count, to: Count, at: ClockMs });
export type FrameMove = Static<typeof FrameMove>;

/**
 * The frames Xen moved under the guest since it started, oldest first: the
 * oracle needs them to know which machine frame a pfn had when a device
 * access happened (an IOMMU mapping keeps the frame it was made with).
 */
export const P2mMoves = requestMessage({
  name: 'xen.p2m.moves',
  service: 'xen',
  object: 'p2m',
  verb: 'moves',
  request: Obj({}),
  reply: Obj({ moves: Type.Array(FrameMove, { maxItems: MAX_FRAME_MOVES }) }),
});
