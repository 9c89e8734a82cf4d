// virtio-mmio version 1 (spec 4.2.4 "Legacy interface"): the driver places a
// queue with one page number instead of three addresses. GuestPageSize says
// how many bytes a page is, QueuePFN which page the descriptor table starts
// on, QueueAlign where the used ring goes: the legacy split-ring layout of
// spec 2.7 / Linux vring_init (avail right after the descriptors, used at the
// next QueueAlign boundary).
import { busAddr } from '@nestlab/addr';
import type { BusAddr } from '@nestlab/addr';
import { fail, ok } from './errors.js';
import type { VirtioResult } from './errors.js';
import type { VirtioMmioRegister } from './mmio.js';
import {
  LEGACY_VRING_ALIGN,
  checkQueueSize,
  isPowerOfTwo,
  legacyRingLayout,
} from './split-ring-layout.js';

/** Registers a version 1 device does not have (it reads them as 0 and ignores writes). */
export const VIRTIO_MMIO_MODERN_ONLY: ReadonlySet<VirtioMmioRegister> = new Set([
  'QUEUE_READY',
  'QUEUE_DESC_LOW',
  'QUEUE_DESC_HIGH',
  'QUEUE_AVAIL_LOW',
  'QUEUE_AVAIL_HIGH',
  'QUEUE_USED_LOW',
  'QUEUE_USED_HIGH',
  'SHM_SEL',
  'SHM_LEN_LOW',
  'SHM_LEN_HIGH',
  'SHM_BASE_LOW',
  'SHM_BASE_HIGH',
  'CONFIG_GENERATION',
]);

/** Registers only a version 1 device has. */
export const VIRTIO_MMIO_LEGACY_ONLY: ReadonlySet<VirtioMmioRegister> = new Set([
  'GUEST_PAGE_SIZE',
  'QUEUE_ALIGN',
  'QUEUE_PFN',
]);

/** QueueAlign after reset: the page-sized alignment every legacy driver uses (QEMU's default). */
export const VIRTIO_MMIO_LEGACY_DEFAULT_ALIGN = LEGACY_VRING_ALIGN;

/** A page number fits QueuePFN's 32 bits (Linux vm_setup_vq refuses a ring above that). */
export const VIRTIO_MMIO_LEGACY_PFN_MAX = 0xffff_ffff;

/** What a legacy driver wrote for one queue. */
export interface MmioLegacyPlacement {
  readonly size: number;
  readonly pfn: number;
  readonly guestPageSize: number;
  readonly queueAlign: number;
}

export interface MmioLegacyAreas {
  readonly desc: BusAddr;
  readonly avail: BusAddr;
  readonly used: BusAddr;
}

/**
 * The three areas of a legacy queue at QueuePFN × GuestPageSize, or why the
 * device cannot place it: GuestPageSize or QueueAlign not a power of two
 * (never written, or garbage), QueuePFN 0 (that means "release"), a bad size.
 */
export function mmioLegacyRingAreas(p: MmioLegacyPlacement): VirtioResult<MmioLegacyAreas> {
  const size = checkQueueSize(p.size);
  if (!size.ok) return size;
  if (!isPowerOfTwo(p.guestPageSize)) {
    return fail(
      'RING_LAYOUT_INVALID',
      `GuestPageSize ${p.guestPageSize} is not a power of two: the queue's page number cannot be turned into an address`,
    );
  }
  if (!isPowerOfTwo(p.queueAlign)) {
    return fail('RING_LAYOUT_INVALID', `QueueAlign ${p.queueAlign} is not a power of two`);
  }
  if (!Number.isInteger(p.pfn) || p.pfn < 1 || p.pfn > VIRTIO_MMIO_LEGACY_PFN_MAX) {
    return fail('RING_LAYOUT_INVALID', `QueuePFN ${p.pfn} names no queue page`);
  }
  const l = legacyRingLayout(size.value, p.queueAlign);
  const desc = BigInt(p.pfn) * BigInt(p.guestPageSize);
  return ok({
    desc: busAddr(desc),
    avail: busAddr(desc + BigInt(l.availOffset)),
    used: busAddr(desc + BigInt(l.usedOffset)),
  });
}

/** The QueuePFN a legacy driver writes for a ring at `desc`, or null when it cannot (not page-aligned, above 2^32 pages). */
export function mmioLegacyPfnOf(desc: bigint, guestPageSize: number): number | null {
  if (!isPowerOfTwo(guestPageSize)) return null;
  const page = BigInt(guestPageSize);
  if (desc % page !== 0n) return null;
  const pfn = desc / page;
  return pfn >= 1n && pfn <= BigInt(VIRTIO_MMIO_LEGACY_PFN_MAX) ? Number(pfn) : null;
}
