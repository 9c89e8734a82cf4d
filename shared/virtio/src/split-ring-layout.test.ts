import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { busAddr } from '@nestlab/addr';
import {
  VirtioError,
  checkQueueSize,
  decodeDesc,
  decodeUsedElem,
  encodeDesc,
  encodeUsedElem,
  isValidQueueSize,
  legacyRingLayout,
  splitRingLayout,
} from './index.js';

describe('split ring layout', () => {
  it('accepts powers of two 1..32768 and rejects everything else', () => {
    for (const q of [1, 2, 4, 256, 32768]) assert.equal(isValidQueueSize(q), true);
    for (const q of [0, 3, 6, 65536, -2, 1.5, NaN]) {
      assert.equal(isValidQueueSize(q), false);
      const r = checkQueueSize(q);
      assert.ok(!r.ok);
      assert.equal(r.error.code, 'QUEUE_SIZE_INVALID');
    }
    assert.throws(
      () => splitRingLayout(12),
      (e: unknown) => e instanceof VirtioError && e.code === 'QUEUE_SIZE_INVALID',
    );
  });

  it('sizes each area as spec 2.7 says', () => {
    const l = splitRingLayout(256);
    assert.equal(l.desc.bytes, 4096);
    assert.equal(l.avail.bytes, 6 + 512);
    assert.equal(l.avail.usedEvent, 4 + 512);
    assert.equal(l.used.bytes, 6 + 2048);
    assert.equal(l.used.availEvent, 4 + 2048);
  });

  it('aligns the legacy used ring to 4096', () => {
    assert.deepEqual(legacyRingLayout(256), {
      descOffset: 0,
      availOffset: 4096,
      usedOffset: 8192,
      totalBytes: 8192 + 6 + 2048,
    });
    assert.throws(() => legacyRingLayout(8, 3), { code: 'INVALID_ARGUMENT' });
  });

  it('encodes descriptors little-endian and round-trips them', () => {
    const d = { addr: busAddr(0x0102030405060708n), len: 0x0a0b0c0d, flags: 3, next: 0x1234 };
    const bytes = encodeDesc(d);
    assert.deepEqual(
      [...bytes],
      [8, 7, 6, 5, 4, 3, 2, 1, 0x0d, 0x0c, 0x0b, 0x0a, 3, 0, 0x34, 0x12],
    );
    assert.deepEqual(decodeDesc(bytes), d);
    const padded = new Uint8Array(32);
    padded.set(bytes, 16);
    assert.deepEqual(decodeDesc(padded, 16), d);
    assert.throws(() => encodeDesc({ ...d, len: 2 ** 32 }), { code: 'INVALID_ARGUMENT' });
  });

  it('encodes used elements', () => {
    const bytes = encodeUsedElem({ id: 7, len: 513 });
    assert.deepEqual([...bytes], [7, 0, 0, 0, 1, 2, 0, 0]);
    assert.deepEqual(decodeUsedElem(bytes), { id: 7, len: 513 });
  });
});
