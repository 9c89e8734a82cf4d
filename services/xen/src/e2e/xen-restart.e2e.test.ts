import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  BindMsi,
  FrameOwners,
  IommuConfigure,
  IommuLookup,
  IommuMapHypercall,
  IommuUnmapHypercall,
  MemoryExchange,
  P2mGet,
  XenConfigure,
} from '@nestlab/protocol';
import { TestFleet, call, waitFor, type SpawnedService } from '@nestlab/testing';
import { FakeL0 } from './fake-l0.js';
import { BDF, xenConfig } from './xen-config.js';

const STACK = 'xen-restart';
const CONFIG = xenConfig(5);

describe('xen: domains, exchanges, bindings and IOMMU mappings survive a SIGKILL', () => {
  const fleet = new TestFleet({ stack: STACK, services: ['iommu', 'xen'], dataDir: true });
  let nc: NatsConnection;
  let xen: SpawnedService;
  let l0: FakeL0;

  /** Everything dom0 relies on after probe, as Xen answers it. */
  const view = async (mfns: number[]) => {
    const state = (await (await fetch(`${xen.adminUrl}/state`)).json()) as Record<string, unknown>;
    return {
      p2m: await call(nc, STACK, P2mGet, { domain: 0 }),
      owners: await call(nc, STACK, FrameOwners, { mfns }),
      state: { ...state, stack: undefined },
    };
  };
  const restart = async () => {
    await fleet.kill('xen');
    await assert.rejects(call(nc, STACK, P2mGet, { domain: 0 }), 'down while dead');
    xen = await fleet.spawn('xen');
  };

  before(async () => {
    await fleet.start();
    ({ nc } = fleet);
    xen = fleet.service('xen');
    l0 = new FakeL0(nc, STACK);
    await l0.start();
  });
  after(async () => {
    await l0?.stop();
    await fleet.stop();
  });

  it('answers exactly as before, and tells L0 its CPU frames again', async () => {
    await call(nc, STACK, IommuConfigure, { mode: 'translate' });
    await call(nc, STACK, XenConfigure, CONFIG);
    const pfns = Array.from({ length: 16 }, (_, i) => 0x3a600 + i);
    const ex = await call(nc, STACK, MemoryExchange, { domain: 0, pfns });
    const { port: p1 } = await call(nc, STACK, BindMsi, { domain: 0, bdf: BDF, vector: 1 });
    const { port: p2 } = await call(nc, STACK, BindMsi, { domain: 0, bdf: BDF, vector: 2 });
    const map = (iova: string, first: number) =>
      call(nc, STACK, IommuMapHypercall, {
        domain: 0,
        bdf: BDF,
        ranges: [{ iova, pfns: [first, first + 1], write: true }],
      });
    const kept = await map('0x100000000', 0x3a600);
    await map('0x100002000', 0x20000);
    await call(nc, STACK, IommuUnmapHypercall, {
      domain: 0,
      bdf: BDF,
      ranges: [{ iova: '0x100002000', pages: 2 }],
    });
    const probe = [ex.mfnFirst, ex.mfnFirst + 15, ...kept.ranges[0]!.mfns, 0x70000, 0];
    const before = await view(probe);
    assert.deepEqual(before.owners.owners.slice(0, 2), ['dom0', 'dom0']);
    assert.equal((before.state as { dmaMaps?: number }).dmaMaps, 1);
    const lastPush = l0.last();
    const pushes = l0.updates.length;

    await restart();
    assert.deepEqual(await view(probe), before);
    await waitFor('CpuFrames pushed again', () => (l0.updates.length > pushes ? true : undefined));
    assert.deepEqual(l0.last(), lastPush, 'the same frame set as before the crash');
    // Bindings kept their ports: rebinding answers the same port, a new one gets the next.
    assert.deepEqual(await call(nc, STACK, BindMsi, { domain: 0, bdf: BDF, vector: 1 }), {
      port: p1,
    });
    const { port: p3 } = await call(nc, STACK, BindMsi, { domain: 0, bdf: BDF, vector: 3 });
    assert.ok(p3 !== p1 && p3 !== p2, `new port ${p3} is not a used one`);
    // The IOMMU (its own process) still has the mapping Xen made.
    const t = await call(nc, STACK, IommuLookup, { bdf: BDF, iova: '0x100001000' });
    assert.equal(t.machine, `0x${(kept.ranges[0]!.mfns[1]! * 4096).toString(16)}`);
  });

  it('replays what came after the last compaction, and a new configure starts over', async () => {
    const ex = await call(nc, STACK, MemoryExchange, { domain: 0, pfns: [0x30000] });
    await restart();
    const p2m = await call(nc, STACK, P2mGet, { domain: 0 });
    const r = p2m.ranges.find((x) => x.pfn <= 0x30000 && 0x30000 < x.pfn + x.count)!;
    assert.equal(r.mfn + (0x30000 - r.pfn), ex.mfnFirst);
    const fresh = await call(nc, STACK, XenConfigure, { ...CONFIG, seed: 6 });
    await restart();
    assert.equal((await call(nc, STACK, P2mGet, { domain: 0 })).ranges.length, fresh.p2mRanges);
    const state = (await (await fetch(`${xen.adminUrl}/state`)).json()) as {
      bindings: unknown[];
      config: { seed: number };
      dmaMaps: number;
    };
    assert.deepEqual([state.bindings, state.config.seed, state.dmaMaps], [[], 6, 0]);
  });
});
