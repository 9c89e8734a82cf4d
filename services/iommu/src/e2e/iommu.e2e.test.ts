import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  IommuConfigure,
  IommuFaults,
  IommuLookup,
  IommuMap,
  IommuTranslate,
  IommuUnmap,
  IotlbInvalidate,
  IotlbPrime,
  decodeRequest,
  encodeFrame,
  subjectOf,
} from '@nestlab/protocol';
import { TestFleet, waitFor, type SpawnedService } from '@nestlab/testing';
import { call, callError, callRawError, metricSum, metricsText } from '@nestlab/testing';

const STACK = 'iommu-e2e';
const BDF = '0000:00:04.0';
const IOVA = '0x100000000';

describe('iommu service over real NATS', () => {
  const fleet = new TestFleet({ stack: STACK, services: ['iommu'] });
  let svc: SpawnedService;
  let nc: NatsConnection;

  before(async () => {
    await fleet.start();
    svc = fleet.service('iommu');
    ({ nc } = fleet);
  });
  after(() => fleet.stop());

  it('refuses everything but configure while off', async () => {
    for (const err of [
      await callError(nc, STACK, IommuTranslate, { bdf: BDF, iova: IOVA, write: false }),
      await callError(nc, STACK, IommuMap, {
        bdf: BDF,
        ranges: [{ iova: IOVA, mfns: [1], read: true, write: true }],
      }),
    ]) {
      assert.equal(err.code, 'IOMMU_OFF');
      assert.equal(err.kind, 'input');
    }
  });

  it('translates mapped pages with their offset and permissions', async () => {
    assert.deepEqual(await call(nc, STACK, IommuConfigure, { mode: 'translate' }), {
      mode: 'translate',
    });
    const mapped = await call(nc, STACK, IommuMap, {
      bdf: BDF,
      ranges: [{ iova: IOVA, mfns: [0x70123, 0x40000], read: true, write: false }],
    });
    assert.deepEqual(mapped, { mapped: 2 });
    const t = await call(nc, STACK, IommuTranslate, {
      bdf: BDF,
      iova: '0x100001234',
      write: false,
    });
    assert.deepEqual(t, { machine: '0x40000234', read: true, write: false, by: 'iommu' });
    const t0 = await call(nc, STACK, IommuTranslate, {
      bdf: BDF,
      iova: '0x100000008',
      write: false,
    });
    assert.equal(t0.machine, '0x70123008');
    assert.deepEqual(
      t0.following,
      [{ machinePage: '0x40000000', read: true, write: false }],
      'the reply carries the mapped page after it (IOTLB range fill)',
    );
  });

  it('faults on a write to a read-only page, an unmapped IOVA and another device, and logs them', async () => {
    const { next: since } = await call(nc, STACK, IommuFaults, { since: 0 });
    const perm = await callError(nc, STACK, IommuTranslate, {
      bdf: BDF,
      iova: '0x100001000',
      write: true,
    });
    assert.equal(perm.code, 'IOMMU_FAULT_PERMISSION');
    assert.equal(perm.kind, 'guest');
    const absent = await callError(nc, STACK, IommuTranslate, {
      bdf: BDF,
      iova: '0x100002000',
      write: false,
    });
    assert.equal(absent.code, 'IOMMU_FAULT_NOT_PRESENT');
    const other = await callError(nc, STACK, IommuTranslate, {
      bdf: '0000:00:05.0',
      iova: IOVA,
      write: false,
    });
    assert.equal(other.code, 'IOMMU_FAULT_NOT_PRESENT', 'domains are per device');
    const log = await call(nc, STACK, IommuFaults, { since });
    assert.deepEqual(
      log.faults.map((f) => [f.bdf, f.iova, f.write, f.reason]),
      [
        [BDF, '0x100001000', true, 'IOMMU_FAULT_PERMISSION'],
        [BDF, '0x100002000', false, 'IOMMU_FAULT_NOT_PRESENT'],
        ['0000:00:05.0', IOVA, false, 'IOMMU_FAULT_NOT_PRESENT'],
      ],
    );
    assert.equal(log.next, since + 3);
    const metrics = await metricsText(svc.adminUrl);
    const faults = (reason: string) => metricSum(metrics, 'nestlab_iommu_faults_total', { reason });
    assert.equal(faults('IOMMU_FAULT_NOT_PRESENT'), 2);
    assert.equal(faults('IOMMU_FAULT_PERMISSION'), 1);
    assert.equal(metricSum(metrics, 'nestlab_iommu_present_pages'), 2);
  });

  it('publishes the IOTLB invalidation before it replies to an unmap', async () => {
    // One wildcard subscription sees both the invalidate and our reply inbox,
    // in the order the server received them from the service.
    const seen: string[] = [];
    const invalidations: unknown[] = [];
    const invSubject = subjectOf(IotlbInvalidate, STACK);
    const sub = nc.subscribe('>', {
      callback: (_e, m) => {
        seen.push(m.subject);
        if (m.subject === invSubject)
          invalidations.push(decodeRequest(IotlbInvalidate, m.data).head);
      },
    });
    await nc.flush();
    const reply = await call(nc, STACK, IommuUnmap, {
      bdf: BDF,
      ranges: [{ iova: IOVA, pages: 2 }],
    });
    await waitFor('reply seen by the wildcard', () =>
      seen.some((s) => s.startsWith('_INBOX.')) ? true : undefined,
    );
    sub.unsubscribe();
    assert.deepEqual(reply, { unmapped: 2 });
    const inv = seen.indexOf(invSubject);
    const rep = seen.findIndex((s) => s.startsWith('_INBOX.'));
    assert.ok(inv >= 0 && inv < rep, `order: ${seen.join(', ')}`);
    assert.deepEqual(invalidations, [{ bdf: BDF, ranges: [{ iova: IOVA, pages: 2 }] }]);
    const gone = await callError(nc, STACK, IommuTranslate, { bdf: BDF, iova: IOVA, write: false });
    assert.equal(gone.code, 'IOMMU_FAULT_NOT_PRESENT');
  });

  it('primes the IOTLB with a new mapping before it replies to the map (translate mode only)', async () => {
    const seen: string[] = [];
    const primes: unknown[] = [];
    const primeSubject = subjectOf(IotlbPrime, STACK);
    const primedBefore = metricSum(
      await metricsText(svc.adminUrl),
      'nestlab_iommu_iotlb_primes_total',
    );
    const sub = nc.subscribe('>', {
      callback: (_e, m) => {
        seen.push(m.subject);
        if (m.subject === primeSubject) primes.push(decodeRequest(IotlbPrime, m.data).head);
      },
    });
    await nc.flush();
    const ranges = [
      { iova: '0x200000000', mfns: [0x51, 0x52], read: true, write: false },
      { iova: '0x200003000', mfns: [0x60], read: true, write: true },
    ];
    assert.deepEqual(await call(nc, STACK, IommuMap, { bdf: BDF, ranges }), { mapped: 3 });
    await waitFor('reply seen by the wildcard', () =>
      seen.some((s) => s.startsWith('_INBOX.')) ? true : undefined,
    );
    const prime = seen.indexOf(primeSubject);
    const rep = seen.findIndex((s) => s.startsWith('_INBOX.'));
    assert.ok(prime >= 0 && prime < rep, `order: ${seen.join(', ')}`);
    assert.deepEqual(primes, [{ bdf: BDF, ranges }]);
    // A refused map (a page already present) primes nothing.
    const err = await callError(nc, STACK, IommuMap, { bdf: BDF, ranges: [ranges[1]!] });
    assert.equal(err.code, 'IOVA_IN_USE');
    await call(nc, STACK, IommuUnmap, {
      bdf: BDF,
      ranges: [
        { iova: '0x200000000', pages: 2 },
        { iova: '0x200003000', pages: 1 },
      ],
    });
    // Passthrough translates by identity: nothing to cache, nothing primed.
    await call(nc, STACK, IommuConfigure, { mode: 'passthrough' });
    await call(nc, STACK, IommuMap, { bdf: BDF, ranges: [ranges[1]!] });
    await call(nc, STACK, IommuConfigure, { mode: 'translate' });
    await nc.flush();
    sub.unsubscribe();
    assert.equal(primes.length, 1, 'only the accepted map in translate mode primed');
    const metrics = await metricsText(svc.adminUrl);
    assert.equal(metricSum(metrics, 'nestlab_iommu_iotlb_primes_total'), primedBefore + 1);
  });

  it('counts an unmap of unmapped pages instead of failing', async () => {
    assert.deepEqual(
      await call(nc, STACK, IommuUnmap, { bdf: BDF, ranges: [{ iova: IOVA, pages: 3 }] }),
      {
        unmapped: 0,
      },
    );
    assert.equal(
      metricSum(await metricsText(svc.adminUrl), 'nestlab_iommu_unmap_absent_pages_total'),
      3,
    );
  });

  it('translates by identity in passthrough, and configure clears tables and faults', async () => {
    await call(nc, STACK, IommuMap, {
      bdf: BDF,
      ranges: [{ iova: '0x200000000', mfns: [5], read: true, write: true }],
    });
    await call(nc, STACK, IommuConfigure, { mode: 'passthrough' });
    const t = await call(nc, STACK, IommuTranslate, { bdf: BDF, iova: '0x12345678', write: true });
    assert.deepEqual(t, { machine: '0x12345678', read: true, write: true, by: 'identity' });
    await call(nc, STACK, IommuConfigure, { mode: 'translate' });
    const e = await callError(nc, STACK, IommuTranslate, {
      bdf: BDF,
      iova: '0x200000000',
      write: false,
    });
    assert.equal(e.code, 'IOMMU_FAULT_NOT_PRESENT');
    const state = (await (await fetch(`${svc.adminUrl}/state`)).json()) as {
      mode: string;
      recentFaults: unknown[];
      domains: unknown[];
    };
    assert.equal(state.mode, 'translate');
    assert.equal(state.recentFaults.length, 1, 'only the fault after the configure');
    assert.deepEqual(state.domains, []);
  });

  it('answers malformed and invalid requests with typed errors and keeps serving', async () => {
    const cases: [Uint8Array, string][] = [
      [new Uint8Array([1, 2]), 'BAD_FRAME'],
      [encodeFrame({ bdf: BDF, iova: 'zz', write: false }), 'SCHEMA_INVALID'],
      [encodeFrame({ bdf: BDF, iova: IOVA, write: false, extra: 1 }), 'SCHEMA_INVALID'],
    ];
    for (const [bytes, code] of cases) {
      const err = await callRawError(nc, STACK, IommuTranslate, bytes);
      assert.equal(err.code, code);
      assert.equal(err.kind, 'input');
    }
    const unaligned = await callError(nc, STACK, IommuMap, {
      bdf: BDF,
      ranges: [{ iova: '0x1001', mfns: [1], read: true, write: true }],
    });
    assert.equal(unaligned.code, 'BAD_IOVA');
    const wraps = await callError(nc, STACK, IommuUnmap, {
      bdf: BDF,
      ranges: [{ iova: '0xfffffffffffff000', pages: 2 }],
    });
    assert.equal(wraps.code, 'BAD_IOVA');
    await call(nc, STACK, IommuMap, {
      bdf: BDF,
      ranges: [{ iova: '0x3000', mfns: [1, 2], read: true, write: true }],
    });
    const twice = await callError(nc, STACK, IommuMap, {
      bdf: BDF,
      ranges: [{ iova: '0x4000', mfns: [9], read: true, write: true }],
    });
    assert.equal(twice.code, 'IOVA_IN_USE');
    const ok = await call(nc, STACK, IommuTranslate, { bdf: BDF, iova: '0x4000', write: true });
    assert.equal(ok.machine, '0x2000', 'the refused map changed nothing');
  });

  it('maps and unmaps a list of ranges: all or nothing, one invalidation for the list', async () => {
    await call(nc, STACK, IommuConfigure, { mode: 'translate' });
    const A = '0x300000000';
    const B = '0x300002000';
    const C = '0x300010000';
    const mapped = await call(nc, STACK, IommuMap, {
      bdf: BDF,
      ranges: [
        { iova: A, mfns: [0x11, 0x12], read: true, write: true },
        { iova: B, mfns: [0x20], read: true, write: false },
      ],
    });
    assert.deepEqual(mapped, { mapped: 3 });
    const t = await call(nc, STACK, IommuTranslate, { bdf: BDF, iova: A, write: true });
    assert.deepEqual(t.following, [
      { machinePage: '0x12000', read: true, write: true },
      { machinePage: '0x20000', read: true, write: false },
    ]);
    // A good range before a bad one: the whole list is refused and C stays unmapped.
    for (const [ranges, code] of [
      [
        [
          { iova: C, mfns: [0x30], read: true, write: true },
          { iova: B, mfns: [0x31], read: true, write: true },
        ],
        'IOVA_IN_USE',
      ],
      [
        [
          { iova: C, mfns: [0x30, 0x31], read: true, write: true },
          { iova: '0x300011000', mfns: [0x32], read: true, write: true },
        ],
        'IOVA_IN_USE',
      ],
      [
        [
          { iova: C, mfns: [0x30], read: true, write: true },
          { iova: '0x300020800', mfns: [0x32], read: true, write: true },
        ],
        'BAD_IOVA',
      ],
    ] as const) {
      const err = await callError(nc, STACK, IommuMap, {
        bdf: BDF,
        ranges: ranges.map((r) => ({ ...r, mfns: [...r.mfns] })),
      });
      assert.equal(err.code, code);
      assert.equal(
        (await call(nc, STACK, IommuLookup, { bdf: BDF, iova: C })).mapped,
        false,
        `nothing of a refused list is applied (${code})`,
      );
    }
    const invalidations: unknown[] = [];
    const sub = nc.subscribe(subjectOf(IotlbInvalidate, STACK), {
      callback: (_e, m) => {
        invalidations.push(decodeRequest(IotlbInvalidate, m.data).head);
      },
    });
    await nc.flush();
    const ranges = [
      { iova: A, pages: 2 },
      { iova: B, pages: 1 },
    ];
    assert.deepEqual(await call(nc, STACK, IommuUnmap, { bdf: BDF, ranges }), { unmapped: 3 });
    await waitFor('the invalidation', () => (invalidations.length > 0 ? true : undefined));
    sub.unsubscribe();
    assert.deepEqual(invalidations, [{ bdf: BDF, ranges }]);
    for (const iova of [A, '0x300001000', B])
      assert.equal((await call(nc, STACK, IommuLookup, { bdf: BDF, iova })).mapped, false);
  });
});
