import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { busAddr } from '@nestlab/addr';
import {
  VIRTIO_BLK_T,
  checkBlkDirection,
  decodeBlkHeader,
  encodeBlkHeader,
  splitBlkRequest,
} from './index.js';
import type { Segment } from './index.js';

const seg = (addr: bigint, len: number, writable = false): Segment => ({
  addr: busAddr(addr),
  len,
  writable,
});

describe('virtio-blk request header', () => {
  it('round-trips {type, reserved, sector} little-endian', () => {
    const h = { type: VIRTIO_BLK_T.OUT, reserved: 0, sector: 0x1_0000_0002n };
    const bytes = encodeBlkHeader(h);
    assert.deepEqual([...bytes], [1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0]);
    assert.deepEqual(decodeBlkHeader(bytes), { ok: true, value: h });
  });

  it('rejects a short header', () => {
    const r = decodeBlkHeader(new Uint8Array(15));
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'BAD_BLK_REQUEST');
  });
});

describe('splitBlkRequest', () => {
  it('splits the usual three-descriptor layout', () => {
    const r = splitBlkRequest([seg(0x1000n, 16), seg(0x2000n, 4096, true), seg(0x3000n, 1, true)]);
    assert.ok(r.ok);
    assert.deepEqual(r.value.header, [seg(0x1000n, 16)]);
    assert.deepEqual(r.value.data, [seg(0x2000n, 4096, true)]);
    assert.equal(r.value.dataLen, 4096);
    assert.equal(r.value.status, 0x3000n);
  });

  it('finds header, data and status whatever the descriptor boundaries (any layout)', () => {
    // header split over two buffers, the second also holding the first data bytes;
    // the status byte shares the last data buffer.
    const r = splitBlkRequest([seg(0x1000n, 10), seg(0x2000n, 520), seg(0x3000n, 513, true)]);
    assert.ok(r.ok);
    assert.deepEqual(r.value.header, [seg(0x1000n, 10), seg(0x2000n, 6)]);
    assert.deepEqual(r.value.data, [seg(0x2006n, 514), seg(0x3000n, 512, true)]);
    assert.equal(r.value.status, 0x3200n);
  });

  it('accepts a FLUSH with no data', () => {
    const r = splitBlkRequest([seg(0x1000n, 16), seg(0x3000n, 1, true)]);
    assert.ok(r.ok);
    assert.deepEqual(r.value.data, []);
    assert.equal(r.value.dataLen, 0);
  });

  for (const [what, bufs] of [
    ['a chain shorter than header + status', [seg(0x1000n, 16)]],
    ['a writable header', [seg(0x1000n, 16, true), seg(0x3000n, 1, true)]],
    ['a readable status byte', [seg(0x1000n, 16), seg(0x3000n, 1)]],
  ] as const) {
    it(`BAD_BLK_REQUEST: ${what}`, () => {
      const r = splitBlkRequest(bufs);
      assert.ok(!r.ok);
      assert.equal(r.error.code, 'BAD_BLK_REQUEST');
    });
  }

  it('checks the data direction of IN, OUT and GET_ID', () => {
    const w = [seg(0x2000n, 512, true)];
    const rd = [seg(0x2000n, 512)];
    assert.ok(checkBlkDirection(VIRTIO_BLK_T.IN, w).ok);
    assert.ok(checkBlkDirection(VIRTIO_BLK_T.OUT, rd).ok);
    assert.ok(!checkBlkDirection(VIRTIO_BLK_T.IN, rd).ok);
    assert.ok(!checkBlkDirection(VIRTIO_BLK_T.OUT, w).ok);
    assert.ok(!checkBlkDirection(VIRTIO_BLK_T.GET_ID, rd).ok);
    assert.ok(checkBlkDirection(VIRTIO_BLK_T.FLUSH, rd).ok);
  });
});
