import type { ServiceModule } from '@nestlab/service-kit';
import { registerDomainFaults } from './handlers/domain-faults.js';
import { registerTables } from './handlers/tables.js';
import { registerTranslate } from './handlers/translate.js';
import { IommuService } from './iommu-service.js';

export interface IommuOptions {
  /** Where the page tables are journaled; default NESTLAB_DATA_DIR (service-kit config), none: nothing survives the process. */
  dataDir?: string;
}

/** The IOMMU offered by L0: per-device translation domains, page tables, IOTLB invalidation, faults. */
export function createIommu(opts: IommuOptions = {}): ServiceModule {
  let iommu: IommuService | undefined;
  return {
    name: 'iommu',
    token: 'iommu',
    defaultAdminPort: 7704,
    start(ctx) {
      iommu = new IommuService(ctx, opts.dataDir ?? ctx.config.dataDir);
      iommu.restore();
      registerTables(iommu);
      registerTranslate(iommu);
      registerDomainFaults(iommu);
      ctx.log.debug('handlers registered');
    },
    state: () => iommu?.state() ?? { mode: 'off' },
    stop: () => iommu?.close(),
  };
}
