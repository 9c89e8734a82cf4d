// Where the virtio-pci modern regions sit in BAR 4 (fixed decision shared by
// the team; the driver still finds them through the capability list, spec 4.1.4).
export const VIRTIO_BAR_INDEX = 4;
export const VIRTIO_BAR_SIZE = 0x4000;
export const FIRST_BAR_BASE = 0xfe00_0000n;
/** virtio-mmio windows (no BAR: the platform description names them) sit above the BARs. */
export const FIRST_MMIO_BASE = 0xfeb0_0000n;
export const FIRST_MMIO_IRQ = 5;

export const BAR_REGION = {
  common: { offset: 0x0000, length: 0x1000 },
  isr: { offset: 0x1000, length: 0x1000 },
  device: { offset: 0x2000, length: 0x1000 },
  notify: { offset: 0x3000, length: 0x800 },
  msixTable: { offset: 0x3800, length: 0x400 },
  msixPba: { offset: 0x3c00, length: 0x400 },
} as const;

export const NOTIFY_OFF_MULTIPLIER = 4;

/**
 * Device memory for rings (DeviceSetup.ringMemoryBytes): BAR 2, one 1 MiB
 * slot per device above the register BARs, found through a virtio
 * shared-memory capability (cfg_type 8, shmid RING_SHM_ID).
 */
export const RING_BAR_INDEX = 2;
export const FIRST_RING_BAR_BASE = 0xfe80_0000n;
export const RING_BAR_SLOT = 0x10_0000;
export const RING_SHM_ID = 0;
export const MSIX_TABLE_SIZE = 2;
