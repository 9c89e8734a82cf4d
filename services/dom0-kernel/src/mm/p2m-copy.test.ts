import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pseudoPhysAddr } from '@nestlab/addr';
import type { Dom0Error } from '../errors.js';
import { P2mCopy } from './p2m-copy.js';
import { DEFAULT_FIRST_PFN, PageAllocator } from './page-allocator.js';

describe('P2mCopy', () => {
  const p2m = () =>
    new P2mCopy([
      { pfn: 0x100, mfn: 0x70100, count: 0x10 },
      { pfn: 0x20000, mfn: 0x40000, count: 2 },
      { pfn: 0x20002, mfn: 0x50000, count: 2 },
    ]);

  it('translates pseudo-physical to machine with a named p2m step', () => {
    const t = p2m().translate(pseudoPhysAddr(0x2000_1234n));
    assert.ok(t.ok);
    assert.equal(t.addr, 0x4000_1234n);
    assert.deepEqual(
      { fn: t.step.fn, by: t.step.by, from: t.step.from, to: t.step.to },
      { fn: 'pvP2m', by: 'p2m', from: '0x20001234', to: '0x40001234' },
    );
    const miss = p2m().translate(pseudoPhysAddr(0x5000n));
    assert.equal(miss.ok, false);
    assert.equal(miss.step.reason, 'pfn not in the P2M');
  });

  it('knows machine contiguity and applies a memory exchange', () => {
    const m = p2m();
    const base = pseudoPhysAddr(0x2000_0000n);
    assert.equal(m.machineContiguous(base, 0x2000), true);
    assert.equal(m.machineContiguous(base, 0x3000), false);
    assert.deepEqual(m.mfnsOf(base, 0x4000), [0x40000, 0x40001, 0x50000, 0x50001]);
    m.applyExchange([0, 1, 2, 3].map((i) => ({ pfn: 0x20000 + i, mfn: 0x100 + i })));
    assert.equal(m.machineContiguous(base, 0x4000), true);
    assert.deepEqual(m.mfnsOf(pseudoPhysAddr(0x2000_0ff0n), 0x20), [0x100, 0x101]);
  });

  it('refuses overlapping ranges and missing pfns', () => {
    assert.throws(
      () =>
        new P2mCopy([
          { pfn: 1, mfn: 1, count: 4 },
          { pfn: 3, mfn: 9, count: 1 },
        ]),
      (e: Dom0Error) => e.code === 'BAD_REPLY',
    );
    assert.throws(
      () => p2m().mfnOf(0x99999),
      (e: Dom0Error) => e.code === 'P2M_MISSING',
    );
  });
});

describe('PageAllocator', () => {
  it('starts at pfn 0x20000 and never straddles a P2M hole', () => {
    const a = new PageAllocator([
      { first: 0x100, count: 0x1000 },
      { first: 0x20000, count: 3 },
      { first: 0x20010, count: 8 },
    ]);
    assert.equal(a.alloc(2).pfn, DEFAULT_FIRST_PFN);
    const big = a.alloc(4);
    assert.equal(big.pfn, 0x20010, 'a 4-page run skips the 1-page tail before the hole');
    assert.equal(big.addr, 0x2001_0000n);
    assert.equal(a.alloc(1).pfn, 0x20002);
    assert.throws(
      () => a.alloc(5),
      (e: Dom0Error) => e.code === 'NO_MEMORY',
    );
  });

  it('merges freed runs and catches a double free', () => {
    const a = new PageAllocator([{ first: 0x20000, count: 4 }]);
    const x = a.alloc(2);
    const y = a.alloc(2);
    assert.equal(a.freePages, 0);
    a.release(x);
    a.release(y);
    assert.equal(a.alloc(4).pfn, 0x20000, 'the two halves merged back into one run');
    a.release({ pfn: 0x20000, pages: 4 });
    assert.throws(
      () => a.release({ pfn: 0x20001, pages: 1 }),
      (e: Dom0Error) => e.code === 'NO_MEMORY',
    );
  });

  it('falls back to pfns above 1 MiB when the P2M has nothing at 512 MiB', () => {
    const a = new PageAllocator([{ first: 0x10, count: 0x200 }]);
    assert.equal(a.alloc(1).pfn, 0x100);
    assert.equal(a.freePages, 0x10f);
  });
});
