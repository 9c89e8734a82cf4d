// virtio-mmio register map (spec 4.2.2, Linux uapi virtio_mmio.h). Every
// register below Config is 32 bits wide; Config is device-specific.

/** "virt" in little-endian ASCII. */
export const VIRTIO_MMIO_MAGIC = 0x74726976;
/** Version register: 2 for modern devices, 1 for legacy (which uses GuestPageSize/QueuePFN). */
export const VIRTIO_MMIO_VERSION_MODERN = 2;
export const VIRTIO_MMIO_VERSION_LEGACY = 1;

export const VIRTIO_MMIO = {
  MAGIC_VALUE: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  /** Legacy (version 1) only. */
  GUEST_PAGE_SIZE: 0x028,
  QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034,
  QUEUE_NUM: 0x038,
  /** Legacy only. */
  QUEUE_ALIGN: 0x03c,
  /** Legacy only: the ring's guest page number. */
  QUEUE_PFN: 0x040,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  QUEUE_AVAIL_LOW: 0x090,
  QUEUE_AVAIL_HIGH: 0x094,
  QUEUE_USED_LOW: 0x0a0,
  QUEUE_USED_HIGH: 0x0a4,
  SHM_SEL: 0x0ac,
  SHM_LEN_LOW: 0x0b0,
  SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8,
  SHM_BASE_HIGH: 0x0bc,
  CONFIG_GENERATION: 0x0fc,
  CONFIG: 0x100,
} as const;
export type VirtioMmioRegister = keyof typeof VIRTIO_MMIO;

/** InterruptStatus / InterruptACK bits. */
export const VIRTIO_MMIO_INT = { VRING: 1, CONFIG: 2 } as const;

const BY_OFFSET = new Map<number, VirtioMmioRegister>(
  (Object.entries(VIRTIO_MMIO) as [VirtioMmioRegister, number][]).map(([k, v]) => [v, k]),
);

/** Names the register at an offset below Config, for decoding a trapped access. */
export const mmioRegisterAt = (offset: number): VirtioMmioRegister | undefined =>
  BY_OFFSET.get(offset);

/**
 * The virtio-mmio register(s) behind a virtio-pci common cfg field, for a
 * driver written against the common cfg names (Linux virtio_mmio.c does the
 * same job with vm_get_features, vm_setup_vq, …). 64-bit fields are a low and
 * a high register; queue_size reads QueueNumMax and writes QueueNum. Fields
 * with no counterpart (MSI-X vectors, notify_off, num_queues) are absent.
 */
export const MMIO_FOR_COMMON_FIELD = {
  device_feature_select: { read: 'DEVICE_FEATURES_SEL', write: 'DEVICE_FEATURES_SEL' },
  device_feature: { read: 'DEVICE_FEATURES', write: null },
  driver_feature_select: { read: 'DRIVER_FEATURES_SEL', write: 'DRIVER_FEATURES_SEL' },
  driver_feature: { read: null, write: 'DRIVER_FEATURES' },
  device_status: { read: 'STATUS', write: 'STATUS' },
  config_generation: { read: 'CONFIG_GENERATION', write: null },
  queue_select: { read: 'QUEUE_SEL', write: 'QUEUE_SEL' },
  queue_size: { read: 'QUEUE_NUM_MAX', write: 'QUEUE_NUM' },
  queue_enable: { read: 'QUEUE_READY', write: 'QUEUE_READY' },
  queue_desc: { read: null, write: 'QUEUE_DESC_LOW', high: 'QUEUE_DESC_HIGH' },
  queue_driver: { read: null, write: 'QUEUE_AVAIL_LOW', high: 'QUEUE_AVAIL_HIGH' },
  queue_device: { read: null, write: 'QUEUE_USED_LOW', high: 'QUEUE_USED_HIGH' },
} as const satisfies Record<
  string,
  { read: VirtioMmioRegister | null; write: VirtioMmioRegister | null; high?: VirtioMmioRegister }
>;
export type MmioMappedField = keyof typeof MMIO_FOR_COMMON_FIELD;
