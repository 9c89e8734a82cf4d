// The package's error family (shared/protocol errorFamily). Every code has a
// fixed kind so callers can count guest-caused errors separately and never
// take the process down for them (Firecracker's device metrics).
import { errorFamily, type FamilyErrorOptions } from '@nestlab/protocol';

export const VIRTIO_ERROR_KINDS = ['guest', 'transient', 'internal'] as const;
export type VirtioErrorKind = (typeof VIRTIO_ERROR_KINDS)[number];

/** Each code and who is to blame for it. */
export const VIRTIO_ERROR_CODE_KIND = {
  /** Queue size not a power of two in 1..32768 (spec 2.7 "Split Virtqueues"). */
  QUEUE_SIZE_INVALID: 'guest',
  /** A ring area is not aligned as spec 2.7 requires (16 / 2 / 4). */
  RING_MISALIGNED: 'guest',
  /** A head, a `next` or an indirect entry index is not below its table's size. */
  DESC_INDEX_OUT_OF_RANGE: 'guest',
  /** A chain visits more descriptors than its table holds, so it revisits one. */
  RING_LOOP: 'guest',
  /** An indirect table contains a descriptor with INDIRECT (spec "Indirect Descriptors"). */
  NESTED_INDIRECT: 'guest',
  /** Indirect table len is 0, not a multiple of 16, or over the entry bound. */
  INDIRECT_LEN_INVALID: 'guest',
  /** INDIRECT and NEXT on one descriptor (spec "Indirect Descriptors": driver MUST NOT). */
  INDIRECT_WITH_NEXT: 'guest',
  /** INDIRECT used although VIRTIO_F_INDIRECT_DESC was not negotiated. */
  INDIRECT_NOT_NEGOTIATED: 'guest',
  /** A device-readable descriptor follows a device-writable one (spec: writable elements come last). */
  READABLE_AFTER_WRITABLE: 'guest',
  /** A chain's buffers add up to 4 GiB or more: more than used.len (u32) can report. */
  CHAIN_TOO_LONG: 'guest',
  /**
   * A descriptor table, avail ring or used ring is not wholly RAM as the device
   * sees it (a memory-map hole or the end of memory), checked when the queue is
   * enabled (QEMU virtio_init_region_cache: "Cannot map").
   */
  RING_NOT_IN_RAM: 'guest',
  /**
   * A legacy virtio-mmio queue the device cannot place: GuestPageSize or
   * QueueAlign not a power of two, or QueuePFN naming no page (spec 4.2.4).
   */
  RING_LAYOUT_INVALID: 'guest',
  /** avail.idx is more than the queue size ahead of the device's last_avail_idx. */
  AVAIL_IDX_TOO_FAR: 'guest',
  /** addr + len goes past 2^64. */
  ADDR_WRAP: 'guest',
  /** A read of guest memory failed (no memory there, IOMMU fault, timeout). */
  MEMORY_UNREACHABLE: 'guest',
  /** A virtio-blk request without a full header, without a status byte, or with data in the wrong direction. */
  BAD_BLK_REQUEST: 'guest',
  /** The caller (our own code) passed a value outside the API's domain. */
  INVALID_ARGUMENT: 'internal',
  /** An unexpected exception inside the walker; a bug here, not the guest's. */
  INTERNAL: 'internal',
} as const satisfies Record<string, VirtioErrorKind>;

export type VirtioErrorCode = keyof typeof VIRTIO_ERROR_CODE_KIND;
export const VIRTIO_ERROR_CODES = Object.keys(VIRTIO_ERROR_CODE_KIND) as VirtioErrorCode[];

export const VirtioError = errorFamily('VirtioError', VIRTIO_ERROR_CODE_KIND);
export type VirtioError = InstanceType<typeof VirtioError>;
export type VirtioErrorOptions = FamilyErrorOptions;

/**
 * Walker and parser results. A Result rather than a throw, so a caller cannot
 * forget that every guest-written field may be hostile.
 */
export type VirtioResult<T> = { ok: true; value: T } | { ok: false; error: VirtioError };

export const ok = <T>(value: T): VirtioResult<T> => ({ ok: true, value });

export const fail = <T = never>(
  code: VirtioErrorCode,
  message: string,
  options?: VirtioErrorOptions,
): VirtioResult<T> => ({ ok: false, error: new VirtioError(code, message, options) });

/** Unwraps a result, throwing its VirtioError; for tests and trusted callers. */
export function unwrap<T>(r: VirtioResult<T>): T {
  if (!r.ok) throw r.error;
  return r.value;
}
