import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { busAddr } from '@nestlab/addr';
import { MAX_DMA_RANGES, type IovaRange } from '@nestlab/protocol';
import { FlushQueue, type UnmapEntry } from './flush-queue.js';

/** Entries two pages apart, so no two merge into one range. */
const apart = (from: number, n: number): UnmapEntry[] =>
  Array.from({ length: n }, (_, i) => ({
    iova: busAddr(0x1_0000_0000n + BigInt((from + i) * 2) * 0x1000n),
    pages: 1,
  }));

describe('IOMMU flush queue', () => {
  it('sends one call’s unmaps together, never more than MAX_DMA_RANGES ranges per hypercall', async () => {
    const sent: IovaRange[][] = [];
    const released: UnmapEntry[] = [];
    const q = new FlushQueue(
      async (ranges) => {
        sent.push(ranges);
      },
      (e) => released.push(e),
      { strict: true, size: 64, timeoutMs: 10 },
    );
    // 255 single unmaps, then a pair that would straddle the 256-range limit.
    const singles = apart(0, MAX_DMA_RANGES - 1).map((e) => q.add(e));
    const pair = q.addAll(apart(MAX_DMA_RANGES - 1, 2));
    assert.equal(q.pending, MAX_DMA_RANGES + 1);
    await Promise.all([...singles, pair]);
    assert.deepEqual(
      sent.map((r) => r.length),
      [MAX_DMA_RANGES - 1, 2],
    );
    assert.equal(released.length, MAX_DMA_RANGES + 1);
    assert.equal(q.pending, 0);
  });

  it('lazy mode goes out once `size` entries are queued, counting every entry of a call', async () => {
    const sent: IovaRange[][] = [];
    const q = new FlushQueue(
      async (ranges) => {
        sent.push(ranges);
      },
      () => undefined,
      { strict: false, size: 4, timeoutMs: 60_000 },
    );
    const first = q.addAll(apart(0, 2));
    await new Promise((r) => setImmediate(r));
    assert.equal(sent.length, 0, 'two of four: it waits');
    const second = q.addAll(apart(2, 2));
    await Promise.all([first, second]);
    assert.equal(sent.length, 1);
    assert.equal(sent[0]!.length, 4);
  });

  it('a refused unmap releases nothing and fails every call in its hypercall', async () => {
    const released: UnmapEntry[] = [];
    const q = new FlushQueue(
      async () => {
        throw new Error('xen says no');
      },
      (e) => released.push(e),
      { strict: true, size: 64, timeoutMs: 10 },
    );
    const a = q.addAll(apart(0, 2));
    const b = q.add(apart(2, 1)[0]!);
    await assert.rejects(a, /xen says no/);
    await assert.rejects(b, /xen says no/);
    assert.equal(released.length, 0);
  });
});
