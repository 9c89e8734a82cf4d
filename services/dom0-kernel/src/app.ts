import type { ServiceModule } from '@nestlab/service-kit';

/** The dom0 kernel: PCI enumeration, the virtio driver, DMA API policies, the block layer and workloads. */
export function createDom0Kernel(): ServiceModule {
  return {
    name: 'dom0-kernel',
    token: 'dom0',
    defaultAdminPort: 7703,
    start(ctx) {
      ctx.log.debug('handlers registered');
    },
    state: () => ({}),
  };
}
