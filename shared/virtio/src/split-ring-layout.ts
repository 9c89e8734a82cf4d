// Layout only (as rust-vmm desc/split.rs keeps it): sizes, alignments, offsets
// and byte codecs of a split virtqueue, spec 2.7 "Split Virtqueues".
// Nothing here reads guest memory or trusts it.
import { busAddr } from '@nestlab/addr';
import type { BusAddr } from '@nestlab/addr';
import { VirtioError, fail, ok } from './errors.js';
import type { VirtioResult } from './errors.js';
import { checkSpan, readU16, readU32, readU64, writeU16, writeU32, writeU64 } from './le-bytes.js';

export const MAX_QUEUE_SIZE = 32768;
export const DESC_SIZE = 16;
export const USED_ELEM_SIZE = 8;
/** Required alignment of each area (spec 2.7, VRING_*_ALIGN_SIZE). */
export const SPLIT_RING_ALIGN = { desc: 16, avail: 2, used: 4 } as const;
/** Legacy transports put the used ring at the next 4096 boundary (VIRTIO_PCI_VRING_ALIGN). */
export const LEGACY_VRING_ALIGN = 4096;

/** A positive integer power of two (queue sizes, legacy page sizes and alignments). */
export const isPowerOfTwo = (n: number): boolean =>
  Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;

export const isValidQueueSize = (size: number): boolean =>
  isPowerOfTwo(size) && size <= MAX_QUEUE_SIZE;

/** Validates a queue size the driver wrote (queue_size / QueueNum). */
export function checkQueueSize(size: number): VirtioResult<number> {
  return isValidQueueSize(size)
    ? ok(size)
    : fail(
        'QUEUE_SIZE_INVALID',
        `queue size ${size} is not a power of two in 1..${MAX_QUEUE_SIZE}`,
      );
}

function requireQueueSize(size: number): number {
  const r = checkQueueSize(size);
  if (!r.ok) throw r.error;
  return r.value;
}

/** Byte offsets inside each of the three areas of a split ring of `size` entries. */
export interface SplitRingLayout {
  readonly size: number;
  readonly desc: { readonly bytes: number; readonly align: 16 };
  readonly avail: {
    readonly bytes: number;
    readonly align: 2;
    readonly flags: 0;
    readonly idx: 2;
    readonly ring: 4;
    /** Only meaningful with VIRTIO_F_EVENT_IDX. */
    readonly usedEvent: number;
  };
  readonly used: {
    readonly bytes: number;
    readonly align: 4;
    readonly flags: 0;
    readonly idx: 2;
    readonly ring: 4;
    /** Only meaningful with VIRTIO_F_EVENT_IDX. */
    readonly availEvent: number;
  };
}

/** Throws VirtioError QUEUE_SIZE_INVALID for a bad size; use checkQueueSize on guest input first. */
export function splitRingLayout(size: number): SplitRingLayout {
  const q = requireQueueSize(size);
  return {
    size: q,
    desc: { bytes: DESC_SIZE * q, align: 16 },
    avail: { bytes: 6 + 2 * q, align: 2, flags: 0, idx: 2, ring: 4, usedEvent: 4 + 2 * q },
    used: {
      bytes: 6 + USED_ELEM_SIZE * q,
      align: 4,
      flags: 0,
      idx: 2,
      ring: 4,
      availEvent: 4 + 8 * q,
    },
  };
}

export const descOffset = (index: number): number => DESC_SIZE * index;
export const availRingOffset = (slot: number): number => 4 + 2 * slot;
export const usedElemOffset = (slot: number): number => 4 + USED_ELEM_SIZE * slot;

const alignUp = (n: number, align: number): number => Math.ceil(n / align) * align;

/** The legacy single-area layout of Linux uapi vring_init()/vring_size(num, align). */
export interface LegacyRingLayout {
  readonly descOffset: 0;
  readonly availOffset: number;
  readonly usedOffset: number;
  readonly totalBytes: number;
}

export function legacyRingLayout(size: number, align = LEGACY_VRING_ALIGN): LegacyRingLayout {
  const l = splitRingLayout(size);
  if (!Number.isInteger(align) || align < 1 || (align & (align - 1)) !== 0) {
    throw new VirtioError('INVALID_ARGUMENT', `ring alignment ${align} is not a power of two`);
  }
  const availOffset = l.desc.bytes;
  const usedOffset = alignUp(availOffset + l.avail.bytes, align);
  return { descOffset: 0, availOffset, usedOffset, totalBytes: usedOffset + l.used.bytes };
}

/** Same value as uapi `vring_size(num, align)`. */
export const vringSize = (size: number, align = LEGACY_VRING_ALIGN): number =>
  legacyRingLayout(size, align).totalBytes;

/** One split-ring descriptor as the driver wrote it; `addr` is a bus address. */
export interface VringDesc {
  addr: BusAddr;
  len: number;
  flags: number;
  next: number;
}

export interface VringUsedElem {
  /** Head index of the chain. */
  id: number;
  /** Bytes the device wrote into the chain's writable buffers. */
  len: number;
}

function checkUint(v: number, bits: 16 | 32, what: string): number {
  if (!Number.isInteger(v) || v < 0 || v >= 2 ** bits) {
    throw new VirtioError('INVALID_ARGUMENT', `${what} ${v} is not a u${bits}`);
  }
  return v;
}

// All fields are little-endian: VERSION_1 devices (the spec's modern layout) and every legacy
// host nestlab models (x86) agree. Decoders throw RangeError for a field outside `bytes`.
export function encodeDesc(d: VringDesc): Uint8Array {
  const len = checkUint(d.len, 32, 'desc.len');
  const flags = checkUint(d.flags, 16, 'desc.flags');
  const next = checkUint(d.next, 16, 'desc.next');
  const out = new Uint8Array(DESC_SIZE);
  writeU64(out, 0, d.addr);
  writeU32(out, 8, len);
  writeU16(out, 12, flags);
  writeU16(out, 14, next);
  return out;
}

export function decodeDesc(bytes: Uint8Array, offset = 0): VringDesc {
  checkSpan(bytes, offset, DESC_SIZE);
  return {
    addr: busAddr(readU64(bytes, offset)),
    len: readU32(bytes, offset + 8),
    flags: readU16(bytes, offset + 12),
    next: readU16(bytes, offset + 14),
  };
}

export function encodeUsedElem(e: VringUsedElem): Uint8Array {
  const id = checkUint(e.id, 32, 'used.id');
  const len = checkUint(e.len, 32, 'used.len');
  const out = new Uint8Array(USED_ELEM_SIZE);
  writeU32(out, 0, id);
  writeU32(out, 4, len);
  return out;
}

export function decodeUsedElem(bytes: Uint8Array, offset = 0): VringUsedElem {
  checkSpan(bytes, offset, USED_ELEM_SIZE);
  return { id: readU32(bytes, offset), len: readU32(bytes, offset + 4) };
}

export function encodeU16(value: number): Uint8Array {
  const v = checkUint(value, 16, 'u16');
  const out = new Uint8Array(2);
  writeU16(out, 0, v);
  return out;
}

export function decodeU16(bytes: Uint8Array, offset = 0): number {
  checkSpan(bytes, offset, 2);
  return readU16(bytes, offset);
}
