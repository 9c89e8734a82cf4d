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

/** Map `pages` 4 KiB pages from IOVA to machine frames (consecutive frames unless `mfns` is given). */
export const IommuMap = requestMessage({
  name: 'iommu.map',
  service: 'iommu',
  object: 'pt',
  verb: 'map',
  request: Obj({
    bdf: Bdf,
    iova: HexAddr,
    mfns: Type.Array(Count, { minItems: 1, maxItems: 1024 }),
    read: Type.Boolean(),
    write: Type.Boolean(),
  }),
  reply: Obj({ mapped: Count }),
});

/** Unmap, then invalidate: the IOTLB event goes out before the reply. */
export const IommuUnmap = requestMessage({
  name: 'iommu.unmap',
  service: 'iommu',
  object: 'pt',
  verb: 'unmap',
  request: Obj({ bdf: Bdf, iova: HexAddr, pages: Type.Integer({ minimum: 1, maximum: 1024 }) }),
  reply: Obj({ unmapped: Count }),
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
  }),
});

/** IOTLB invalidation for a range; DMA engines drop cached entries on it. */
export const IotlbInvalidate = eventMessage({
  name: 'iommu.iotlb.invalidate',
  service: 'iommu',
  object: 'iotlb',
  verb: 'invalidate',
  request: Obj({ bdf: Bdf, iova: HexAddr, pages: Count }),
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
