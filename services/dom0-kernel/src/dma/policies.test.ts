import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { pseudoPhysAddr } from '@nestlab/addr';
import { waitFor } from '@nestlab/testing';
import { P2mCopy } from '../mm/p2m-copy.js';
import { PageAllocator } from '../mm/page-allocator.js';
import { startHarness, flush, type Harness } from '../testing/harness.js';
import { XenDouble, shuffledP2m } from '../testing/xen-double.js';
import { LAZY_FLUSH } from './flush-queue.js';
import { iommuPolicy } from './iommu.js';
import { DmaLedger } from './ledger.js';
import { legacyPolicy } from './legacy.js';
import type { DmaEnv } from './policy.js';
import { xenSwiotlbPolicy } from './xen-swiotlb.js';

const BDF = '0000:00:04.0';
const PAGES = 256;

describe('DMA policies (real NATS, Xen hypercall double)', () => {
  let h: Harness;
  let xen: XenDouble;
  let env: DmaEnv;

  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h?.close();
  });
  beforeEach(async () => {
    // Machine frames of pfn 0x20000.. come in reversed 2-page runs from mfn 0x40000.
    const ranges = shuffledP2m(0x20000, PAGES, 0x40000);
    xen = new XenDouble(ranges, 0x1000);
    await h.peer.close();
    xen.serve(h.peer);
    await flush(h);
    const p2m = new P2mCopy(ranges);
    env = {
      bus: h.bus,
      p2m,
      pages: new PageAllocator(p2m.pfnRuns()),
      ledger: new DmaLedger(),
      bdf: BDF,
    };
  });

  it('legacy hands the device the pseudo-physical address (the 2014 bug)', async () => {
    const p = legacyPolicy(env);
    const a = pseudoPhysAddr(0x2000_0010n);
    const m = await p.map(a, 512, 'to-device');
    assert.equal(m.bus, 0x2000_0010n);
    assert.equal(m.machine, null);
    assert.deepEqual(
      m.steps.map((s) => s.fn),
      ['legacyPhysAsBus'],
    );
    const ring = await p.allocCoherent(3 * 4096);
    assert.equal(ring.mapping.bus, ring.pages.addr);
    assert.deepEqual(xen.calls, [], 'no hypercall at all');
    const { entries } = env.ledger.page(0, 10);
    assert.ok(typeof entries[0]?.mappedAt === 'number', 'stamped when mapped');
    assert.deepEqual(
      { ...entries[0], mappedAt: undefined },
      {
        mappedAt: undefined,
        what: 'buffer',
        bus: '0x20000010',
        len: 512,
        pseudo: '0x20000010',
        mfns: [0x400fe],
      },
    );
    assert.equal(entries[1]?.what, 'ring');
    assert.equal(entries[1]?.mfns.length, 3);
  });

  it('xen-swiotlb gives machine addresses, exchanges a discontiguous ring and bounces a straddling buffer', async () => {
    const p = xenSwiotlbPolicy(env, 8);
    await p.init();
    assert.deepEqual(xen.calls, ['memory_exchange:8'], 'the bounce pool is exchanged at init');
    const one = await p.map(pseudoPhysAddr(0x2001_0020n), 4000, 'from-device');
    assert.equal(one.bus, BigInt(env.p2m.mfnOf(0x20010)) * 4096n + 0x20n);
    assert.equal(one.machine, one.bus);
    assert.equal(one.bounce, null);
    assert.deepEqual(
      one.steps.map((s) => `${s.fn}/${s.by}`),
      ['pvP2m/p2m', 'machineAsBusIdentity/identity'],
    );

    const ring = await p.allocCoherent(3 * 4096);
    assert.deepEqual(xen.calls.slice(1), ['memory_exchange:3']);
    assert.equal(env.p2m.machineContiguous(ring.pages.addr, 3 * 4096), true);
    assert.equal(ring.mapping.bus, BigInt(env.p2m.mfnOf(ring.pages.pfn)) * 4096n);

    // pfns 0x20021/0x20022 sit in different 2-page runs: not machine-contiguous.
    const straddle = pseudoPhysAddr(0x2002_1800n);
    assert.equal(env.p2m.machineContiguous(straddle, 4096), false);
    const b = await p.map(straddle, 4096, 'to-device');
    assert.notEqual(b.bounce, null);
    assert.equal(b.bounce! & 0xfffn, 0x800n, 'the bounce slot keeps the page offset');
    assert.equal(env.p2m.machineContiguous(b.bounce!, 4096), true);
    assert.equal(b.bus, BigInt(env.p2m.mfnOf(Number(b.bounce! >> 12n))) * 4096n + 0x800n);
    const last = env.ledger.page(0, 100).entries.at(-1);
    assert.equal(last?.what, 'bounce');
    // The policy owns the copies: to the slot for the device, out of it for the CPU.
    const bytes = new Uint8Array([1, 2, 3]);
    assert.deepEqual(p.syncForDevice(b, bytes), [
      { addr: straddle, bytes },
      { addr: b.bounce, bytes },
    ]);
    assert.deepEqual(p.deviceWritten(b), { addr: b.bounce, len: 4096 });
    assert.deepEqual(p.syncForCpu(b, bytes), [{ addr: straddle, bytes }]);
    assert.deepEqual(p.syncForDevice(one, bytes), [{ addr: one.pseudo, bytes }]);
    assert.deepEqual(p.syncForCpu(one, bytes), [], 'an unbounced buffer is the device view');
    await p.unmap(b);
    const again = await p.map(straddle, 4096, 'to-device');
    assert.equal(again.bounce, b.bounce, 'the slot was returned to the pool');
  });

  it('iommu maps through Xen at IOVAs above 4 GiB and unmaps after use', async () => {
    const p = iommuPolicy(env);
    const a = pseudoPhysAddr(0x2000_4100n);
    const m = await p.map(a, 8192, 'from-device');
    assert.ok(m.bus >= 0x1_0000_0000n, 'IOVA is above 4 GiB');
    assert.equal(m.bus & 0xfffn, 0x100n);
    assert.equal(m.by, 'iommu');
    assert.deepEqual(xen.calls, ['iommu_map:0x100000000:3']);
    assert.deepEqual(
      [0, 1, 2].map((i) => xen.iommu.get(0x100000 + i)?.mfn),
      [0x20004, 0x20005, 0x20006].map((pf) => env.p2m.mfnOf(pf)),
    );
    assert.equal(xen.iommu.get(0x100000)?.write, true, 'from-device mappings are writable');
    assert.equal(m.machine, BigInt(env.p2m.mfnOf(0x20004)) * 4096n + 0x100n);
    const ro = await p.map(pseudoPhysAddr(0x2000_8000n), 512, 'to-device');
    assert.equal(xen.iommu.get(Number(ro.bus >> 12n))?.write, false);
    await p.unmap(m);
    assert.equal(xen.calls.at(-1), 'iommu_unmap:0x100000000:3');
    assert.equal(xen.iommu.has(0x100000), false);
    const reuse = await p.map(a, 100, 'to-device');
    assert.equal(reuse.bus, 0x1_0000_0100n, 'the IOVA is reused only after its unmap');
    assert.deepEqual(env.ledger.page(0, 1).entries[0]?.mfns.length, 3);
  });

  it('iommu maps asked in one turn with one hypercall at contiguous IOVAs, each its own mapping', async () => {
    const p = iommuPolicy(env);
    const bufs = [0x2000_0000n, 0x2000_2100n, 0x2000_5000n].map((a) => pseudoPhysAddr(a));
    const ms = await Promise.all([
      p.map(bufs[0]!, 4096, 'to-device'),
      p.map(bufs[1]!, 4096, 'from-device'),
      p.map(bufs[2]!, 100, 'bidirectional'),
    ]);
    assert.deepEqual(xen.calls, ['iommu_map:0x100000000:1,0x100001000:2,0x100003000:1']);
    assert.deepEqual(
      ms.map((m) => m.bus),
      [0x1_0000_0000n, 0x1_0000_1100n, 0x1_0000_3000n],
    );
    ms.forEach((m, i) => {
      const pfn = Number(bufs[i]! >> 12n);
      assert.equal(m.machine, BigInt(env.p2m.mfnOf(pfn)) * 4096n + (bufs[i]! & 0xfffn));
      assert.deepEqual(
        m.steps.map((s) => s.fn),
        ['iommuMapIova'],
      );
    });
    assert.equal(xen.iommu.get(0x100000)?.write, false, 'to-device: read-only');
    assert.equal(xen.iommu.get(0x100001)?.write, true);
    assert.deepEqual(
      env.ledger.page(0, 10).entries.map((e) => e.bus),
      ['0x100000000', '0x100001100', '0x100003000'],
    );
    // Unmaps of one turn go out together, adjacent ranges merged.
    await Promise.all(ms.map((m) => p.unmap(m)));
    assert.deepEqual(xen.calls.slice(1), ['iommu_unmap:0x100000000:4']);
    assert.equal(xen.iommu.size, 0);
  });

  it('iommu lazy unmap: an IOVA is handed out again only after its unmap was acknowledged', async () => {
    const p = iommuPolicy(env);
    assert.equal(p.deferredUnmap, true);
    const a = pseudoPhysAddr(0x2000_0000n);
    const m1 = await p.map(a, 4096, 'to-device');
    let open!: () => void;
    xen.unmapGate = new Promise<void>((r) => (open = r));
    let acked = false;
    const gone = p.unmap(m1).then(() => (acked = true));
    await waitFor('the queued unmap sent', () =>
      xen.calls.some((c) => c.startsWith('iommu_unmap')) ? true : undefined,
    );
    const m2 = await p.map(a, 4096, 'to-device');
    assert.equal(acked, false);
    assert.notEqual(m2.bus, m1.bus, 'not reused while the unmap is unanswered');
    const entryOf = (bus: bigint) =>
      env.ledger.page(0, 100).entries.filter((e) => BigInt(e.bus) === bus);
    assert.equal(entryOf(m1.bus)[0]?.unmappedAt, undefined, 'live until acknowledged');
    open();
    await gone;
    const m3 = await p.map(pseudoPhysAddr(0x2000_1000n), 4096, 'to-device');
    assert.equal(m3.bus, m1.bus, 'reused once the unmap was acknowledged');
    // The oracle's lifetimes: the old mapping ended at the ack, the reuse is live.
    const [old, fresh] = entryOf(m1.bus);
    assert.ok(old?.unmappedAt !== undefined && old.unmappedAt >= (old.mappedAt ?? 0));
    assert.ok(fresh?.mappedAt !== undefined && fresh.mappedAt >= old.unmappedAt);
    assert.equal(fresh.unmappedAt, undefined);
    assert.equal(xen.iommu.has(Number(m1.bus >> 12n)), true, 'mapped anew, to the new buffer');
  });

  it('iommu strict mode: the unmap is sent within the turn and awaited', async () => {
    const p = iommuPolicy(env, { flush: { ...LAZY_FLUSH, strict: true } });
    assert.equal(p.deferredUnmap, false);
    const m = await p.map(pseudoPhysAddr(0x2000_0000n), 4096, 'to-device');
    await p.unmap(m);
    assert.equal(xen.calls.at(-1), 'iommu_unmap:0x100000000:1');
    assert.equal(xen.iommu.size, 0);
  });

  it('iommu: a list Xen refuses is tried buffer by buffer, so only the bad buffer fails', async () => {
    const p = iommuPolicy(env);
    xen.refusePfns.add(0x20005);
    const out = await Promise.allSettled([
      p.map(pseudoPhysAddr(0x2000_0000n), 4096, 'to-device'),
      p.map(pseudoPhysAddr(0x2000_5000n), 4096, 'to-device'),
      p.map(pseudoPhysAddr(0x2000_8000n), 4096, 'to-device'),
    ]);
    assert.deepEqual(
      out.map((o) => o.status),
      ['fulfilled', 'rejected', 'fulfilled'],
    );
    const err = (out[1] as PromiseRejectedResult).reason as { code?: string };
    assert.equal(err.code, 'NOT_OWNER');
    assert.equal(xen.calls[0]?.split(',').length, 3, 'first as one list');
    assert.equal(xen.calls.length, 4, 'then each buffer alone');
    assert.equal(env.ledger.page(0, 10).entries.length, 2, 'only mapped buffers are in the ledger');
  });
});
