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
});
