// Numbers from the virtio 1.2 spec and Linux include/uapi/linux/virtio_*.h;
// constants.test.ts checks each against the headers installed on the machine.

/** Device status bits (spec 2.1, virtio_config.h VIRTIO_CONFIG_S_*). */
export const VIRTIO_STATUS = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  NEEDS_RESET: 64,
  FAILED: 128,
} as const;
export type VirtioStatusBit = (typeof VIRTIO_STATUS)[keyof typeof VIRTIO_STATUS];

/** Device-independent feature bit numbers (spec 6 "Reserved Feature Bits"). */
export const VIRTIO_F = {
  NOTIFY_ON_EMPTY: 24,
  ANY_LAYOUT: 27,
  INDIRECT_DESC: 28,
  EVENT_IDX: 29,
  VERSION_1: 32,
  /** Was IOMMU_PLATFORM until Dec 2018; same bit (docs/DOMAIN.md, "Features"). */
  ACCESS_PLATFORM: 33,
  RING_PACKED: 34,
  IN_ORDER: 35,
  ORDER_PLATFORM: 36,
  SR_IOV: 37,
  RING_RESET: 40,
} as const;

/**
 * Rusty Russell's 2014 proposal, never standardized: bit 25
 * VIRTIO_F_USE_BUS_MAPPING, "a device really wants to use the mapping for the
 * bus it is on". No Linux header has it (bit 33 ACCESS_PLATFORM took its role
 * in 2017, docs/DOMAIN.md); only the lab's proposal-2014 driver knows it.
 */
export const VIRTIO_F_PROPOSAL_2014 = { USE_BUS_MAPPING: 25 } as const;

/** virtio-blk feature bit numbers (spec 5.2.3, virtio_blk.h). */
export const VIRTIO_BLK_F = {
  SIZE_MAX: 1,
  SEG_MAX: 2,
  GEOMETRY: 4,
  RO: 5,
  BLK_SIZE: 6,
  FLUSH: 9,
  TOPOLOGY: 10,
  CONFIG_WCE: 11,
  MQ: 12,
  DISCARD: 13,
  WRITE_ZEROES: 14,
} as const;

/** Split-ring descriptor flags (virtio_ring.h VRING_DESC_F_*). */
export const VRING_DESC_F = { NEXT: 1, WRITE: 2, INDIRECT: 4 } as const;
/** used.flags: the device asks not to be notified. */
export const VRING_USED_F_NO_NOTIFY = 1;
/** avail.flags: the driver asks not to be interrupted (ignored with EVENT_IDX). */
export const VRING_AVAIL_F_NO_INTERRUPT = 1;

/** virtio-blk request types (spec 5.2.6). */
export const VIRTIO_BLK_T = {
  IN: 0,
  OUT: 1,
  FLUSH: 4,
  GET_ID: 8,
  DISCARD: 11,
  WRITE_ZEROES: 13,
} as const;
export type VirtioBlkType = (typeof VIRTIO_BLK_T)[keyof typeof VIRTIO_BLK_T];

/** virtio-blk status byte values, the last device-writable byte of a request. */
export const VIRTIO_BLK_S = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;
export type VirtioBlkStatus = (typeof VIRTIO_BLK_S)[keyof typeof VIRTIO_BLK_S];

/** virtio-blk sectors are 512 bytes whatever blk_size says. */
export const SECTOR_SIZE = 512;
/** GET_ID returns a 20-byte serial (VIRTIO_BLK_ID_BYTES). */
export const VIRTIO_BLK_ID_BYTES = 20;

/** Virtio device ids (spec 5, virtio_ids.h). */
export const VIRTIO_ID = { BLOCK: 2, IOMMU: 23 } as const;
export type VirtioDeviceId = (typeof VIRTIO_ID)[keyof typeof VIRTIO_ID];

/** PCI ids (spec 4.1.2): Red Hat's vendor id, modern ids 0x1040 + device id. */
export const VIRTIO_PCI_VENDOR_ID = 0x1af4;
export const VIRTIO_PCI_MODERN_DEVICE_ID_BASE = 0x1040;
/** Transitional virtio-blk's PCI device id (legacy ids are 0x1000..0x103f). */
export const VIRTIO_PCI_LEGACY_BLK_DEVICE_ID = 0x1001;

export const modernPciDeviceId = (virtioDeviceId: number): number =>
  VIRTIO_PCI_MODERN_DEVICE_ID_BASE + virtioDeviceId;
