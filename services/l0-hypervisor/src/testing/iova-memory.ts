// The stand-in IOMMU of the DMA suites maps every IOVA to machine = IOVA -
// IOVA_SHIFT, so a test can build a ring in IOVA space with plain writes.
import type { TestMemory } from '@nestlab/virtio/testing';
import type { RemoteMemory } from './driver.js';

export const IOVA_SHIFT = 0x1_0000_0000n;

/** Lets a RingImage be built in IOVA space while its bytes land at machine = IOVA - IOVA_SHIFT. */
export class IovaMemory implements TestMemory {
  constructor(private readonly mem: RemoteMemory) {}
  write(addr: bigint, bytes: Uint8Array): void {
    this.mem.write(addr - IOVA_SHIFT, bytes);
  }
  readSync(addr: bigint, len: number): Uint8Array {
    return this.mem.readSync(addr - IOVA_SHIFT, len);
  }
}
