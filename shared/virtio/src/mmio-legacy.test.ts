import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { mmioLegacyPfnOf, mmioLegacyRingAreas, type MmioLegacyPlacement } from './mmio-legacy.js';

describe('legacy virtio-mmio queue placement (QueuePFN × GuestPageSize)', () => {
  it('lays out descriptors at the page, avail after them, used at the next QueueAlign boundary', () => {
    const r = mmioLegacyRingAreas({
      size: 256,
      pfn: 0x1234,
      guestPageSize: 4096,
      queueAlign: 4096,
    });
    assert.ok(r.ok);
    // 256 × 16 bytes of descriptors, then 6 + 2 × 256 bytes of avail ring, then page-aligned used.
    assert.deepEqual(r.value, { desc: 0x123_4000n, avail: 0x123_5000n, used: 0x123_6000n });
  });

  it('honours a smaller QueueAlign and a larger GuestPageSize', () => {
    const r = mmioLegacyRingAreas({ size: 8, pfn: 3, guestPageSize: 0x10000, queueAlign: 64 });
    assert.ok(r.ok);
    // 8 × 16 = 128 bytes of descriptors; avail 128..150; used at 192.
    assert.deepEqual(r.value, { desc: 0x30000n, avail: 0x30080n, used: 0x300c0n });
  });

  const bad: [string, Partial<MmioLegacyPlacement>, RegExp][] = [
    ['GuestPageSize never written', { guestPageSize: 0 }, /GuestPageSize 0 is not a power of two/],
    ['GuestPageSize not a power of two', { guestPageSize: 3000 }, /GuestPageSize 3000/],
    ['QueueAlign not a power of two', { queueAlign: 100 }, /QueueAlign 100/],
    ['QueuePFN 0', { pfn: 0 }, /QueuePFN 0 names no queue page/],
  ];
  for (const [what, p, re] of bad) {
    it(`refuses a placement with ${what} (RING_LAYOUT_INVALID)`, () => {
      const r = mmioLegacyRingAreas({
        size: 8,
        pfn: 16,
        guestPageSize: 4096,
        queueAlign: 4096,
        ...p,
      });
      assert.equal(r.ok, false);
      assert.ok(!r.ok);
      assert.equal(r.error.code, 'RING_LAYOUT_INVALID');
      assert.match(r.error.message, re);
    });
  }

  it('refuses a queue size that is not a power of two (QUEUE_SIZE_INVALID)', () => {
    const r = mmioLegacyRingAreas({ size: 6, pfn: 16, guestPageSize: 4096, queueAlign: 4096 });
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'QUEUE_SIZE_INVALID');
  });

  it('gives the driver a page number only for a page-aligned ring below 2^32 pages', () => {
    assert.equal(mmioLegacyPfnOf(0x123_4000n, 4096), 0x1234);
    assert.equal(mmioLegacyPfnOf(0x123_4800n, 4096), null);
    assert.equal(mmioLegacyPfnOf(1n << 44n, 4096), null);
    assert.equal(mmioLegacyPfnOf(0n, 4096), null);
  });
});
