// Where a configured split queue's fields live in bus address space. The three
// areas are wherever the driver put them (queue_desc/queue_driver/queue_device).
import { addOffset, toHex } from '@nestlab/addr';
import type { BusAddr } from '@nestlab/addr';
import { fail, ok } from './errors.js';
import type { VirtioResult } from './errors.js';
import { wrapsAddressSpace } from './ring-memory.js';
import {
  SPLIT_RING_ALIGN,
  availRingOffset,
  checkQueueSize,
  descOffset,
  splitRingLayout,
  usedElemOffset,
} from './split-ring-layout.js';

/** A split queue as the driver configured it; addresses are bus addresses. */
export interface SplitQueue {
  size: number;
  desc: BusAddr;
  /** The driver area ("queue_driver"). */
  avail: BusAddr;
  /** The device area ("queue_device"). */
  used: BusAddr;
}

/**
 * Validates guest-written queue configuration: size, alignment of each area
 * (spec 2.7) and that no area wraps 2^64. Call before enabling the queue; the
 * walker calls it again so it never works on an unchecked queue.
 */
export function checkSplitQueue(q: SplitQueue): VirtioResult<SplitQueue> {
  const size = checkQueueSize(q.size);
  if (!size.ok) return size;
  const l = splitRingLayout(q.size);
  const areas = [
    ['descriptor table', q.desc, SPLIT_RING_ALIGN.desc, l.desc.bytes],
    ['avail ring', q.avail, SPLIT_RING_ALIGN.avail, l.avail.bytes],
    ['used ring', q.used, SPLIT_RING_ALIGN.used, l.used.bytes],
  ] as const;
  for (const [what, addr, align, bytes] of areas) {
    if (addr % BigInt(align) !== 0n) {
      return fail('RING_MISALIGNED', `${what} at ${toHex(addr)} is not ${align}-byte aligned`);
    }
    if (wrapsAddressSpace(addr, bytes)) {
      return fail('ADDR_WRAP', `${what} at ${toHex(addr)} + ${bytes} wraps 2^64`);
    }
  }
  return ok(q);
}

// Address helpers; callers pass in-range indexes (slots are taken mod size).
const slotOf = (q: SplitQueue, idx: number): number => idx & (q.size - 1);

export const descAddr = (q: SplitQueue, index: number): BusAddr =>
  addOffset(q.desc, descOffset(index));
export const availFlagsAddr = (q: SplitQueue): BusAddr => q.avail;
export const availIdxAddr = (q: SplitQueue): BusAddr => addOffset(q.avail, 2);
/** avail.ring[idx % size]: free-running 16-bit indexes map onto ring slots. */
export const availRingAddr = (q: SplitQueue, idx: number): BusAddr =>
  addOffset(q.avail, availRingOffset(slotOf(q, idx)));
export const usedEventAddr = (q: SplitQueue): BusAddr =>
  addOffset(q.avail, availRingOffset(q.size));
export const usedFlagsAddr = (q: SplitQueue): BusAddr => q.used;
export const usedIdxAddr = (q: SplitQueue): BusAddr => addOffset(q.used, 2);
export const usedElemAddr = (q: SplitQueue, idx: number): BusAddr =>
  addOffset(q.used, usedElemOffset(slotOf(q, idx)));
export const availEventAddr = (q: SplitQueue): BusAddr => addOffset(q.used, usedElemOffset(q.size));
