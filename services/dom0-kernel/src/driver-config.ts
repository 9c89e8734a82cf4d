// What the driver is configured with (Dom0Configure) and what it starts
// with: the virtio generation, DMA policy, features and queue size.
import type { DmaPolicy, DriverGeneration, MmioPlatformDevice } from '@nestlab/protocol';
import { FeatureSet, VIRTIO_F } from '@nestlab/virtio';

export interface DriverConfig {
  generation: DriverGeneration;
  policy: DmaPolicy;
  wanted: FeatureSet;
  queueSize: number;
  /** virtio-mmio devices the platform describes; empty: enumerate PCI. */
  mmioDevices: readonly MmioPlatformDevice[];
  /** Rings in RAM (the DMA API) or in the device's own memory. */
  rings: 'ram' | 'device-memory';
}

export const DEFAULT_CONFIG: DriverConfig = {
  generation: 'modern',
  policy: 'xen-swiotlb',
  wanted: FeatureSet.of(
    VIRTIO_F.VERSION_1,
    VIRTIO_F.ACCESS_PLATFORM,
    VIRTIO_F.INDIRECT_DESC,
    VIRTIO_F.EVENT_IDX,
  ),
  queueSize: 256,
  mmioDevices: [],
  rings: 'ram',
};
