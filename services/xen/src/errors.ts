// The package's error family (shared/protocol errorFamily): every code has a
// fixed kind so the Bus turns a throw into a typed error reply.
import { errorFamily, type ErrorKind } from '@nestlab/protocol';

export const XEN_ERROR_CODE_KIND = {
  /** A hypercall or query arrived before XenConfigure built the domains. */
  NOT_CONFIGURED: 'input',
  /** XenConfigure asked for sizes that cannot be laid out. */
  BAD_CONFIG: 'input',
  /** The domain id names no domain Xen runs. */
  NO_SUCH_DOMAIN: 'input',
  /** A hypercall that only makes sense under Xen, with present=false (plain guest). */
  XEN_ABSENT: 'input',
  /** An address or IOVA that is not page-aligned or does not fit. */
  BAD_ADDRESS: 'input',
  /** The same pfn twice in one request. */
  DUPLICATE_PFN: 'input',
  /** The pfn has no P2M entry (a hole, or beyond the domain's memory). */
  PFN_UNMAPPED: 'guest',
  /** The pfn's machine frame is not owned by the calling domain. */
  NOT_OWNER: 'guest',
  /** No run of free machine frames large enough (XENMEM_exchange -ENOMEM). */
  NO_MEMORY: 'transient',
  /** All 4095 event-channel ports of the domain are bound. */
  NO_FREE_PORT: 'transient',
  /** L0 did not take the CpuFrames update (no responder, timeout, error). */
  L0_UNAVAILABLE: 'transient',
  /** The iommu service did not answer a map or unmap. */
  IOMMU_UNAVAILABLE: 'transient',
  /** A table would exceed what one message can carry; a bug or an absurd configuration. */
  INTERNAL: 'internal',
} as const satisfies Record<string, ErrorKind>;

export const XenError = errorFamily('XenError', XEN_ERROR_CODE_KIND);
export type XenError = InstanceType<typeof XenError>;
export type XenErrorCode = keyof typeof XEN_ERROR_CODE_KIND;
