import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildDom0Layout, type Dom0Layout } from './dom0-layout.js';
import type { P2m } from './p2m.js';

const GIB = 2 ** 30;
const DEFAULT = { present: true, machineBytes: 2 * GIB, dom0Bytes: GIB, seed: 1 };
const f = (byteAddr: number) => byteAddr / 4096;

/** The machine frames behind pseudo [first, end), sorted. */
function machineSet(p2m: P2m, first: number, end: number): number[] {
  const out: number[] = [];
  for (let p = first; p < end; p++) {
    const m = p2m.lookup(p);
    assert.notEqual(m, undefined, `pfn 0x${p.toString(16)} unmapped`);
    out.push(m!);
  }
  return out.sort((a, b) => a - b);
}

const isRun = (frames: number[], first: number, end: number) =>
  frames.length === end - first && frames.every((m, i) => m === first + i);

describe('default dom0 layout (Xen 4.17 + Linux 6.1, 2 GiB, dom0_mem=1024M)', () => {
  const l: Dom0Layout = buildDom0Layout(DEFAULT);

  it('maps pseudo [0x100000, 0x8000000) onto machine [0x70100000, 0x78000000)', () => {
    const set = machineSet(l.p2m, f(0x100000), f(0x8000000));
    assert.ok(isRun(set, f(0x70100000), f(0x78000000)));
  });

  it('maps pseudo [0x832f000, 0x3832f000) onto machine [0x40000000, 0x70000000)', () => {
    const set = machineSet(l.p2m, f(0x832f000), f(0x3832f000));
    assert.ok(isRun(set, f(0x40000000), f(0x70000000)));
  });

  it('gives dom0 exactly dom0Bytes of pages and leaves the holes unmapped', () => {
    assert.equal(l.p2m.pages, GIB / 4096);
    for (const hole of [0, 0xff, f(0x8000000), f(0x832f000) - 1, f(0x4042f000)])
      assert.equal(l.p2m.lookup(hole), undefined, `pfn 0x${hole.toString(16)}`);
    assert.notEqual(l.p2m.lookup(f(0x3a600000)), undefined, 'the SWIOTLB pfn is RAM');
  });

  it('breaks machine contiguity inside a contiguous pfn run, and pfn N is never mfn N', () => {
    let breaks = 0;
    for (let p = f(0x832f000); p < f(0x832f000) + 4096; p++)
      if (l.p2m.lookup(p + 1) !== l.p2m.lookup(p)! + 1) breaks++;
    assert.ok(breaks > 0, 'a 16 MiB pfn run should cross a chunk boundary');
    for (const r of l.p2m.all()) {
      for (let i = 0; i < r.count; i++) assert.notEqual(r.pfn + i, r.mfn + i);
    }
  });

  it('owns frames as measured: dom0 behind its P2M, Xen low, nothing beyond RAM', () => {
    const ft = l.frameTable;
    for (const r of l.p2m.all()) {
      assert.equal(ft.ownerOf(r.mfn), 'dom0');
      assert.equal(ft.ownerOf(r.mfn + r.count - 1), 'dom0');
    }
    assert.equal(ft.summary()['dom0'], GIB / 4096);
    assert.equal(ft.ownerOf(0), 'xen');
    assert.equal(ft.ownerOf(0xff), 'xen');
    assert.ok(['xen', 'free'].includes(ft.ownerOf(f(0x100000))));
    assert.equal(ft.ownerOf(f(0x70000000)), 'free', 'the released first MiB of the dom0 chunk');
    assert.ok(['xen', 'free'].includes(ft.ownerOf(f(0x7ffff000))));
    assert.equal(ft.ownerOf(f(0x80000000)), 'none');
    const low = ft.runs().filter((r) => r.first < f(0x37f00000));
    assert.ok(
      low.some((r) => r.owner === 'xen' && r.first > 0xff),
      'a share of low memory is Xen heap',
    );
    assert.ok(
      low.some((r) => r.owner === 'free'),
      'and some is free',
    );
  });

  it('is reproducible per seed and differs between seeds', () => {
    const again = buildDom0Layout(DEFAULT);
    assert.deepEqual(again.p2m.all(), l.p2m.all());
    assert.deepEqual(again.frameTable.runs(), l.frameTable.runs());
    const other = buildDom0Layout({ ...DEFAULT, seed: 2 });
    assert.notDeepEqual(other.p2m.all(), l.p2m.all());
  });
});

describe('other layouts', () => {
  it('is the identity over the lowest RAM for a plain guest (present=false)', () => {
    const l = buildDom0Layout({ present: false, machineBytes: 2 * GIB, dom0Bytes: GIB, seed: 7 });
    assert.deepEqual(l.p2m.all(), [{ pfn: 0, mfn: 0, count: GIB / 4096 }]);
    assert.deepEqual(l.frameTable.summary(), { dom0: GIB / 4096, free: GIB / 4096 });
    assert.equal(l.frameTable.ownerOf(2 * (GIB / 4096)), 'none');
  });

  it('skips the PCI hole above 3 GiB and keeps tables small for huge machines', () => {
    const l = buildDom0Layout({ ...DEFAULT, machineBytes: 8 * GIB, dom0Bytes: 6 * GIB });
    assert.equal(l.p2m.pages, (6 * GIB) / 4096);
    for (let m = f(3 * GIB); m < f(4 * GIB); m += 4096)
      assert.equal(l.frameTable.ownerOf(m), 'none');
    for (const r of l.p2m.all()) {
      assert.ok(r.mfn + r.count <= f(3 * GIB) || r.mfn >= f(4 * GIB), 'no dom0 frame in the hole');
    }
    const huge = buildDom0Layout({ ...DEFAULT, machineBytes: 2 ** 46, dom0Bytes: 2 ** 45 });
    assert.equal(huge.p2m.pages, 2 ** 33);
    assert.ok(huge.p2m.rangeCount < 4096, `${huge.p2m.rangeCount} ranges`);
    assert.ok(huge.frameTable.runCount < 4096);
  });

  it('refuses sizes that cannot be laid out, with BAD_CONFIG', () => {
    const bad = [
      { machineBytes: GIB, dom0Bytes: GIB },
      { machineBytes: 2 * GIB, dom0Bytes: 1000 },
      { machineBytes: 2 * GIB + 1, dom0Bytes: GIB },
      { machineBytes: 2 ** 20, dom0Bytes: 2 ** 20 },
    ];
    for (const b of bad)
      assert.throws(
        () => buildDom0Layout({ ...DEFAULT, ...b }),
        (e: { code?: string; kind?: string }) => e.code === 'BAD_CONFIG' && e.kind === 'input',
        JSON.stringify(b),
      );
  });
});
