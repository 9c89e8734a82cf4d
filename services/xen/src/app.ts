import type { ServiceModule } from '@nestlab/service-kit';
import { registerConfigure } from './handlers/configure.js';
import { registerIommuHypercalls } from './handlers/iommu.js';
import { registerIrq } from './handlers/irq.js';
import { registerMemory } from './handlers/memory.js';
import { XenService } from './xen-service.js';

/** The Xen hypervisor: domains, P2M, frame table, event channels, IOMMU programming. */
export function createXen(): ServiceModule {
  let xen: XenService | undefined;
  return {
    name: 'xen',
    token: 'xen',
    defaultAdminPort: 7702,
    start(ctx) {
      xen = new XenService(ctx);
      registerConfigure(xen);
      registerMemory(xen);
      registerIommuHypercalls(xen);
      registerIrq(xen);
      ctx.log.debug('handlers registered');
    },
    state: () => xen?.state() ?? { configured: false },
  };
}
