// virtio-pci modern transport (spec 4.1.4) and the parts of the standard PCI
// header an enumerator reads. Offsets match Linux uapi virtio_pci.h and
// pci_regs.h (checked in uapi.test.ts).
import { addOffset } from '@nestlab/addr';
import type { BusAddr } from '@nestlab/addr';
import { VirtioError } from './errors.js';

/** A register: byte offset and width in bytes. */
export interface RegField {
  readonly offset: number;
  readonly width: 1 | 2 | 4 | 8;
}

/** Generic vendor-specific capability id (PCI_CAP_ID_VNDR); virtio caps use it. */
export const PCI_CAP_ID_VNDR = 0x09;
export const PCI_CAP_ID_MSIX = 0x11;

/** cfg_type of a virtio vendor capability (VIRTIO_PCI_CAP_*_CFG). */
export const VIRTIO_PCI_CAP = {
  COMMON_CFG: 1,
  NOTIFY_CFG: 2,
  ISR_CFG: 3,
  DEVICE_CFG: 4,
  PCI_CFG: 5,
  SHARED_MEMORY_CFG: 8,
} as const;
export type VirtioPciCapType = (typeof VIRTIO_PCI_CAP)[keyof typeof VIRTIO_PCI_CAP];

/** struct virtio_pci_cap (16 bytes); the notify cap appends notify_off_multiplier. */
export const VIRTIO_PCI_CAP_LAYOUT = {
  cap_vndr: { offset: 0, width: 1 },
  cap_next: { offset: 1, width: 1 },
  cap_len: { offset: 2, width: 1 },
  cfg_type: { offset: 3, width: 1 },
  bar: { offset: 4, width: 1 },
  id: { offset: 5, width: 1 },
  // padding[2] at 6
  offset: { offset: 8, width: 4 },
  length: { offset: 12, width: 4 },
} as const satisfies Record<string, RegField>;
export const VIRTIO_PCI_CAP_SIZE = 16;
export const VIRTIO_PCI_NOTIFY_CAP_MULT: RegField = { offset: 16, width: 4 };
export const VIRTIO_PCI_NOTIFY_CAP_SIZE = 20;

/**
 * struct virtio_pci_common_cfg with the spec's field names (Linux calls the
 * driver_* fields guest_*, config_msix_vector msix_config, and splits the
 * 64-bit queue addresses into _lo/_hi). queue_notify_data and queue_reset are
 * only macros (VIRTIO_PCI_COMMON_Q_NDATA/Q_RESET) in Linux 6.1's header.
 */
export const VIRTIO_PCI_COMMON_CFG = {
  device_feature_select: { offset: 0, width: 4 },
  device_feature: { offset: 4, width: 4 },
  driver_feature_select: { offset: 8, width: 4 },
  driver_feature: { offset: 12, width: 4 },
  config_msix_vector: { offset: 16, width: 2 },
  num_queues: { offset: 18, width: 2 },
  device_status: { offset: 20, width: 1 },
  config_generation: { offset: 21, width: 1 },
  queue_select: { offset: 22, width: 2 },
  queue_size: { offset: 24, width: 2 },
  queue_msix_vector: { offset: 26, width: 2 },
  queue_enable: { offset: 28, width: 2 },
  queue_notify_off: { offset: 30, width: 2 },
  queue_desc: { offset: 32, width: 8 },
  queue_driver: { offset: 40, width: 8 },
  queue_device: { offset: 48, width: 8 },
  queue_notify_data: { offset: 56, width: 2 },
  queue_reset: { offset: 58, width: 2 },
} as const satisfies Record<string, RegField>;
export type VirtioPciCommonField = keyof typeof VIRTIO_PCI_COMMON_CFG;
/** Size of the common config through queue_reset (virtio 1.2). */
export const VIRTIO_PCI_COMMON_CFG_SIZE = 60;

/**
 * The field a register access lands in, if it starts inside one; a 64-bit
 * queue address may be written as two 32-bit halves (spec 4.1.3.1).
 */
export function commonCfgFieldAt(
  offset: number,
): { name: VirtioPciCommonField; field: RegField; within: number } | undefined {
  for (const [name, field] of Object.entries(VIRTIO_PCI_COMMON_CFG) as [
    VirtioPciCommonField,
    RegField,
  ][]) {
    if (offset >= field.offset && offset < field.offset + field.width) {
      return { name, field, within: offset - field.offset };
    }
  }
  return undefined;
}

/** ISR status bits (spec 4.1.4.5); reading the ISR clears it. */
export const VIRTIO_PCI_ISR = { QUEUE: 1, CONFIG: 2 } as const;
/** MSI-X vector value meaning "no vector". */
export const VIRTIO_MSI_NO_VECTOR = 0xffff;

/** Offset inside the notify cap's BAR for a queue: cap.offset + queue_notify_off * multiplier (spec 4.1.4.4). */
export function notifyOffset(
  capOffset: number,
  queueNotifyOff: number,
  multiplier: number,
): number {
  for (const [what, v] of [
    ['cap offset', capOffset],
    ['queue_notify_off', queueNotifyOff],
    ['notify_off_multiplier', multiplier],
  ] as const) {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) {
      throw new VirtioError('INVALID_ARGUMENT', `${what} ${v} is not a u32`);
    }
  }
  return capOffset + queueNotifyOff * multiplier;
}

/** The bus address a driver writes to notify a queue, given where the BAR is mapped. */
export const notifyAddr = (
  barBase: BusAddr,
  capOffset: number,
  queueNotifyOff: number,
  multiplier: number,
): BusAddr => addOffset(barBase, notifyOffset(capOffset, queueNotifyOff, multiplier));

/** Type-0 PCI configuration header offsets (pci_regs.h). */
export const PCI_CFG = {
  VENDOR_ID: 0x00,
  DEVICE_ID: 0x02,
  COMMAND: 0x04,
  STATUS: 0x06,
  REVISION_ID: 0x08,
  /** Class code is three bytes: programming interface 0x09, sub-class 0x0a, base class 0x0b. */
  CLASS_PROG: 0x09,
  CLASS_DEVICE: 0x0a,
  CLASS_BASE: 0x0b,
  HEADER_TYPE: 0x0e,
  BAR0: 0x10,
  SUBSYSTEM_VENDOR_ID: 0x2c,
  SUBSYSTEM_ID: 0x2e,
  CAPABILITY_LIST: 0x34,
  INTERRUPT_LINE: 0x3c,
  INTERRUPT_PIN: 0x3d,
} as const;
export const PCI_BAR_COUNT = 6;

export function pciBarOffset(bar: number): number {
  if (!Number.isInteger(bar) || bar < 0 || bar >= PCI_BAR_COUNT) {
    throw new VirtioError('INVALID_ARGUMENT', `BAR ${bar} is not 0..5`);
  }
  return PCI_CFG.BAR0 + 4 * bar;
}

export const PCI_COMMAND = { IO: 0x1, MEMORY: 0x2, MASTER: 0x4 } as const;
/** Status bit saying the capability list at 0x34 is valid. */
export const PCI_STATUS_CAP_LIST = 0x10;
/** MSI-X capability: message control at +2, table at +4, PBA at +8. */
export const PCI_MSIX = {
  FLAGS: 2,
  TABLE: 4,
  PBA: 8,
  FLAGS_QSIZE: 0x7ff,
  FLAGS_ENABLE: 0x8000,
} as const;
