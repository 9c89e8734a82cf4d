import type { ServiceModule } from '@nestlab/service-kit';

/** The Xen hypervisor: domains, P2M, frame table, grant tables, event channels, IOMMU programming. */
export function createXen(): ServiceModule {
  return {
    name: 'xen',
    token: 'xen',
    defaultAdminPort: 7702,
    start(ctx) {
      ctx.log.debug('handlers registered');
    },
    state: () => ({}),
  };
}
