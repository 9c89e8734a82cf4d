import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { applyExchange, planExchange, revertExchange } from './exchange.js';
import { XenState } from './xen-state.js';

const GIB = 2 ** 30;
const fresh = () =>
  new XenState({ present: true, machineBytes: 2 * GIB, dom0Bytes: GIB, seed: 5, passthrough: [] });
const SWIOTLB_PFN = 0x3a600;

describe('memory exchange', () => {
  it('makes pfns machine-contiguous in low memory and moves ownership', () => {
    const s = fresh();
    const p2m = s.domain(0).p2m;
    const pfns = Array.from({ length: 64 }, (_, i) => SWIOTLB_PFN + i);
    const before = pfns.map((p) => p2m.lookup(p)!);
    const pagesBefore = p2m.pages;
    const plan = planExchange(s, 0, pfns);
    applyExchange(s, plan);
    assert.equal(plan.mfnFirst % 64, 0, 'naturally aligned like a buddy extent');
    assert.ok(plan.mfnFirst < 0x37f00, 'from low memory');
    pfns.forEach((p, i) => assert.equal(p2m.lookup(p), plan.mfnFirst + i));
    for (let i = 0; i < 64; i++) assert.equal(s.frameTable.ownerOf(plan.mfnFirst + i), 'dom0');
    for (const m of before) assert.equal(s.frameTable.ownerOf(m), 'free');
    assert.equal(p2m.pages, pagesBefore);
    assert.equal(s.frameTable.summary()['dom0'], GIB / 4096);
    assert.equal(p2m.pfnOfMfn(plan.mfnFirst + 3), SWIOTLB_PFN + 3);
  });

  it('reverts exactly', () => {
    const s = fresh();
    const ranges = [...s.domain(0).p2m.all()];
    const owners = s.frameTable.runs();
    const plan = planExchange(s, 0, [0x1000, 0x2000, 0x3000]);
    applyExchange(s, plan);
    revertExchange(s, plan);
    assert.deepEqual(s.domain(0).p2m.all(), ranges);
    assert.deepEqual(s.frameTable.runs(), owners);
  });

  it('refuses holes, foreign frames, duplicates and unknown domains with typed errors', () => {
    const s = fresh();
    const code = (fn: () => unknown, c: string) =>
      assert.throws(fn, (e: { code?: string }) => e.code === c, c);
    code(() => planExchange(s, 0, [0x8000]), 'PFN_UNMAPPED');
    code(() => planExchange(s, 0, [0x1000, 0x1000]), 'DUPLICATE_PFN');
    code(() => planExchange(s, 3, [0x1000]), 'NO_SUCH_DOMAIN');
    const m = s.domain(0).p2m.lookup(0x1000)!;
    s.frameTable.set(m, 1, 'xen');
    code(() => planExchange(s, 0, [0x1000]), 'NOT_OWNER');
  });
});
