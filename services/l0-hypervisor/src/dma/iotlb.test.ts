import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MetricsRegistry } from '@nestlab/service-kit';
import { Iotlb } from './iotlb.js';

describe('Iotlb', () => {
  it('hits per page and permission, and forgets invalidated pages', () => {
    const reg = new MetricsRegistry();
    const hits = reg.counter('h', 'h');
    const misses = reg.counter('m', 'm');
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
});
