import type { ServiceModule } from '@nestlab/service-kit';
import { IommuService } from './handlers.js';

/** The IOMMU offered by L0: per-device translation domains, page tables, IOTLB invalidation, faults. */
export function createIommu(): ServiceModule {
  let iommu: IommuService | undefined;
  return {
    name: 'iommu',
    token: 'iommu',
    defaultAdminPort: 7704,
    start(ctx) {
      iommu = new IommuService(ctx);
      iommu.register();
      ctx.log.debug('handlers registered');
    },
    state: () => iommu?.state() ?? { mode: 'off' },
  };
}
