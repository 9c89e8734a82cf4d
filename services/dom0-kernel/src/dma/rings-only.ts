// A half fix of the 2014 bug (issue 16, row 5): the rings go through the DMA
// API (dma_alloc_coherent under swiotlb-xen: machine addresses), but the
// request buffers keep the legacy path (their pseudo-physical addresses go
// into the descriptors). The device then finds every ring, completes every
// request, and reads and writes the buffers in machine frames that carry
// dom0's pseudo-physical numbers: frames dom0 does not own.
import { legacyPolicy } from './legacy.js';
import type { DmaEnv, DmaPolicyImpl } from './policy.js';
import { xenSwiotlbPolicy } from './xen-swiotlb.js';

export function ringsOnlyPolicy(env: DmaEnv): DmaPolicyImpl {
  const rings = xenSwiotlbPolicy(env);
  const buffers = legacyPolicy(env);
  return {
    ...buffers,
    name: 'xen-swiotlb-rings-only',
    init: () => rings.init(),
    allocCoherent: (bytes) => rings.allocCoherent(bytes),
    freeCoherent: (region) => rings.freeCoherent(region),
  };
}
