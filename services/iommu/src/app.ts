import type { ServiceModule } from '@nestlab/service-kit';

/** The IOMMU offered by L0: per-device translation domains, page tables, IOTLB invalidation, faults. */
export function createIommu(): ServiceModule {
  return {
    name: 'iommu',
    token: 'iommu',
    defaultAdminPort: 7704,
    start(ctx) {
      ctx.log.debug('handlers registered');
    },
    state: () => ({}),
  };
}
