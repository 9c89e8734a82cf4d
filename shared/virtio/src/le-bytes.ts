// Little-endian field access by byte arithmetic (issue 17). The ring codecs run per
// descriptor, used element and index; a DataView per call costs far more than the
// field (its `.buffer` forces V8 to move a small on-heap array off-heap). 64-bit
// fields go through one module scratch, copied byte by byte, so no call allocates
// more than the array it returns.

const scratch = new Uint8Array(8);
const scratchView = new DataView(scratch.buffer);

/** Throws RangeError, as a DataView would, unless `width` bytes at `offset` are inside `b`. */
export function checkSpan(b: Uint8Array, offset: number, width: number): void {
  if (!Number.isInteger(offset) || offset < 0 || offset + width > b.length) {
    throw new RangeError(`offset ${offset} + ${width} is outside ${b.length} bytes`);
  }
}

export const readU16 = (b: Uint8Array, o: number): number => b[o]! | (b[o + 1]! << 8);

export const readU32 = (b: Uint8Array, o: number): number =>
  (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

export function readU64(b: Uint8Array, o: number): bigint {
  for (let i = 0; i < 8; i++) scratch[i] = b[o + i]!;
  return scratchView.getBigUint64(0, true);
}

export function writeU16(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
}

export function writeU32(b: Uint8Array, o: number, v: number): void {
  b[o] = v;
  b[o + 1] = v >>> 8;
  b[o + 2] = v >>> 16;
  b[o + 3] = v >>> 24;
}

/** Writes `v` modulo 2^64, as DataView.setBigUint64 does (and throws TypeError for a non-bigint). */
export function writeU64(b: Uint8Array, o: number, v: bigint): void {
  scratchView.setBigUint64(0, v, true);
  for (let i = 0; i < 8; i++) b[o + i] = scratch[i]!;
}
