import { SECTOR_SIZE, VIRTIO_BLK_CONFIG } from '@nestlab/virtio';

/** struct virtio_blk_config (spec 5.2.4), as the DEVICE capability region shows it. */
export function blkConfigBytes(diskBytes: number, queueSizeMax: number): Uint8Array {
  const out = new Uint8Array(VIRTIO_BLK_CONFIG.write_zeroes_may_unmap.offset + 4);
  const v = new DataView(out.buffer);
  v.setBigUint64(VIRTIO_BLK_CONFIG.capacity.offset, BigInt(diskBytes / SECTOR_SIZE), true);
  // QEMU virtio_blk_update_config: seg_max = queue size - 2 (header and status take two).
  v.setUint32(VIRTIO_BLK_CONFIG.seg_max.offset, Math.max(1, queueSizeMax - 2), true);
  v.setUint32(VIRTIO_BLK_CONFIG.blk_size.offset, SECTOR_SIZE, true);
  v.setUint16(VIRTIO_BLK_CONFIG.num_queues.offset, 1, true);
  return out;
}
