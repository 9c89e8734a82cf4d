import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  BindMsi,
  EventChannel,
  FaultControl,
  FrameOwners,
  IommuConfigure,
  IommuLookup,
  IommuMapHypercall,
  IommuTranslate,
  IommuUnmapHypercall,
  MemoryExchange,
  Msi,
  P2mGet,
  XenConfigure,
  decodeRequest,
  encodeFrame,
  encodeRequest,
  subjectOf,
} from '@nestlab/protocol';
import { TestFleet, waitFor, type SpawnedService } from '@nestlab/testing';
import { call, callError, callRawError, metricSum, metricsText } from '@nestlab/testing';
import { FakeL0 } from './fake-l0.js';
import { BDF, GIB, xenConfig } from './xen-config.js';

const STACK = 'xen-e2e';
const CONFIG = xenConfig(1);

const lookup = (ranges: { pfn: number; mfn: number; count: number }[], pfn: number) => {
  const r = ranges.find((x) => x.pfn <= pfn && pfn < x.pfn + x.count);
  return r && r.mfn + (pfn - r.pfn);
};

describe('xen service over real NATS', () => {
  const fleet = new TestFleet({ stack: STACK, services: ['xen', 'iommu'] });
  let xen: SpawnedService;
  let iommu: SpawnedService;
  let nc: NatsConnection;
  let l0: FakeL0;

  before(async () => {
    await fleet.start();
    [xen, iommu] = [fleet.service('xen'), fleet.service('iommu')];
    ({ nc } = fleet);
    l0 = new FakeL0(nc, STACK);
  });
  after(() => fleet.stop());

  it('refuses queries before it is configured', async () => {
    const err = await callError(nc, STACK, P2mGet, { domain: 0 });
    assert.equal(err.code, 'NOT_CONFIGURED');
    assert.equal(err.kind, 'input');
  });

  it('answers a transient error when L0 does not take the CpuFrames update', async () => {
    const err = await callError(nc, STACK, XenConfigure, CONFIG);
    assert.equal(err.code, 'L0_UNAVAILABLE');
    assert.equal(err.kind, 'transient');
    const p2m = await call(nc, STACK, P2mGet, { domain: 0 });
    assert.equal(p2m.pages, GIB / 4096, 'the layout is built all the same');
  });

  it('configures the measured dom0 layout and pushes dom0’s frames to L0', async () => {
    await l0.start();
    const reply = await call(nc, STACK, XenConfigure, CONFIG);
    assert.equal(reply.dom0Pages, GIB / 4096);
    assert.deepEqual(reply.dom0MachineRanges, [
      { first: '0x37f00000', last: '0x6fffffff' },
      { first: '0x70100000', last: '0x77ffffff' },
    ]);
    assert.deepEqual(l0.last(), {
      domain: 0,
      ranges: [
        { first: 0x37f00, count: 0x38100 },
        { first: 0x70100, count: 0x7f00 },
      ],
    });
    const p2m = await call(nc, STACK, P2mGet, { domain: 0 });
    assert.equal(p2m.ranges.length, reply.p2mRanges);
    const m = lookup(p2m.ranges, 0x832f)!;
    assert.ok(m >= 0x40000 && m < 0x70000, `pfn 0x832f -> mfn 0x${m.toString(16)}`);
    assert.equal(lookup(p2m.ranges, 0x8000), undefined, 'the E820 hole is unmapped');
    const owners = await call(nc, STACK, FrameOwners, { mfns: [0, m, 0x80000, 0x70000] });
    assert.deepEqual(owners.owners, ['xen', 'dom0', 'none', 'free']);
    assert.equal((await callError(nc, STACK, P2mGet, { domain: 5 })).code, 'NO_SUCH_DOMAIN');
  });

  it('exchanges pfns for machine-contiguous frames and tells L0', async () => {
    const pfns = Array.from({ length: 64 }, (_, i) => 0x3a600 + i);
    const pushes = l0.updates.length;
    const ex = await call(nc, STACK, MemoryExchange, { domain: 0, pfns });
    assert.deepEqual(
      ex.updates,
      pfns.map((pfn, i) => ({ pfn, mfn: ex.mfnFirst + i })),
    );
    assert.ok(ex.mfnFirst < 0x37f00, 'from low memory');
    assert.equal(l0.updates.length, pushes + 1);
    assert.ok(
      l0
        .last()!
        .ranges.some((r) => r.first <= ex.mfnFirst && ex.mfnFirst + 64 <= r.first + r.count),
    );
    const p2m = await call(nc, STACK, P2mGet, { domain: 0 });
    assert.equal(lookup(p2m.ranges, 0x3a63f), ex.mfnFirst + 63);
    const owners = await call(nc, STACK, FrameOwners, { mfns: [ex.mfnFirst, ex.mfnFirst + 63] });
    assert.deepEqual(owners.owners, ['dom0', 'dom0']);
    const hole = await callError(nc, STACK, MemoryExchange, { domain: 0, pfns: [0x8000] });
    assert.equal(hole.code, 'PFN_UNMAPPED');
    assert.equal(hole.kind, 'guest');
  });

  it('rolls an exchange back when L0 does not answer', async () => {
    await l0.stop();
    const before = await call(nc, STACK, P2mGet, { domain: 0 });
    const err = await callError(nc, STACK, MemoryExchange, { domain: 0, pfns: [0x20000, 0x20001] });
    assert.equal(err.code, 'L0_UNAVAILABLE');
    assert.deepEqual(await call(nc, STACK, P2mGet, { domain: 0 }), before);
    await l0.start();
  });

  it('routes a bound MSI to dom0’s event channel, and drops an unbound one', async () => {
    const { port } = await call(nc, STACK, BindMsi, { domain: 0, bdf: BDF, vector: 1 });
    assert.ok(port >= 1 && port <= 4095);
    assert.deepEqual(await call(nc, STACK, BindMsi, { domain: 0, bdf: BDF, vector: 1 }), { port });
    const { port: port0 } = await call(nc, STACK, BindMsi, { domain: 0, bdf: BDF, vector: 0 });
    assert.notEqual(port0, port);
    const got: { subject: string; port: number }[] = [];
    const sub = nc.subscribe(`nestlab.${STACK}.dom0.evtchn.*.notify`, {
      callback: (_e, m) => {
        got.push({ subject: m.subject, ...decodeRequest(EventChannel, m.data).head });
      },
    });
    await nc.flush();
    nc.publish(subjectOf(Msi, STACK), encodeRequest(Msi, { bdf: BDF, vector: 7 }));
    nc.publish(subjectOf(Msi, STACK), encodeRequest(Msi, { bdf: BDF, vector: 1 }));
    await waitFor('event channel notification', () => (got.length > 0 ? true : undefined));
    await waitFor('unbound MSI counted', async () =>
      metricSum(await metricsText(xen.adminUrl), 'nestlab_xen_msis_unbound_total', { bdf: BDF }) ===
      1
        ? true
        : undefined,
    );
    sub.unsubscribe();
    assert.deepEqual(got, [
      { subject: subjectOf(EventChannel, STACK, { port: String(port) }), port },
    ]);
  });

  it('programs the IOMMU for dom0’s pfns; the translation lands on their machine frames', async () => {
    await call(nc, STACK, IommuConfigure, { mode: 'translate' });
    const pfns = [0x832f, 0x1000];
    const mapped = await call(nc, STACK, IommuMapHypercall, {
      domain: 0,
      bdf: BDF,
      ranges: [{ iova: '0x100000000', pfns, write: true }],
    });
    const p2m = await call(nc, STACK, P2mGet, { domain: 0 });
    assert.deepEqual(
      mapped.ranges[0]!.mfns,
      pfns.map((p) => lookup(p2m.ranges, p)),
    );
    const t = await call(nc, STACK, IommuTranslate, { bdf: BDF, iova: '0x100001008', write: true });
    assert.equal(t.machine, `0x${(mapped.ranges[0]!.mfns[1]! * 4096 + 8).toString(16)}`);
    assert.equal(t.by, 'iommu');
    const hole = await callError(nc, STACK, IommuMapHypercall, {
      domain: 0,
      bdf: BDF,
      ranges: [{ iova: '0x100010000', pfns: [0x8000], write: false }],
    });
    assert.equal(hole.code, 'PFN_UNMAPPED');
    const again = await callError(nc, STACK, IommuMapHypercall, {
      domain: 0,
      bdf: BDF,
      ranges: [{ iova: '0x100000000', pfns: [0x2000], write: false }],
    });
    assert.equal(again.code, 'IOVA_IN_USE', "the IOMMU's verdict is passed on");
    const un = await call(nc, STACK, IommuUnmapHypercall, {
      domain: 0,
      bdf: BDF,
      ranges: [{ iova: '0x100000000', pages: 2 }],
    });
    assert.deepEqual(un, { unmapped: 2 });
    const gone = await callError(nc, STACK, IommuTranslate, {
      bdf: BDF,
      iova: '0x100001008',
      write: true,
    });
    assert.equal(gone.code, 'IOMMU_FAULT_NOT_PRESENT');
  });

  it('maps a list of ranges in one hypercall, all or nothing, and unmaps them in one', async () => {
    const p2m = await call(nc, STACK, P2mGet, { domain: 0 });
    const A = '0x200000000';
    const B = '0x200004000';
    const isMapped = async (iova: string) =>
      (await call(nc, STACK, IommuLookup, { bdf: BDF, iova })).mapped;
    // The second range names a pfn dom0 does not have: the first is not mapped either.
    const bad = await callError(nc, STACK, IommuMapHypercall, {
      domain: 0,
      bdf: BDF,
      ranges: [
        { iova: A, pfns: [0x1100, 0x1101], write: true },
        { iova: B, pfns: [0x8000], write: false },
      ],
    });
    assert.equal(bad.code, 'PFN_UNMAPPED');
    assert.equal(await isMapped(A), false, 'nothing of a refused list reaches the IOMMU');
    const ranges = [
      { iova: A, pfns: [0x1100, 0x1101], write: true },
      { iova: B, pfns: [0x1200], write: false },
    ];
    const mapped = await call(nc, STACK, IommuMapHypercall, { domain: 0, bdf: BDF, ranges });
    assert.deepEqual(
      mapped.ranges.map((r) => r.mfns),
      ranges.map((r) => r.pfns.map((p) => lookup(p2m.ranges, p))),
    );
    const t = await call(nc, STACK, IommuTranslate, { bdf: BDF, iova: B, write: false });
    assert.equal(t.machine, `0x${(mapped.ranges[1]!.mfns[0]! * 4096).toString(16)}`);
    const un = await call(nc, STACK, IommuUnmapHypercall, {
      domain: 0,
      bdf: BDF,
      ranges: [
        { iova: A, pages: 2 },
        { iova: B, pages: 1 },
      ],
    });
    assert.deepEqual(un, { unmapped: 3 });
    for (const iova of [A, '0x200001000', B]) assert.equal(await isMapped(iova), false);
  });

  it('answers malformed requests with typed errors and keeps serving', async () => {
    const cases: [Uint8Array, string][] = [
      [new Uint8Array([0xde, 0xad]), 'BAD_FRAME'],
      [encodeFrame({ ...CONFIG, bogus: true }), 'SCHEMA_INVALID'],
      [encodeFrame({ ...CONFIG, machineBytes: -1 }), 'SCHEMA_INVALID'],
    ];
    for (const [bytes, code] of cases) {
      const err = await callRawError(nc, STACK, XenConfigure, bytes);
      assert.equal(err.code, code);
      assert.equal(err.kind, 'input');
    }
    const tooBig = await callError(nc, STACK, XenConfigure, { ...CONFIG, dom0Bytes: 2 * GIB });
    assert.equal(tooBig.code, 'BAD_CONFIG');
    const unaligned = await callError(nc, STACK, IommuMapHypercall, {
      domain: 0,
      bdf: BDF,
      ranges: [{ iova: '0x100000800', pfns: [0x1000], write: false }],
    });
    assert.equal(unaligned.code, 'BAD_ADDRESS');
    const dup = await callError(nc, STACK, MemoryExchange, { domain: 0, pfns: [0x1000, 0x1000] });
    assert.equal(dup.code, 'DUPLICATE_PFN');
    assert.equal((await call(nc, STACK, P2mGet, { domain: 0 })).domain, 0);
    const metrics = await metricsText(xen.adminUrl);
    assert.equal(
      metricSum(metrics, 'nestlab_xen_hypercalls_total', { op: 'memory_exchange', result: 'ok' }),
      1,
    );
    assert.equal(metricSum(metrics, 'nestlab_xen_evtchn_sent_total', { domain: '0' }), 1);
    const state = (await (await fetch(`${xen.adminUrl}/state`)).json()) as {
      configured: boolean;
      domains: { id: number; pages: number }[];
      frameTable: { framesByOwner: Record<string, number> };
      bindings: unknown[];
    };
    assert.equal(state.configured, true);
    assert.deepEqual(
      state.domains.map((d) => [d.id, d.pages]),
      [[0, GIB / 4096]],
    );
    assert.equal(state.frameTable.framesByOwner['dom0'], GIB / 4096);
    assert.equal(state.bindings.length, 2);
  });

  it('lose-evtchn: counts delivered interrupts; the armed ones are routed but not notified', async () => {
    const { port } = await call(nc, STACK, BindMsi, { domain: 0, bdf: BDF, vector: 1 });
    const armed = await call(nc, STACK, FaultControl.xen.inject, {
      kind: 'lose-evtchn',
      after: 1,
      count: 2,
    });
    assert.deepEqual(armed, { armed: 2 });
    const got: number[] = [];
    const sub = nc.subscribe(`nestlab.${STACK}.dom0.evtchn.*.notify`, {
      callback: (_e, m) => {
        got.push(decodeRequest(EventChannel, m.data).head.port);
      },
    });
    await nc.flush();
    // An unbound MSI is not a delivered interrupt: it does not count.
    nc.publish(subjectOf(Msi, STACK), encodeRequest(Msi, { bdf: BDF, vector: 7 }));
    for (let i = 0; i < 5; i++)
      nc.publish(subjectOf(Msi, STACK), encodeRequest(Msi, { bdf: BDF, vector: 1 }));
    await waitFor('three notifications', () => (got.length >= 3 ? true : undefined));
    await nc.flush();
    const lost = async () =>
      metricSum(await metricsText(xen.adminUrl), 'nestlab_xen_evtchn_lost_total', { domain: '0' });
    await waitFor('two counted lost', async () => ((await lost()) === 2 ? true : undefined));
    assert.deepEqual(got, [port, port, port]);
    // Spent: the next interrupt is notified again.
    nc.publish(subjectOf(Msi, STACK), encodeRequest(Msi, { bdf: BDF, vector: 1 }));
    await waitFor('notified again', () => (got.length === 4 ? true : undefined));
    sub.unsubscribe();
    assert.equal(await lost(), 2);
    const fired = (await call(nc, STACK, FaultControl.xen.list, {})).domain.filter(
      (e) => e.kind === 'lose-evtchn',
    );
    assert.deepEqual(
      fired.map((e) => [e.n, e.detail]),
      [1, 2].map((n, i) => [
        i,
        `dom0 port ${port} (${BDF} vector 1): interrupt ${n} since arming not notified`,
      ]),
    );
  });

  it('runs a plain guest with an identity P2M and refuses Xen-only hypercalls', async () => {
    await call(nc, STACK, XenConfigure, { ...CONFIG, present: false });
    const p2m = await call(nc, STACK, P2mGet, { domain: 0 });
    assert.deepEqual(p2m.ranges, [{ pfn: 0, mfn: 0, count: GIB / 4096 }]);
    assert.deepEqual(l0.last(), { domain: 0, ranges: [{ first: 0, count: GIB / 4096 }] });
    const err = await callError(nc, STACK, MemoryExchange, { domain: 0, pfns: [1] });
    assert.equal(err.code, 'XEN_ABSENT');
    assert.equal(
      ((await (await fetch(`${xen.adminUrl}/state`)).json()) as { bindings: unknown[] }).bindings
        .length,
      0,
    );
  });

  it('answers IOMMU_UNAVAILABLE when the iommu service is gone', async () => {
    assert.equal(await iommu.stop(), 0);
    const err = await callError(nc, STACK, IommuMapHypercall, {
      domain: 0,
      bdf: BDF,
      ranges: [{ iova: '0x100000000', pfns: [0x1000], write: false }],
    });
    assert.equal(err.code, 'IOMMU_UNAVAILABLE');
    assert.equal(err.kind, 'transient');
  });
});
