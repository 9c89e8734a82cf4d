import type { ServiceModule } from '@nestlab/service-kit';

/** The L0 hypervisor (QEMU/KVM-like): guest RAM, memslots, the PCI bus and the emulated virtio-blk device. */
export function createL0Hypervisor(): ServiceModule {
  return {
    name: 'l0-hypervisor',
    token: 'l0',
    defaultAdminPort: 7701,
    start(ctx) {
      ctx.log.debug('handlers registered');
    },
    state: () => ({}),
  };
}
