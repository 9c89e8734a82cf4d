import type { ServiceModule } from '@nestlab/service-kit';
import { registerConfigure } from './handlers/configure.js';
import { registerIommuHypercalls } from './handlers/iommu.js';
import { registerIrq } from './handlers/irq.js';
import { registerMemory } from './handlers/memory.js';
import { registerP2mChange } from './handlers/p2m-change.js';
import { registerEvtchnFaults } from './irq/evtchn-faults.js';
import { XenService } from './xen-service.js';

export interface XenOptions {
  /** Where Xen journals its state; default NESTLAB_DATA_DIR (service-kit config), none: nothing survives the process. */
  dataDir?: string;
}

/** The Xen hypervisor: domains, P2M, frame table, event channels, IOMMU programming. */
export function createXen(opts: XenOptions = {}): ServiceModule {
  let xen: XenService | undefined;
  return {
    name: 'xen',
    token: 'xen',
    defaultAdminPort: 7702,
    start(ctx) {
      xen = new XenService(ctx, opts.dataDir ?? ctx.config.dataDir);
      xen.restore();
      registerConfigure(xen);
      registerMemory(xen);
      registerIommuHypercalls(xen);
      registerIrq(xen);
      registerP2mChange(xen);
      registerEvtchnFaults(xen);
      ctx.log.debug('handlers registered');
    },
    state: () => xen?.state() ?? { configured: false },
    stop: () => xen?.close(),
  };
}
