import type { DmaPolicy } from '@nestlab/protocol';
import { iommuPolicy } from './iommu.js';
import { legacyPolicy } from './legacy.js';
import type { DmaEnv, DmaPolicyImpl } from './policy.js';
import { xenSwiotlbPolicy } from './xen-swiotlb.js';

export function createDmaPolicy(name: DmaPolicy, env: DmaEnv): DmaPolicyImpl {
  switch (name) {
    case 'legacy':
      return legacyPolicy(env);
    case 'xen-swiotlb':
      return xenSwiotlbPolicy(env);
    case 'iommu':
      return iommuPolicy(env);
  }
}
