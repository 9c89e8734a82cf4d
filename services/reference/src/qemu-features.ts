/**
 * QEMU 7.2's x-query-virtio-status names feature and status bits instead of
 * giving numbers ("VIRTIO_F_VERSION_1: …"); these tables turn them back into
 * bits (numbers from the virtio spec and include/uapi/linux/virtio_*.h).
 */
const FEATURE_BITS: Record<string, number> = {
  VIRTIO_BLK_F_BARRIER: 0,
  VIRTIO_BLK_F_SIZE_MAX: 1,
  VIRTIO_BLK_F_SEG_MAX: 2,
  VIRTIO_BLK_F_GEOMETRY: 4,
  VIRTIO_BLK_F_RO: 5,
  VIRTIO_BLK_F_BLK_SIZE: 6,
  VIRTIO_BLK_F_SCSI: 7,
  VIRTIO_BLK_F_FLUSH: 9,
  VIRTIO_BLK_F_TOPOLOGY: 10,
  VIRTIO_BLK_F_CONFIG_WCE: 11,
  VIRTIO_BLK_F_MQ: 12,
  VIRTIO_BLK_F_DISCARD: 13,
  VIRTIO_BLK_F_WRITE_ZEROES: 14,
  VIRTIO_BLK_F_LIFETIME: 15,
  VIRTIO_BLK_F_SECURE_ERASE: 16,
  VIRTIO_F_NOTIFY_ON_EMPTY: 24,
  VIRTIO_F_ANY_LAYOUT: 27,
  VIRTIO_RING_F_INDIRECT_DESC: 28,
  VIRTIO_RING_F_EVENT_IDX: 29,
  // bit 30 is legacy VIRTIO_F_BAD_FEATURE; QEMU's table names it after vhost-user
  VHOST_USER_F_PROTOCOL_FEATURES: 30,
  VIRTIO_F_VERSION_1: 32,
  VIRTIO_F_IOMMU_PLATFORM: 33,
  VIRTIO_F_ACCESS_PLATFORM: 33,
  VIRTIO_F_RING_PACKED: 34,
  VIRTIO_F_IN_ORDER: 35,
  VIRTIO_F_ORDER_PLATFORM: 36,
  VIRTIO_F_SR_IOV: 37,
  VIRTIO_F_NOTIFICATION_DATA: 38,
  VIRTIO_F_RING_RESET: 40,
};

const STATUS_BITS: Record<string, number> = {
  VIRTIO_CONFIG_S_ACKNOWLEDGE: 1,
  VIRTIO_CONFIG_S_DRIVER: 2,
  VIRTIO_CONFIG_S_DRIVER_OK: 4,
  VIRTIO_CONFIG_S_FEATURES_OK: 8,
  VIRTIO_CONFIG_S_NEEDS_RESET: 64,
  VIRTIO_CONFIG_S_FAILED: 128,
};

const nameOf = (s: unknown) => (typeof s === 'string' ? (s.split(':')[0] ?? '').trim() : '');

/** {transports, dev-features, unknown-dev-features} → hex mask, or null when not that shape. */
export function qemuFeaturesToHex(v: unknown): string | null {
  if (!v || typeof v !== 'object') return null;
  const o = v as Record<string, unknown>;
  let mask = 0n;
  for (const list of [o['transports'], o['dev-features']]) {
    if (!Array.isArray(list)) continue;
    for (const s of list) {
      const bit = FEATURE_BITS[nameOf(s)];
      if (bit !== undefined) mask |= 1n << BigInt(bit);
    }
  }
  const unknown = o['unknown-dev-features'];
  if (typeof unknown === 'number') mask |= BigInt(unknown);
  return `0x${mask.toString(16)}`;
}

/** {statuses: [...]} → the device status byte. */
export function qemuStatusToByte(v: unknown): number | null {
  const list = v && typeof v === 'object' ? (v as Record<string, unknown>)['statuses'] : undefined;
  if (!Array.isArray(list)) return null;
  return list.reduce((acc: number, s) => acc | (STATUS_BITS[nameOf(s)] ?? 0), 0);
}
