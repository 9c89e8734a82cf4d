import { Type, type Static } from '@sinclair/typebox';
import { Count, HexAddr, Obj } from '../schema-kit.js';
import { eventMessage, requestMessage } from '../message.js';
import { Bdf } from './common.js';

export const IommuMode = Type.Union([
  Type.Literal('off'),
  Type.Literal('passthrough'),
  Type.Literal('translate'),
]);
export type IommuMode = Static<typeof IommuMode>;

export const IommuConfigure = requestMessage({
  name: 'iommu.stack.configure',
  service: 'iommu',
  object: 'stack',
  verb: 'configure',
  request: Obj({ mode: IommuMode }),
  reply: Obj({ mode: IommuMode }),
});

/** Bounds of a multi-range (map_sg-like) map or unmap, here and in the Xen hypercalls. */
export const MAX_DMA_RANGES = 256;
export const MAX_RANGE_PAGES = 1024;
/** Pages after the asked one a translate reply may carry (an ATS-like prefetch). */
export const MAX_TRANSLATE_RUN = 64;

/** One IOVA range to unmap or invalidate. */
export const IovaRange = Obj({
  iova: HexAddr,
  pages: Type.Integer({ minimum: 1, maximum: MAX_RANGE_PAGES }),
});
export type IovaRange = Static<typeof IovaRange>;

/** One IOVA range and the machine frames backing its pages (`mfns[i]` backs page i). */
export const MappedRange = Obj({
  iova: HexAddr,
  mfns: Type.Array(Count, { minItems: 1, maxItems: MAX_RANGE_PAGES }),
  read: Type.Boolean(),
  write: Type.Boolean(),
});
export type MappedRange = Static<typeof MappedRange>;

/**
 * Map IOVA ranges to machine frames, one range per buffer (`mfns[i]` backs
 * page i of the range). All or nothing: every range is checked (alignment,
 * no page already present, no overlap between ranges) before any is applied.
 */
export const IommuMap = requestMessage({
  name: 'iommu.map',
  service: 'iommu',
  object: 'pt',
  verb: 'map',
  request: Obj({
    bdf: Bdf,
    ranges: Type.Array(MappedRange, { minItems: 1, maxItems: MAX_DMA_RANGES }),
  }),
  reply: Obj({ mapped: Count }),
});

/**
 * Unmap ranges, then invalidate them: one IOTLB event for the whole list goes
 * out before the reply. Every range is checked before any is cleared; pages
 * that were not mapped are counted, not an error.
 */
export const IommuUnmap = requestMessage({
  name: 'iommu.unmap',
  service: 'iommu',
  object: 'pt',
  verb: 'unmap',
  request: Obj({
    bdf: Bdf,
    ranges: Type.Array(IovaRange, { minItems: 1, maxItems: MAX_DMA_RANGES }),
  }),
  reply: Obj({ unmapped: Count }),
  // The driver may reuse the IOVAs once it has the reply, so every IOTLB must
  // have been told to drop them by then (Linux: iommu_unmap() -> iotlb_sync).
  flushBeforeReply: true,
});

/** A page's translation as the IOTLB caches it. */
export const IotlbPage = Obj({
  /** Machine address of the page's first byte. */
  machinePage: HexAddr,
  read: Type.Boolean(),
  write: Type.Boolean(),
});

/**
 * The DMA engine's IOTLB miss: translate one IOVA page. A fault is an error
 * reply with code IOMMU_FAULT_NOT_PRESENT or IOMMU_FAULT_PERMISSION (kind guest)
 * and is logged; the access must not be performed.
 */
export const IommuTranslate = requestMessage({
  name: 'iommu.translate',
  service: 'iommu',
  object: 'pt',
  verb: 'translate',
  request: Obj({ bdf: Bdf, iova: HexAddr, write: Type.Boolean() }),
  reply: Obj({
    /** Machine address of the IOVA (page base + offset). */
    machine: HexAddr,
    read: Type.Boolean(),
    write: Type.Boolean(),
    /** 'passthrough' mode translates by identity. */
    by: Type.Union([Type.Literal('iommu'), Type.Literal('identity')]),
    /**
     * The mapped pages right after the asked one, in order, up to the first
     * hole (a prefetch, as ATS range responses or VT-d's page-walk caching
     * allow): the engine may cache them all.
     */
    following: Type.Optional(Type.Array(IotlbPage, { maxItems: MAX_TRANSLATE_RUN })),
  }),
});

/**
 * The IOMMU's note of mappings it just created, sent before it answers the
 * map (as an emulated IOMMU in caching mode notifies its device-side caches
 * of new mappings, QEMU's IOMMU_NOTIFIER_MAP): a DMA engine may cache the
 * pages it does not hold yet, so the device's first access to a fresh IOVA
 * needs no translate round trip. An entry already cached is kept (a hint
 * never overrides what the cache holds; only an invalidation drops it).
 */
export const IotlbPrime = eventMessage({
  name: 'iommu.iotlb.prime',
  service: 'iommu',
  object: 'iotlb',
  verb: 'prime',
  request: Obj({
    bdf: Bdf,
    ranges: Type.Array(MappedRange, { minItems: 1, maxItems: MAX_DMA_RANGES }),
  }),
});

/** IOTLB invalidation for a list of ranges; DMA engines drop cached entries on it. */
export const IotlbInvalidate = eventMessage({
  name: 'iommu.iotlb.invalidate',
  service: 'iommu',
  object: 'iotlb',
  verb: 'invalidate',
  request: Obj({
    bdf: Bdf,
    ranges: Type.Array(IovaRange, { minItems: 1, maxItems: MAX_DMA_RANGES }),
  }),
});

export const IommuFault = Obj({
  seq: Count,
  bdf: Bdf,
  iova: HexAddr,
  write: Type.Boolean(),
  reason: Type.Union([
    Type.Literal('IOMMU_FAULT_NOT_PRESENT'),
    Type.Literal('IOMMU_FAULT_PERMISSION'),
  ]),
  atMs: Count,
});

export const IommuFaults = requestMessage({
  name: 'iommu.faults',
  service: 'iommu',
  object: 'fault',
  verb: 'list',
  request: Obj({ since: Count }),
  reply: Obj({ faults: Type.Array(IommuFault), next: Count }),
});

/**
 * A side-effect-free look at the page tables (no fault logged, no IOTLB fill):
 * what, if anything, a bus address maps to for a device. The oracle asks it
 * when it judges an access, so the IOMMU's view is part of the verdict.
 */
export const IommuLookup = requestMessage({
  name: 'iommu.lookup',
  service: 'iommu',
  object: 'pt',
  verb: 'lookup',
  request: Obj({ bdf: Bdf, iova: HexAddr }),
  reply: Obj({
    mode: IommuMode,
    mapped: Type.Boolean(),
    machine: Type.Union([HexAddr, Type.Null()]),
    read: Type.Boolean(),
    write: Type.Boolean(),
  }),
});
