import type { ServiceModule } from '@nestlab/service-kit';
import { registerDomainFaults } from './domain-faults.js';
import { IommuService } from './handlers.js';

export interface IommuOptions {
  /** Where the page tables are journaled; default NESTLAB_DATA_DIR, none: nothing survives the process. */
  dataDir?: string;
}

/** The IOMMU offered by L0: per-device translation domains, page tables, IOTLB invalidation, faults. */
export function createIommu(opts: IommuOptions = {}): ServiceModule {
  const dataDir = opts.dataDir ?? process.env['NESTLAB_DATA_DIR'];
  let iommu: IommuService | undefined;
  return {
    name: 'iommu',
    token: 'iommu',
    defaultAdminPort: 7704,
    start(ctx) {
      iommu = new IommuService(ctx, dataDir);
      iommu.restore();
      iommu.register();
      registerDomainFaults(iommu);
      ctx.log.debug('handlers registered');
    },
    state: () => iommu?.state() ?? { mode: 'off' },
    stop: () => iommu?.close(),
  };
}
