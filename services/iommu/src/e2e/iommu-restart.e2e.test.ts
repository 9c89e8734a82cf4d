import assert from 'node:assert/strict';
import { appendFileSync, readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  IommuConfigure,
  IommuFaults,
  IommuLookup,
  IommuMap,
  IommuTranslate,
  IommuUnmap,
} from '@nestlab/protocol';
import { TestFleet, call, callError } from '@nestlab/testing';
import { journalPath } from '../persist/iommu-journal.js';

const STACK = 'iommu-restart';
const A = '0000:00:04.0';
const B = '0000:00:05.0';

/** Probes: every page of interest on both devices, plus the fault log. */
const PROBES = [
  [A, '0x100000000'],
  [A, '0x100001000'],
  [A, '0x100002000'],
  [A, '0x100003000'],
  [B, '0x200000000'],
  [B, '0x200001000'],
] as const;

describe('iommu: page tables and the fault log survive a SIGKILL', () => {
  const fleet = new TestFleet({ stack: STACK, services: ['iommu'], dataDir: true });
  let nc: NatsConnection;

  const view = async () => ({
    pages: await Promise.all(
      PROBES.map(([bdf, iova]) => call(nc, STACK, IommuLookup, { bdf, iova })),
    ),
    faults: await call(nc, STACK, IommuFaults, { since: 0 }),
  });
  const restart = async () => {
    await fleet.kill('iommu');
    await assert.rejects(call(nc, STACK, IommuLookup, { bdf: A, iova: '0x0' }), 'down while dead');
    await fleet.spawn('iommu');
  };

  before(async () => {
    await fleet.start();
    ({ nc } = fleet);
  });
  after(() => fleet.stop());

  it('comes back with the same mode, mappings, permissions and fault log', async () => {
    await call(nc, STACK, IommuConfigure, { mode: 'translate' });
    await call(nc, STACK, IommuMap, {
      bdf: A,
      ranges: [{ iova: '0x100000000', mfns: [0x70123, 0x40000, 0x40001], read: true, write: true }],
    });
    await call(nc, STACK, IommuMap, {
      bdf: B,
      ranges: [{ iova: '0x200000000', mfns: [0x999], read: true, write: false }],
    });
    await call(nc, STACK, IommuUnmap, { bdf: A, ranges: [{ iova: '0x100001000', pages: 1 }] });
    await callError(nc, STACK, IommuTranslate, { bdf: A, iova: '0x100001000', write: false });
    await callError(nc, STACK, IommuTranslate, { bdf: B, iova: '0x200000000', write: true });
    const before = await view();
    assert.deepEqual(
      before.pages.map((p) => p.machine),
      ['0x70123000', null, '0x40001000', null, '0x999000', null],
    );
    assert.equal(before.faults.faults.length, 2);

    await restart();
    assert.deepEqual(await view(), before);
    // The sequence goes on where it was: a poller never sees a number twice.
    await callError(nc, STACK, IommuTranslate, { bdf: A, iova: '0x100003000', write: false });
    const more = await call(nc, STACK, IommuFaults, { since: before.faults.next });
    assert.deepEqual(
      more.faults.map((f) => [f.seq, f.iova]),
      [[before.faults.next, '0x100003000']],
    );
    // Mapped pages stay mapped: a second map of one is refused as before the crash.
    const inUse = await callError(nc, STACK, IommuMap, {
      bdf: A,
      ranges: [{ iova: '0x100000000', mfns: [1], read: true, write: true }],
    });
    assert.equal(inUse.code, 'IOVA_IN_USE');
  });

  it('ignores a torn tail of its journal and keeps serving', async () => {
    await call(nc, STACK, IommuMap, {
      bdf: A,
      ranges: [{ iova: '0x100003000', mfns: [0x5], read: true, write: true }],
    });
    const before = await view();
    await fleet.kill('iommu');
    const path = journalPath(fleet.dataDir, STACK);
    // A write the kill cut in half, then bytes that are not JSON at all.
    appendFileSync(path, '{"t":"map","bdf":"0000:00:04.0","page":9');
    await fleet.spawn('iommu');
    assert.deepEqual(await view(), before);
    assert.ok(readFileSync(path, 'utf8').endsWith('\n'), 'the torn line was cut off');
    await call(nc, STACK, IommuUnmap, { bdf: A, ranges: [{ iova: '0x100003000', pages: 1 }] });
    await restart();
    const after = await call(nc, STACK, IommuLookup, { bdf: A, iova: '0x100003000' });
    assert.equal(after.mapped, false, 'the unmap after the torn tail was journaled');
    assert.equal(
      (await call(nc, STACK, IommuLookup, { bdf: A, iova: '0x100000000' })).mapped,
      true,
    );
  });

  it('starts empty again after a configure, across a restart too', async () => {
    await call(nc, STACK, IommuConfigure, { mode: 'passthrough' });
    await restart();
    const v = await call(nc, STACK, IommuLookup, { bdf: B, iova: '0x200000000' });
    assert.deepEqual(v, {
      mode: 'passthrough',
      mapped: true,
      machine: '0x200000000',
      read: true,
      write: true,
    });
    await call(nc, STACK, IommuConfigure, { mode: 'translate' });
    await restart();
    assert.equal(
      (await call(nc, STACK, IommuLookup, { bdf: B, iova: '0x200000000' })).mapped,
      false,
    );
  });
});
