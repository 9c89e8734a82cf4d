// Device-side reading of a split virtqueue (spec 2.7 "Split Virtqueues").
// Every field the driver wrote is untrusted; each malformed case ends in one
// VirtioResult error code, never a throw.
//
// Rules (documented for the device models that use this):
// - TTL: a chain may visit at most `size` descriptors of the descriptor table
//   (the one pointing at an indirect table included) and at most N entries of
//   an indirect table of N entries. Every index is checked against its table
//   first, so exceeding a TTL means an index repeated: RING_LOOP is exactly a
//   loop (rust-vmm chain.rs keeps the same ttl; QEMU virtqueue_split_pop says
//   "Looped descriptor"). A walk makes at most `size` descriptor reads plus
//   one indirect-table read.
// - Indirect (spec "Indirect Descriptors"): allowed once per chain, as the
//   last descriptor of the direct part (NEXT with INDIRECT is
//   INDIRECT_WITH_NEXT); len must be a non-zero multiple of 16 with at most
//   maxIndirectEntries entries; INDIRECT inside the table is NESTED_INDIRECT;
//   the WRITE flag of the pointing descriptor is ignored (spec: the device
//   MUST ignore it). The table is read in one access, then decoded locally.
// - Zero-length buffers are passed through (the spec does not forbid them and
//   they touch no memory); the request parser decides whether they matter.
// - Length: the chain's buffers together must fit the u32 a used element
//   reports (used.len), so a chain of 4 GiB or more is CHAIN_TOO_LONG: the
//   device cannot describe what it did with it (docs/DOMAIN.md).
import { toHex } from '@nestlab/addr';
import type { BusAddr } from '@nestlab/addr';
import { VRING_DESC_F } from './constants.js';
import { VirtioError, fail, ok } from './errors.js';
import type { VirtioResult } from './errors.js';
import { isPending, readRingNow, wrapsAddressSpace } from './ring-memory.js';
import type { Now, RingMemory } from './ring-memory.js';
import { availIdxAddr, availRingAddr, checkSplitQueue, descAddr } from './split-queue.js';
import type { SplitQueue } from './split-queue.js';
import { DESC_SIZE, MAX_QUEUE_SIZE, decodeDesc, decodeU16 } from './split-ring-layout.js';
import type { VringDesc } from './split-ring-layout.js';

export interface WalkOptions {
  /** VIRTIO_F_INDIRECT_DESC was negotiated (default true). */
  indirect?: boolean;
  /** Upper bound on an indirect table's entries (default 32768, the largest queue). */
  maxIndirectEntries?: number;
}

export interface ChainBuffer {
  addr: BusAddr;
  len: number;
  writable: boolean;
}

export interface DescChain {
  headIndex: number;
  /** Device-readable buffers first, then device-writable ones. */
  buffers: ChainBuffer[];
  /** Descriptors visited, including one that points at an indirect table. */
  descCount: number;
  readableBytes: number;
  writableBytes: number;
  /** Whether the chain went through an indirect table. */
  indirect: boolean;
}

export interface PoppedChain extends DescChain {
  /** The avail index this chain was taken from (the device's last_avail_idx before). */
  availIdx: number;
  /** The device's last_avail_idx after this pop. */
  nextAvailIdx: number;
}

const u16 = (n: number): number => n & 0xffff;
/** The most bytes a chain may hold: what a used element's u32 len can report. */
export const MAX_CHAIN_BYTES = 0xffff_ffff;

/** avail.idx minus last_avail_idx, checked against the queue size (QEMU virtqueue_num_heads). */
export function pendingAvail(
  mem: RingMemory,
  q: SplitQueue,
  lastAvailIdx: number,
): Promise<VirtioResult<{ availIdx: number; pending: number }>> {
  return Promise.resolve(pendingAvailNow(mem, q, lastAvailIdx));
}

/** pendingAvail, answered at once when the memory answers at once (RingMemory.readNow). */
export function pendingAvailNow(
  mem: RingMemory,
  q: SplitQueue,
  lastAvailIdx: number,
): Now<VirtioResult<{ availIdx: number; pending: number }>> {
  return drive(mem, pendingSteps(q, lastAvailIdx));
}

function* pendingSteps(
  q: SplitQueue,
  lastAvailIdx: number,
): Steps<{ availIdx: number; pending: number }> {
  const checked = checkArgs(q, lastAvailIdx);
  if (!checked.ok) return checked;
  const raw = yield { addr: availIdxAddr(q), len: 2, what: 'avail.idx' };
  if (!raw.ok) return raw;
  const availIdx = decodeU16(raw.value);
  const pending = u16(availIdx - lastAvailIdx);
  if (pending > q.size) {
    return fail(
      'AVAIL_IDX_TOO_FAR',
      `avail.idx ${availIdx} is ${pending} ahead of last_avail_idx ${lastAvailIdx}, queue size ${q.size}`,
    );
  }
  return ok({ availIdx, pending });
}

/**
 * Takes the next available chain, or null when the driver has published
 * nothing new. The caller advances its last_avail_idx to `nextAvailIdx` only
 * on success; on error the device should mark itself NEEDS_RESET (QEMU
 * virtio_error) rather than retry the same chain.
 */
export function popAvail(
  mem: RingMemory,
  q: SplitQueue,
  lastAvailIdx: number,
  options: WalkOptions = {},
): Promise<VirtioResult<PoppedChain | null>> {
  return Promise.resolve(drive(mem, popSteps(q, lastAvailIdx, options)));
}

function* popSteps(
  q: SplitQueue,
  lastAvailIdx: number,
  options: WalkOptions,
): Steps<PoppedChain | null> {
  const pending = yield* pendingSteps(q, lastAvailIdx);
  if (!pending.ok) return pending;
  if (pending.value.pending === 0) return ok(null);
  const raw = yield { addr: availRingAddr(q, lastAvailIdx), len: 2, what: 'avail.ring entry' };
  if (!raw.ok) return raw;
  const chain = yield* walkSteps(q, decodeU16(raw.value), options);
  if (!chain.ok) return chain;
  return ok({ ...chain.value, availIdx: lastAvailIdx, nextAvailIdx: u16(lastAvailIdx + 1) });
}

/** Walks the chain starting at descriptor `headIndex`. */
export function walkChain(
  mem: RingMemory,
  q: SplitQueue,
  headIndex: number,
  options: WalkOptions = {},
): Promise<VirtioResult<DescChain>> {
  return Promise.resolve(walkChainNow(mem, q, headIndex, options));
}

/**
 * walkChain, answered at once when every read is (RingMemory.readNow): a
 * chain in local memory is walked without a promise per descriptor.
 */
export function walkChainNow(
  mem: RingMemory,
  q: SplitQueue,
  headIndex: number,
  options: WalkOptions = {},
): Now<VirtioResult<DescChain>> {
  return drive(mem, walkSteps(q, headIndex, options));
}

function* walkSteps(q: SplitQueue, headIndex: number, options: WalkOptions): Steps<DescChain> {
  const checked = checkSplitQueue(q);
  if (!checked.ok) return checked;
  const allowIndirect = options.indirect ?? true;
  const maxIndirect = options.maxIndirectEntries ?? MAX_QUEUE_SIZE;
  if (!Number.isInteger(headIndex) || headIndex < 0 || headIndex >= q.size) {
    return fail('DESC_INDEX_OUT_OF_RANGE', `head ${headIndex} is not below queue size ${q.size}`);
  }

  const chain: DescChain = {
    headIndex,
    buffers: [],
    descCount: 0,
    readableBytes: 0,
    writableBytes: 0,
    indirect: false,
  };
  let table: { bytes: Uint8Array; entries: number; addr: BusAddr } | undefined;
  let index = headIndex;
  let ttl = q.size;
  let seenWritable = false;

  for (;;) {
    if (ttl === 0) {
      const where = table ? `indirect table at ${toHex(table.addr)}` : 'descriptor table';
      return fail('RING_LOOP', `chain from head ${headIndex} loops in the ${where}`);
    }
    ttl--;
    chain.descCount++;

    let desc: VringDesc;
    if (table) {
      desc = decodeDesc(table.bytes, index * DESC_SIZE);
    } else {
      const raw = yield { addr: descAddr(q, index), len: DESC_SIZE, what: `descriptor ${index}` };
      if (!raw.ok) return raw;
      desc = decodeDesc(raw.value);
    }
    const where = table ? `indirect entry ${index}` : `descriptor ${index}`;

    if (desc.flags & VRING_DESC_F.INDIRECT) {
      if (table) return fail('NESTED_INDIRECT', `${where} is itself INDIRECT`);
      if (!allowIndirect) {
        return fail('INDIRECT_NOT_NEGOTIATED', `${where} is INDIRECT without INDIRECT_DESC`);
      }
      if (desc.flags & VRING_DESC_F.NEXT) {
        return fail('INDIRECT_WITH_NEXT', `${where} has both INDIRECT and NEXT`);
      }
      if (desc.len === 0 || desc.len % DESC_SIZE !== 0 || desc.len / DESC_SIZE > maxIndirect) {
        return fail(
          'INDIRECT_LEN_INVALID',
          `${where}: indirect table len ${desc.len} is not a non-zero multiple of 16 up to ${maxIndirect} entries`,
        );
      }
      const raw = yield { addr: desc.addr, len: desc.len, what: `indirect table of ${where}` };
      if (!raw.ok) return raw;
      table = { bytes: raw.value, entries: desc.len / DESC_SIZE, addr: desc.addr };
      chain.indirect = true;
      ttl = table.entries;
      index = 0;
      continue;
    }

    if (wrapsAddressSpace(desc.addr, desc.len)) {
      return fail('ADDR_WRAP', `${where}: ${toHex(desc.addr)} + ${desc.len} wraps 2^64`);
    }
    const writable = (desc.flags & VRING_DESC_F.WRITE) !== 0;
    if (!writable && seenWritable) {
      return fail('READABLE_AFTER_WRITABLE', `${where} is device-readable after a writable one`);
    }
    seenWritable ||= writable;
    if (chain.readableBytes + chain.writableBytes + desc.len > MAX_CHAIN_BYTES) {
      return fail(
        'CHAIN_TOO_LONG',
        `chain from head ${headIndex} reaches ${where} with more than ${MAX_CHAIN_BYTES} bytes in all`,
      );
    }
    chain.buffers.push({ addr: desc.addr, len: desc.len, writable });
    if (writable) chain.writableBytes += desc.len;
    else chain.readableBytes += desc.len;

    if (!(desc.flags & VRING_DESC_F.NEXT)) return ok(chain);
    const limit = table ? table.entries : q.size;
    if (desc.next >= limit) {
      return fail('DESC_INDEX_OUT_OF_RANGE', `${where}: next ${desc.next} is not below ${limit}`);
    }
    index = desc.next;
  }
}

function checkArgs(q: SplitQueue, lastAvailIdx: number): VirtioResult<true> {
  const checked = checkSplitQueue(q);
  if (!checked.ok) return checked;
  if (!Number.isInteger(lastAvailIdx) || lastAvailIdx < 0 || lastAvailIdx > 0xffff) {
    return fail('INVALID_ARGUMENT', `last_avail_idx ${lastAvailIdx} is not a u16`);
  }
  return ok(true);
}

/** One read a walk needs, answered by the caller's memory (readRingNow). */
interface RingRead {
  readonly addr: BusAddr;
  readonly len: number;
  readonly what: string;
}

/** A walk as the reads it needs: it yields each read and is resumed with its result. */
type Steps<T> = Generator<RingRead, VirtioResult<T>, VirtioResult<Uint8Array>>;

/**
 * Runs the steps, synchronously while the memory answers at once; from the
 * first read that must wait on, the rest follows that read's promise. Either
 * way each read is made once, in order.
 */
function drive<T>(mem: RingMemory, steps: Steps<T>): Now<VirtioResult<T>> {
  let next = step(steps, undefined);
  while (!next.done) {
    const r = next.value;
    const got = readRingNow(mem, r.addr, r.len, r.what);
    if (isPending(got)) return got.then((v) => driveFrom(mem, steps, v));
    next = step(steps, got);
  }
  return next.value;
}

function driveFrom<T>(
  mem: RingMemory,
  steps: Steps<T>,
  got: VirtioResult<Uint8Array>,
): Now<VirtioResult<T>> {
  const next = step(steps, got);
  if (next.done) return next.value;
  const r = next.value;
  const more = readRingNow(mem, r.addr, r.len, r.what);
  return isPending(more) ? more.then((v) => driveFrom(mem, steps, v)) : driveFrom(mem, steps, more);
}

// The walker's answer: a VirtioResult, never a throw. A throw here is our bug.
function step<T>(
  steps: Steps<T>,
  got: VirtioResult<Uint8Array> | undefined,
): IteratorResult<RingRead, VirtioResult<T>> {
  try {
    return steps.next(got as VirtioResult<Uint8Array>);
  } catch (cause) {
    if (cause instanceof VirtioError) return { done: true, value: { ok: false, error: cause } };
    return {
      done: true,
      value: fail('INTERNAL', `unexpected error in the chain walker: ${String(cause)}`, { cause }),
    };
  }
}
