import type { DmaPolicy } from '@nestlab/protocol';
import { LAZY_FLUSH } from './flush-queue.js';
import { iommuPolicy } from './iommu.js';
import { legacyPolicy } from './legacy.js';
import type { DmaEnv, DmaPolicyImpl } from './policy.js';
import { ringsOnlyPolicy } from './rings-only.js';
import { xenSwiotlbPolicy } from './xen-swiotlb.js';

/** strict (NESTLAB_IOMMU_STRICT=1): every IOMMU unmap is sent before the I/O completes (iommu.strict=1). */
export function createDmaPolicy(name: DmaPolicy, env: DmaEnv, strict: boolean): DmaPolicyImpl {
  switch (name) {
    case 'legacy':
      return legacyPolicy(env);
    case 'xen-swiotlb':
      return xenSwiotlbPolicy(env);
    case 'xen-swiotlb-rings-only':
      return ringsOnlyPolicy(env);
    case 'iommu':
      return iommuPolicy(env, { flush: { ...LAZY_FLUSH, strict } });
  }
}
