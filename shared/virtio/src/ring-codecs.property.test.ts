// The byte-arithmetic ring codecs against the straightforward DataView codecs they
// replaced (issue 17): same bytes out, same fields back, at any offset, and the same
// RangeError for a field that does not fit.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { busAddr } from '@nestlab/addr';
import fc from 'fast-check';
import {
  decodeBlkHeader,
  decodeDesc,
  decodeU16,
  decodeUsedElem,
  encodeBlkHeader,
  encodeDesc,
  encodeU16,
  encodeUsedElem,
} from './index.js';

const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);

function referenceDesc(addr: bigint, len: number, flags: number, next: number): Uint8Array {
  const out = new Uint8Array(16);
  const v = view(out);
  v.setBigUint64(0, addr, true);
  v.setUint32(8, len, true);
  v.setUint16(12, flags, true);
  v.setUint16(14, next, true);
  return out;
}

const u64 = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const u32 = fc.nat({ max: 0xffff_ffff });
const u16 = fc.nat({ max: 0xffff });

describe('ring codecs (property)', () => {
  it('encode descriptors and used elements to the DataView bytes', () => {
    fc.assert(
      fc.property(u64, u32, u16, u16, (addr, len, flags, next) => {
        const d = { addr: busAddr(addr), len, flags, next };
        assert.deepEqual(encodeDesc(d), referenceDesc(addr, len, flags, next));
        const used = new Uint8Array(8);
        view(used).setUint32(0, len, true);
        view(used).setUint32(4, next, true);
        assert.deepEqual(encodeUsedElem({ id: len, len: next }), used);
        const idx = new Uint8Array(2);
        view(idx).setUint16(0, flags, true);
        assert.deepEqual(encodeU16(flags), idx);
      }),
    );
  });

  it('decode what DataView reads, at any offset in a larger buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 16, maxLength: 80 }), fc.nat(), (bytes, at) => {
        const v = view(bytes);
        const o = at % (bytes.length - 15);
        assert.deepEqual(decodeDesc(bytes, o), {
          addr: v.getBigUint64(o, true),
          len: v.getUint32(o + 8, true),
          flags: v.getUint16(o + 12, true),
          next: v.getUint16(o + 14, true),
        });
        assert.deepEqual(decodeUsedElem(bytes, o), {
          id: v.getUint32(o, true),
          len: v.getUint32(o + 4, true),
        });
        assert.equal(decodeU16(bytes, o), v.getUint16(o, true));
        const h = decodeBlkHeader(bytes.subarray(o));
        assert.ok(h.ok);
        assert.deepEqual(h.value, {
          type: v.getUint32(o, true),
          reserved: v.getUint32(o + 4, true),
          sector: v.getBigUint64(o + 8, true),
        });
        assert.deepEqual(decodeBlkHeader(encodeBlkHeader(h.value)), h);
      }),
    );
  });

  it('throw RangeError for a field outside the bytes, as DataView does', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 24 }), fc.integer({ min: -4, max: 30 }), (b, o) => {
        const fits = (w: number) => o >= 0 && o + w <= b.length;
        const check = (w: number, f: () => unknown) =>
          fits(w) ? assert.doesNotThrow(f) : assert.throws(f, RangeError);
        check(16, () => decodeDesc(b, o));
        check(8, () => decodeUsedElem(b, o));
        check(2, () => decodeU16(b, o));
      }),
    );
  });
});
