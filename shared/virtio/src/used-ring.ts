// What the device writes back (spec 2.7 "The Virtqueue Used Ring") and the
// EVENT_IDX fields ("Used Buffer Notification Suppression"). These only compute address + bytes;
// the device writes them through its own memory path (which may be an IOMMU).
import type { BusAddr } from '@nestlab/addr';
import { VRING_AVAIL_F_NO_INTERRUPT } from './constants.js';
import { VirtioError, ok } from './errors.js';
import type { VirtioResult } from './errors.js';
import { vringNeedEvent } from './need-event.js';
import { readRing } from './ring-memory.js';
import type { RingMemory } from './ring-memory.js';
import {
  availEventAddr,
  availFlagsAddr,
  usedElemAddr,
  usedEventAddr,
  usedIdxAddr,
} from './split-queue.js';
import type { SplitQueue } from './split-queue.js';
import { decodeU16, encodeU16, encodeUsedElem } from './split-ring-layout.js';

/** One write the device has to perform. */
export interface RingWrite {
  addr: BusAddr;
  bytes: Uint8Array;
}

function checkU16(v: number, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v > 0xffff) {
    throw new VirtioError('INVALID_ARGUMENT', `${what} ${v} is not a u16`);
  }
  return v;
}

/**
 * The used element for a completed chain, written at used.ring[usedIdx % size].
 * Throws VirtioError INVALID_ARGUMENT for values the device itself got wrong.
 */
export function usedElemWrite(
  q: SplitQueue,
  usedIdx: number,
  headIndex: number,
  writtenLen: number,
): RingWrite {
  checkU16(usedIdx, 'used idx');
  if (!Number.isInteger(headIndex) || headIndex < 0 || headIndex >= q.size) {
    throw new VirtioError('INVALID_ARGUMENT', `used id ${headIndex} is not below ${q.size}`);
  }
  return {
    addr: usedElemAddr(q, usedIdx),
    bytes: encodeUsedElem({ id: headIndex, len: writtenLen }),
  };
}

/** The new used.idx, written after the elements it publishes (a write barrier between them). */
export const usedIdxWrite = (q: SplitQueue, newUsedIdx: number): RingWrite => ({
  addr: usedIdxAddr(q),
  bytes: encodeU16(checkU16(newUsedIdx, 'used idx')),
});

/** avail_event (EVENT_IDX): "notify me when avail.idx passes this". */
export const availEventWrite = (q: SplitQueue, availIdx: number): RingWrite => ({
  addr: availEventAddr(q),
  bytes: encodeU16(checkU16(availIdx, 'avail_event')),
});

/** used_event (EVENT_IDX): the driver wants an interrupt when used.idx passes it. */
export async function readUsedEvent(mem: RingMemory, q: SplitQueue): Promise<VirtioResult<number>> {
  const raw = await readRing(mem, usedEventAddr(q), 2, 'used_event');
  return raw.ok ? ok(decodeU16(raw.value)) : raw;
}

export async function readAvailFlags(
  mem: RingMemory,
  q: SplitQueue,
): Promise<VirtioResult<number>> {
  const raw = await readRing(mem, availFlagsAddr(q), 2, 'avail.flags');
  return raw.ok ? ok(decodeU16(raw.value)) : raw;
}

/**
 * Whether the device should interrupt after moving used.idx from oldUsedIdx
 * to newUsedIdx (spec "Used Buffer Notification Suppression"). With EVENT_IDX the avail flags are ignored.
 */
export async function shouldInterrupt(
  mem: RingMemory,
  q: SplitQueue,
  eventIdx: boolean,
  oldUsedIdx: number,
  newUsedIdx: number,
): Promise<VirtioResult<boolean>> {
  if (eventIdx) {
    const ev = await readUsedEvent(mem, q);
    return ev.ok ? ok(vringNeedEvent(ev.value, newUsedIdx, oldUsedIdx)) : ev;
  }
  const flags = await readAvailFlags(mem, q);
  return flags.ok ? ok((flags.value & VRING_AVAIL_F_NO_INTERRUPT) === 0) : flags;
}
