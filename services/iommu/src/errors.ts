// The package's error family (shared/protocol errorFamily): every code has a
// fixed kind so the Bus turns a throw into a typed error reply.
import { errorFamily, type ErrorKind } from '@nestlab/protocol';

export const IOMMU_ERROR_CODE_KIND = {
  /** No mapping for the IOVA page in the device's domain (VT-d fault reason 'not present'). */
  IOMMU_FAULT_NOT_PRESENT: 'guest',
  /** The mapping exists but does not allow the access (a write to a read-only page). */
  IOMMU_FAULT_PERMISSION: 'guest',
  /** The IOMMU is off: nothing to translate or program. */
  IOMMU_OFF: 'input',
  /** An IOVA that is not page-aligned (map/unmap) or runs past 2^64. */
  BAD_IOVA: 'input',
  /** A machine frame number that cannot be an address. */
  BAD_MFN: 'input',
  /** Mapping over a present entry: unmap (and invalidate) first. */
  IOVA_IN_USE: 'input',
} as const satisfies Record<string, ErrorKind>;

export const IommuError = errorFamily('IommuError', IOMMU_ERROR_CODE_KIND);
export type IommuError = InstanceType<typeof IommuError>;
export type IommuErrorCode = keyof typeof IOMMU_ERROR_CODE_KIND;
