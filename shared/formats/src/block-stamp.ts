// Block contents that identify themselves: a read shows which block, which
// write generation and which job seed the bytes came from, so a misdirected
// or stale DMA is named, not just "wrong". Layout (little endian):
//   0 magic 'NLB1' | 4 seed | 8 block u64 | 16 generation | 20 bs | 24 0 | 28 checksum
//   32.. pattern from mulberry32(seed, block, generation)
// checksum = FNV-1a over bytes [0,28) and [32,bs).
// Every I/O of a job generates or checks a block, so both work on 32-bit
// words and keep the arithmetic in int32 (this costs microseconds, not the
// tenth of a millisecond per block the byte-and-double version did). The
// checksum is still byte-wise FNV-1a, but it is fed a word at a time (one load,
// four bytes by shifts) and folded into the pass that writes or checks the
// pattern, so a block is walked once.
import { endianness } from 'node:os';
import { mulberry32 } from '@nestlab/service-kit';

export const BLOCK_MAGIC = 0x3142_4c4e; // "NLB1" read as LE bytes
const HEADER = 32;
const HEADER_WORDS = HEADER / 4;
const LE = endianness() === 'LE';

const FNV_OFFSET = 0x811c9dc5;
const FNV_PRIME = 0x01000193;

/** FNV-1a over bytes[from, to), continuing from hash `h` (int32). */
function fnv1aBytes(bytes: Uint8Array, from: number, to: number, h: number): number {
  for (let i = from; i < to; i++) h = Math.imul(h ^ bytes[i]!, FNV_PRIME);
  return h;
}

/** FNV-1a over one word's four bytes in little-endian order: the same as four byte steps. */
function fnv1aWord(h: number, w: number): number {
  h = Math.imul(h ^ (w & 0xff), FNV_PRIME);
  h = Math.imul(h ^ ((w >>> 8) & 0xff), FNV_PRIME);
  h = Math.imul(h ^ ((w >>> 16) & 0xff), FNV_PRIME);
  return Math.imul(h ^ (w >>> 24), FNV_PRIME);
}

/** FNV-1a of the header's first 28 bytes (everything before the checksum field). */
function headerHash(b: Uint8Array, w: Int32Array | null): number {
  if (!w) return fnv1aBytes(b, 0, 28, FNV_OFFSET);
  let h = FNV_OFFSET | 0;
  for (let i = 0; i < 7; i++) h = fnv1aWord(h, w[i]!);
  return h;
}

/** The stamp's checksum of a block: FNV-1a over bytes [0,28) and [32,bs). */
export function blockChecksum(b: Uint8Array): number {
  const w = words(b);
  let h = headerHash(b, w);
  if (w) for (let i = HEADER_WORDS; i < w.length; i++) h = fnv1aWord(h, w[i]!);
  else h = fnv1aBytes(b, HEADER, b.length, h);
  return h >>> 0;
}

/**
 * The block's 32-bit words in host order, when that is little endian and aligned.
 * Signed, so a word read or written stays an int32 in V8 (a uint32 above 2^31 is a double).
 */
function words(b: Uint8Array): Int32Array | null {
  return LE && b.byteOffset % 4 === 0 && b.byteLength % 4 === 0
    ? new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4)
    : null;
}

export interface BlockStamp {
  readonly seed: number;
  readonly block: number;
  readonly generation: number;
}

/**
 * mulberry32's output for state `a` (service-kit's generator, spelled out here so the
 * block loops keep the state in a local instead of a closure's context): same bits, as int32.
 */
function mulberryWord(a: number): number {
  let t = Math.imul(a ^ (a >>> 15), a | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return t ^ (t >>> 14);
}
const MULBERRY_STEP = 0x6d2b79f5;

const patternSeed = (s: BlockStamp) =>
  (s.seed ^ Math.imul(s.block, 0x9e3779b1) ^ Math.imul(s.generation, 0x85ebca6b)) >>> 0;

export function blockContent(s: BlockStamp, bs: number): Uint8Array {
  const out = new Uint8Array(bs);
  const v = new DataView(out.buffer);
  v.setUint32(0, BLOCK_MAGIC, true);
  v.setUint32(4, s.seed >>> 0, true);
  v.setBigUint64(8, BigInt(s.block), true);
  v.setUint32(16, s.generation >>> 0, true);
  v.setUint32(20, bs, true);
  const w = words(out);
  if (!w) {
    const next = mulberry32(patternSeed(s));
    for (let i = HEADER; i + 4 <= bs; i += 4) v.setUint32(i, next(), true);
    v.setUint32(28, blockChecksum(out), true);
    return out;
  }
  let h = headerHash(out, w);
  let a = patternSeed(s) | 0;
  for (let i = HEADER_WORDS; i < w.length; i++) {
    a = (a + MULBERRY_STEP) | 0;
    const x = mulberryWord(a);
    w[i] = x;
    h = fnv1aWord(h, x);
  }
  v.setUint32(28, h >>> 0, true);
  return out;
}

/** What a block's bytes claim to be, or why they are not a stamped block. */
export function describeBlock(bytes: Uint8Array): BlockStamp | 'zeros' | 'garbage' {
  if (isZeroBlock(bytes)) return 'zeros';
  if (bytes.byteLength < HEADER) return 'garbage';
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, true) !== BLOCK_MAGIC || v.getUint32(28, true) !== blockChecksum(bytes))
    return 'garbage';
  return {
    seed: v.getUint32(4, true),
    block: Number(v.getBigUint64(8, true)),
    generation: v.getUint32(16, true),
  };
}

/** Whether `bytes` are exactly blockContent(s, bs), without building that block. */
export function isBlockContent(s: BlockStamp, bs: number, bytes: Uint8Array): boolean {
  if (bytes.byteLength !== bs || bs < HEADER) return false;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const header =
    v.getUint32(0, true) === BLOCK_MAGIC &&
    v.getUint32(4, true) === s.seed >>> 0 &&
    v.getBigUint64(8, true) === BigInt(s.block) &&
    v.getUint32(16, true) === s.generation >>> 0 &&
    v.getUint32(20, true) === bs &&
    v.getUint32(24, true) === 0;
  if (!header) return false;
  const w = words(bytes);
  if (w) {
    // Header and pattern match, so the only right checksum is the one over these bytes.
    let h = headerHash(bytes, w);
    let a = patternSeed(s) | 0;
    for (let i = HEADER_WORDS; i < w.length; i++) {
      a = (a + MULBERRY_STEP) | 0;
      const x = w[i]!;
      if (x !== mulberryWord(a)) return false;
      h = fnv1aWord(h, x);
    }
    return w[7] === h;
  }
  const next = mulberry32(patternSeed(s));
  for (let i = HEADER; i + 4 <= bs; i += 4) if (v.getUint32(i, true) !== next()) return false;
  if (bs % 4 !== 0) return equal(bytes, blockContent(s, bs));
  return v.getUint32(28, true) === blockChecksum(bytes);
}

/** All zero bytes: a block never written. */
export function isZeroBlock(b: Uint8Array): boolean {
  const w = words(b);
  if (w) {
    for (let i = 0; i < w.length; i++) if (w[i] !== 0) return false;
    return true;
  }
  for (let i = 0; i < b.length; i++) if (b[i] !== 0) return false;
  return true;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}
