// The word-at-a-time checksum against the byte-at-a-time FNV-1a it replaced:
// same value for any bytes, any length, any alignment, so disk images and
// reference runs stamped before still check.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mulberry32 } from '@nestlab/service-kit';
import fc from 'fast-check';
import { blockChecksum, blockContent, describeBlock, isBlockContent } from './block-stamp.js';

/** The original: FNV-1a one byte at a time over [0,28) then [32,n). */
function referenceChecksum(b: Uint8Array): number {
  let h = 0x811c9dc5;
  const step = (x: number) => (h = Math.imul(h ^ x, 0x01000193));
  for (let i = 0; i < Math.min(28, b.length); i++) step(b[i]!);
  for (let i = 32; i < b.length; i++) step(b[i]!);
  return h >>> 0;
}

/** The layout in block-stamp.ts written the plain way: DataView fields, mulberry32's closure. */
function referenceContent(s: { seed: number; block: number; generation: number }, bs: number) {
  const out = new Uint8Array(bs);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0x3142_4c4e, true);
  v.setUint32(4, s.seed, true);
  v.setBigUint64(8, BigInt(s.block), true);
  v.setUint32(16, s.generation, true);
  v.setUint32(20, bs, true);
  const mix = Math.imul(s.block, 0x9e3779b1) ^ Math.imul(s.generation, 0x85ebca6b);
  const next = mulberry32((s.seed ^ mix) >>> 0);
  for (let i = 32; i + 4 <= bs; i += 4) v.setUint32(i, next(), true);
  v.setUint32(28, referenceChecksum(out), true);
  return out;
}

/** `bytes` copied into a buffer at `offset`, so the view may be unaligned. */
function placed(bytes: Uint8Array, offset: number): Uint8Array {
  const buf = new Uint8Array(bytes.length + offset);
  buf.set(bytes, offset);
  return buf.subarray(offset);
}

const stamp = fc.record({
  seed: fc.nat({ max: 0xffff_ffff }),
  block: fc.nat({ max: 2 ** 40 }),
  generation: fc.nat({ max: 0xffff_ffff }),
});

describe('block stamp checksum (property)', () => {
  it('agrees with byte-wise FNV-1a for any bytes, length and alignment', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 600 }),
        fc.nat({ max: 3 }),
        (b, off) => {
          assert.equal(blockChecksum(placed(b, off)), referenceChecksum(b));
        },
      ),
    );
  });

  it('stamps blocks whose checksum field is the byte-wise checksum, and checks them', () => {
    fc.assert(
      fc.property(stamp, fc.integer({ min: 32, max: 1100 }), fc.nat({ max: 3 }), (s, bs, off) => {
        const b = blockContent(s, bs);
        assert.equal(new DataView(b.buffer).getUint32(28, true), referenceChecksum(b));
        const moved = placed(b, off);
        assert.deepEqual(describeBlock(moved), { ...s });
        assert.equal(isBlockContent(s, bs, moved), true);
      }),
    );
  });

  it('stamps exactly the bytes of the plain reference, for any stamp and size', () => {
    // Real block sizes too, and the largest block number a stamp can carry exactly.
    const size = fc.oneof(fc.integer({ min: 32, max: 4100 }), fc.constantFrom(4096, 8192, 65536));
    const block = fc.oneof(fc.nat({ max: 2 ** 40 }), fc.constant(Number.MAX_SAFE_INTEGER));
    fc.assert(
      fc.property(stamp, block, size, (s, b, bs) => {
        const got = blockContent({ ...s, block: b }, bs);
        assert.deepEqual(got, referenceContent({ ...s, block: b }, bs));
        assert.equal(got.buffer.byteLength, bs, 'the block owns its buffer');
      }),
    );
  });

  it('refuses a block with any one byte changed', () => {
    fc.assert(
      fc.property(
        stamp,
        fc.integer({ min: 32, max: 700 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (s, bs, at, x) => {
          const b = blockContent(s, bs).slice();
          b[at % bs]! ^= x;
          assert.equal(isBlockContent(s, bs, b), false);
          assert.notDeepEqual(describeBlock(b), s);
        },
      ),
    );
  });
});
