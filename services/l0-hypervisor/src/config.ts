import { resolve } from 'node:path';
import type { RequestOf, L0Configure } from '@nestlab/protocol';
import { FeatureSet, VIRTIO_BLK_F, VIRTIO_F } from '@nestlab/virtio';

export type L0ConfigureRequest = RequestOf<typeof L0Configure>;

/** The one device of the fixed decisions: virtio-blk at 0000:00:04.0. */
export const DEFAULT_BDF = '0000:00:04.0';

export const DEFAULT_OFFER = FeatureSet.of(
  VIRTIO_F.VERSION_1,
  VIRTIO_F.ACCESS_PLATFORM,
  VIRTIO_F.EVENT_IDX,
  VIRTIO_F.INDIRECT_DESC,
  VIRTIO_BLK_F.FLUSH,
  VIRTIO_BLK_F.SEG_MAX,
  VIRTIO_BLK_F.BLK_SIZE,
);

/** What L0 runs before anyone configures it. */
export function defaultConfiguration(): L0ConfigureRequest {
  return {
    ramBytes: 2 * 2 ** 30,
    devices: [
      {
        bdf: DEFAULT_BDF,
        transport: 'pci',
        offer: DEFAULT_OFFER.toHex(),
        requireAccessPlatform: false,
        iommu: 'none',
        queueSizeMax: 256, // QEMU virtio-blk's default queue-size
        diskBytes: 64 << 20,
        freshDisk: false,
      },
    ],
  };
}

/** NESTLAB_DATA_DIR, default `.nestlab/data` under the working directory. */
export function dataDirFromEnv(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env['NESTLAB_DATA_DIR'] ?? '.nestlab/data');
}
