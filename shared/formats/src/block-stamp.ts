// Block contents that identify themselves: a read shows which block, which
// write generation and which job seed the bytes came from, so a misdirected
// or stale DMA is named, not just "wrong". Layout (little endian):
//   0 magic 'NLB1' | 4 seed | 8 block u64 | 16 generation | 20 bs | 24 0 | 28 checksum
//   32.. pattern from mulberry32(seed, block, generation)
// checksum = FNV-1a over bytes [0,28) and [32,bs).
// Every I/O of a job generates or checks a block, so both work on 32-bit
// words and keep the arithmetic in int32 (this costs microseconds, not the
// tenth of a millisecond per block the byte-and-double version did).
import { endianness } from 'node:os';
import { mulberry32 } from '@nestlab/service-kit';

export const BLOCK_MAGIC = 0x3142_4c4e; // "NLB1" read as LE bytes
const HEADER = 32;
const HEADER_WORDS = HEADER / 4;
const LE = endianness() === 'LE';

function fnv1a(bytes: Uint8Array, seed = 0x811c9dc5): number {
  let h = seed | 0;
  const n = bytes.length;
  for (let i = 0; i < n; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193);
  return h >>> 0;
}

const checksum = (b: Uint8Array) => fnv1a(b.subarray(HEADER), fnv1a(b.subarray(0, 28)));

/** The block's 32-bit words in host order, when that is little endian and aligned. */
function words(b: Uint8Array): Uint32Array | null {
  return LE && b.byteOffset % 4 === 0 && b.byteLength % 4 === 0
    ? new Uint32Array(b.buffer, b.byteOffset, b.byteLength / 4)
    : null;
}

export interface BlockStamp {
  readonly seed: number;
  readonly block: number;
  readonly generation: number;
}

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
  const next = mulberry32(patternSeed(s));
  const w = words(out);
  if (w) for (let i = HEADER_WORDS; i < w.length; i++) w[i] = next();
  else for (let i = HEADER; i + 4 <= bs; i += 4) v.setUint32(i, next(), true);
  v.setUint32(28, checksum(out), true);
  return out;
}

/** What a block's bytes claim to be, or why they are not a stamped block. */
export function describeBlock(bytes: Uint8Array): BlockStamp | 'zeros' | 'garbage' {
  if (isZeroBlock(bytes)) return 'zeros';
  if (bytes.byteLength < HEADER) return 'garbage';
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (v.getUint32(0, true) !== BLOCK_MAGIC || v.getUint32(28, true) !== checksum(bytes))
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
  const next = mulberry32(patternSeed(s));
  const w = words(bytes);
  if (w) {
    for (let i = HEADER_WORDS; i < w.length; i++) if (w[i] !== next()) return false;
  } else {
    for (let i = HEADER; i + 4 <= bs; i += 4) if (v.getUint32(i, true) !== next()) return false;
  }
  if (bs % 4 !== 0) return equal(bytes, blockContent(s, bs));
  // Header and pattern match, so the only right checksum is the one over these bytes.
  return v.getUint32(28, true) === checksum(bytes);
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
