import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pseudoPhysAddr } from '@nestlab/addr';
import { P2m } from './p2m.js';

describe('P2m', () => {
  it('looks pfns up through sorted ranges and leaves holes unmapped', () => {
    const p = new P2m();
    p.set(0x100, 0x10, 0x7000);
    p.set(0x200, 0x10, 0x1000);
    assert.equal(p.lookup(0x105), 0x7005);
    assert.equal(p.lookup(0x20f), 0x100f);
    assert.equal(p.lookup(0x110), undefined);
    assert.equal(p.lookup(0xff), undefined);
    assert.equal(p.pages, 0x20);
  });

  it('merges ranges only when both pfns and mfns are contiguous', () => {
    const p = new P2m();
    p.set(0, 4, 100);
    p.set(4, 4, 104);
    assert.equal(p.rangeCount, 1);
    p.set(8, 4, 200);
    assert.equal(p.rangeCount, 2);
  });

  it('remaps a page inside a range by splitting it, and M2P follows', () => {
    const p = new P2m();
    p.set(0, 10, 100);
    p.set(5, 1, 900);
    assert.deepEqual(p.all(), [
      { pfn: 0, mfn: 100, count: 5 },
      { pfn: 5, mfn: 900, count: 1 },
      { pfn: 6, mfn: 106, count: 4 },
    ]);
    assert.equal(p.pages, 10);
    assert.equal(p.pfnOfMfn(900), 5);
    assert.equal(p.pfnOfMfn(105), undefined);
    assert.equal(p.pfnOfMfn(107), 7);
    p.set(5, 1, 105);
    assert.equal(p.rangeCount, 1);
  });

  it('unsets across several ranges', () => {
    const p = new P2m();
    p.set(0, 10, 100);
    p.set(10, 10, 500);
    p.unset(5, 10);
    assert.deepEqual(p.all(), [
      { pfn: 0, mfn: 100, count: 5 },
      { pfn: 15, mfn: 505, count: 5 },
    ]);
    assert.equal(p.pages, 10);
  });

  it('translates a pseudo-physical address with a named p2m step, and fails on a hole', () => {
    const p = new P2m();
    p.set(0x832f, 1, 0x40000);
    const t = p.translate(pseudoPhysAddr(0x832f123n));
    assert.equal(t.ok, true);
    assert.equal(t.ok && t.addr, 0x40000123n);
    assert.deepEqual(t.step, {
      from: '0x832f123',
      to: '0x40000123',
      fromLayer: 'pseudo_phys',
      toLayer: 'machine',
      by: 'p2m',
      ok: true,
      fn: 'p2mLookup',
    });
    const miss = p.translate(pseudoPhysAddr(0x8000000n));
    assert.equal(miss.ok, false);
    assert.equal(miss.step.to, null);
    assert.match(miss.step.reason ?? '', /pfn 0x8000 is not mapped/);
  });
});
