import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MetricsRegistry } from '@nestlab/service-kit';
import { Iotlb } from './iotlb.js';

describe('Iotlb', () => {
  it('hits per page and permission, and forgets invalidated pages', () => {
    const reg = new MetricsRegistry();
    const hits = reg.counter('h', 'h', ['bdf']);
    const misses = reg.counter('m', 'm', ['bdf']);
    const t = new Iotlb(hits, misses);
    const bdf = '0000:00:04.0';
    t.insert(bdf, 0x1_0000_0123n, { machinePage: 0x5000n, read: true, write: false, by: 'iommu' });
    assert.equal(t.lookup(bdf, 0x1_0000_0fffn, false)?.machinePage, 0x5000n);
    assert.equal(
      t.lookup(bdf, 0x1_0000_0000n, true),
      undefined,
      'no write permission: ask the IOMMU',
    );
    assert.equal(t.lookup('0000:00:05.0', 0x1_0000_0000n, false), undefined, 'per device');
    assert.equal(hits.get({ bdf }), 0, 'counted at the end of the turn');
    t.flushCounts();
    assert.equal(hits.get({ bdf }), 1);
    assert.equal(misses.get({ bdf }), 1);
    assert.equal(t.invalidate(bdf, 0x1_0000_0000n, 1), 1);
    assert.equal(t.lookup(bdf, 0x1_0000_0000n, false), undefined);
    t.insert(bdf, 0x2000n, { machinePage: 0x2000n, read: true, write: true, by: 'identity' });
    assert.equal(t.invalidate(bdf, 0n, 1 << 30), 1, 'a huge range scans the entries instead');
    assert.equal(t.size, 0);
  });

  it('caches a run of pages and bumps its generation on every invalidation', () => {
    const reg = new MetricsRegistry();
    const t = new Iotlb(reg.counter('h', 'h', ['bdf']), reg.counter('m', 'm', ['bdf']));
    const bdf = '0000:00:04.0';
    const run = [0x9000n, 0x5000n, 0x6000n].map((machinePage) => ({
      machinePage,
      read: true,
      write: true,
      by: 'iommu' as const,
    }));
    t.insertRun(bdf, 0x1_0000_0234n, run, t.generation);
    assert.deepEqual(
      [0n, 1n, 2n, 3n].map((i) => t.lookup(bdf, 0x1_0000_0000n + i * 0x1000n, true)?.machinePage),
      [0x9000n, 0x5000n, 0x6000n, undefined],
    );
    const g = t.generation;
    assert.equal(t.invalidate(bdf, 0x1_0000_1000n, 2), 2);
    assert.equal(t.generation, g + 1);
    assert.equal(t.size, 1);
    // An answer asked before an invalidation of its second page: only the first is cached.
    t.clear();
    const asked = t.generation;
    t.invalidate(bdf, 0x2_0000_1000n, 1);
    t.invalidate('0000:00:05.0', 0x2_0000_0000n, 1);
    assert.equal(t.insertRun(bdf, 0x2_0000_0000n, run, asked), 1);
    assert.equal(t.lookup(bdf, 0x2_0000_1000n, false), undefined);
    assert.equal(t.insertRun(bdf, 0x2_0000_1000n, run, t.generation), 3, 'asked after it: cached');
  });

  it('holds at most 4096 entries, dropping the oldest, and tells the top pages apart', () => {
    const reg = new MetricsRegistry();
    const t = new Iotlb(reg.counter('h', 'h', ['bdf']), reg.counter('m', 'm', ['bdf']));
    const [a, b] = ['0000:00:04.0', '0000:00:05.0'];
    const entry = (machinePage: bigint) => ({
      machinePage,
      read: true,
      write: true,
      by: 'iommu' as const,
    });
    for (let i = 0; i < 4000; i++) t.insert(a, BigInt(i) << 12n, entry(BigInt(i) << 12n));
    t.insert(a, 0n, entry(0x7000n));
    assert.equal(t.size, 4000, 'replacing a page adds no entry');
    for (let i = 0; i < 200; i++) t.insert(b, BigInt(i) << 12n, entry(0x1000n));
    assert.equal(t.size, 4096);
    assert.equal(t.lookup(a, 103n << 12n, false, false), undefined, "a's oldest pages went first");
    assert.equal(t.lookup(a, 104n << 12n, false, false)?.machinePage, 104n << 12n);
    assert.equal(t.lookup(b, 0n, false, false)?.machinePage, 0x1000n);
    // Pages near 2^52 (IOVAs near 2^64) stay distinct.
    const top = 0xffff_ffff_ffff_f000n;
    t.insertRun(a, top - 0x1000n, [entry(0x1000n), entry(0x2000n)], t.generation);
    assert.equal(t.lookup(a, top + 0xfffn, true, false)?.machinePage, 0x2000n);
    assert.equal(t.lookup(a, top - 1n, true, false)?.machinePage, 0x1000n);
    assert.equal(t.invalidate(a, top, 1), 1);
    assert.equal(t.lookup(a, top - 1n, true, false)?.machinePage, 0x1000n);
    assert.equal(t.invalidate(b, 0n, 1 << 30), 200, 'a huge range drops only that device');
    assert.equal(t.size, 4096 - 200 - 1);
  });
});
