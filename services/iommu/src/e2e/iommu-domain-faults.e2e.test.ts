// The IOMMU's domain faults against a real L0 DMA engine (its built server,
// beside ours in the monorepo): the stale translation and the faulting DMA
// are what L0's device actually does, not what we tell it.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  DeviceDma,
  FaultControl,
  IommuConfigure,
  IommuFaults,
  IommuLookup,
  IommuMap,
  IommuUnmap,
  L0Configure,
  MemAccess,
  type RequestOf,
} from '@nestlab/protocol';
import { FeatureSet, VIRTIO_F } from '@nestlab/virtio';
import { TestFleet, call, callData, waitFor } from '@nestlab/testing';

const STACK = 'iommu-faults';
const BDF = '0000:00:04.0';
const IOVA = '0x100000000';

describe('iommu domain faults through a real L0 DMA engine', () => {
  // L0 keeps its disk image in the data directory.
  const fleet = new TestFleet({
    stack: STACK,
    services: ['iommu', 'l0-hypervisor'],
    dataDir: true,
  });
  let nc: NatsConnection;

  const poke = (machine: number, bytes: number[]) =>
    callData(
      nc,
      STACK,
      MemAccess,
      {
        requester: { kind: 'xen' },
        ops: [{ op: 'write', addr: `0x${machine.toString(16)}`, len: bytes.length }],
      },
      Uint8Array.from(bytes),
    );
  const peek = async (machine: number, len: number) => [
    ...(
      await callData(nc, STACK, MemAccess, {
        requester: { kind: 'xen' },
        ops: [{ op: 'read', addr: `0x${machine.toString(16)}`, len }],
      })
    ).data,
  ];
  /** The device reads (or writes) the IOVA, as a DMA of a request buffer would. */
  const dma = (len: number, data?: number[]) =>
    callData(
      nc,
      STACK,
      DeviceDma,
      { bdf: BDF, bus: IOVA, len, write: data !== undefined },
      data ? Uint8Array.from(data) : undefined,
    );
  const map = (mfn: number) =>
    call(nc, STACK, IommuMap, {
      bdf: BDF,
      ranges: [{ iova: IOVA, mfns: [mfn], read: true, write: true }],
    });
  const unmap = () => call(nc, STACK, IommuUnmap, { bdf: BDF, ranges: [{ iova: IOVA, pages: 1 }] });
  const inject = (req: RequestOf<typeof FaultControl.iommu.inject>) =>
    call(nc, STACK, FaultControl.iommu.inject, req);
  const fired = async (kind: string) =>
    (await call(nc, STACK, FaultControl.iommu.list, {})).domain.filter((e) => e.kind === kind);

  before(async () => {
    await fleet.start();
    ({ nc } = fleet);
    await call(nc, STACK, L0Configure, {
      ramBytes: 64 << 20,
      devices: [
        {
          bdf: BDF,
          transport: 'pci',
          offer: FeatureSet.of(VIRTIO_F.VERSION_1, VIRTIO_F.ACCESS_PLATFORM).toHex(),
          requireAccessPlatform: false,
          // A hardware device: every DMA goes through the IOMMU.
          iommu: 'physical',
          queueSizeMax: 8,
          diskBytes: 1 << 20,
          freshDisk: true,
        },
      ],
    });
    await call(nc, STACK, IommuConfigure, { mode: 'translate' });
  });
  after(() => fleet.stop());

  it('stale-iotlb: after a lost invalidation the device still reaches the old frame, even once the IOVA is reused', async () => {
    await poke(0x5000, [1, 2, 3, 4]);
    await map(0x5);
    // The first DMA fills L0's IOTLB with iova -> 0x5000.
    const first = await dma(4);
    assert.equal(first.head.record.verdict, 'translated');
    assert.deepEqual([...first.data], [1, 2, 3, 4]);

    assert.deepEqual(await inject({ kind: 'stale-iotlb' }), { armed: 1 });
    assert.deepEqual(await unmap(), { unmapped: 1 }, 'the unmap replies as usual');
    const lookup = await call(nc, STACK, IommuLookup, { bdf: BDF, iova: IOVA });
    assert.equal(lookup.mapped, false, 'the page tables no longer map it');
    const stale = await dma(4);
    assert.equal(stale.head.record.verdict, 'translated', 'L0 translated through its stale entry');
    assert.equal(stale.head.record.machine, '0x5000');
    assert.deepEqual([...stale.data], [1, 2, 3, 4]);

    // The driver reuses the IOVA for a new buffer at 0x6000; the device's
    // write lands in the old frame, and the new buffer never sees it.
    await poke(0x6000, [0, 0, 0, 0]);
    await map(0x6);
    const wrote = await dma(4, [9, 9, 9, 9]);
    assert.equal(wrote.head.record.machine, '0x5000');
    assert.deepEqual(await peek(0x5000, 4), [9, 9, 9, 9]);
    assert.deepEqual(await peek(0x6000, 4), [0, 0, 0, 0]);

    const events = await fired('stale-iotlb');
    assert.equal(events.length, 1);
    assert.match(events[0]!.detail, /0000:00:04\.0 iova 0x100000000 \+1 pages \(mfn 0x5\).*lost/);

    // Spent: the next unmap invalidates, and the device faults.
    await unmap();
    const gone = await dma(4);
    assert.equal(gone.head.record.verdict, 'faulted');
    assert.equal(gone.head.record.fault, 'IOMMU_FAULT_NOT_PRESENT');
  });

  it('stale-iotlb with delayMs: the unmap replies first, the invalidation follows late', async () => {
    await map(0x7);
    await dma(4);
    assert.deepEqual(await inject({ kind: 'stale-iotlb', delayMs: 3000 }), { armed: 1 });
    await unmap();
    // Within the generous delay the device still translates through the old entry.
    const stale = await dma(4);
    assert.equal(stale.head.record.machine, '0x7000');
    await waitFor('the late invalidation', async () =>
      (await dma(4)).head.record.verdict === 'faulted' ? true : undefined,
    );
    const events = await fired('stale-iotlb');
    assert.match(events[events.length - 1]!.detail, /late by 3000 ms/);
  });

  it('unmap-in-flight: unmaps the newest live mapping now; the device DMA faults and is logged', async () => {
    await map(0x8);
    await call(nc, STACK, IommuMap, {
      bdf: BDF,
      ranges: [{ iova: '0x100004000', mfns: [0x9, 0xa], read: true, write: true }],
    });
    assert.equal((await dma(4)).head.record.verdict, 'translated', 'IOTLB primed for the old one');
    const { next } = await call(nc, STACK, IommuFaults, { since: 0 });
    assert.deepEqual(await inject({ kind: 'unmap-in-flight' }), { armed: 0 });
    const newest = await call(nc, STACK, IommuLookup, { bdf: BDF, iova: '0x100005000' });
    assert.equal(newest.mapped, false, 'the newest mapping (both pages) is gone');
    assert.equal((await call(nc, STACK, IommuLookup, { bdf: BDF, iova: IOVA })).mapped, true);
    const r = await callData(
      nc,
      STACK,
      DeviceDma,
      {
        bdf: BDF,
        bus: '0x100004000',
        len: 4,
        write: true,
      },
      Uint8Array.of(1, 1, 1, 1),
    );
    assert.equal(r.head.record.verdict, 'faulted');
    assert.equal(r.head.record.fault, 'IOMMU_FAULT_NOT_PRESENT');
    const log = await call(nc, STACK, IommuFaults, { since: next });
    assert.deepEqual(
      log.faults.map((f) => [f.bdf, f.iova, f.write, f.reason]),
      [[BDF, '0x100004000', true, 'IOMMU_FAULT_NOT_PRESENT']],
    );
    const events = await fired('unmap-in-flight');
    assert.match(events[0]!.detail, /0000:00:04\.0 iova 0x100004000 \+2 pages \(mfn 0x9\)/);
  });

  it('unmap-in-flight with nothing mapped strikes the next map, right after its reply', async () => {
    await unmap();
    assert.deepEqual(await inject({ kind: 'unmap-in-flight' }), { armed: 1 });
    assert.deepEqual(await map(0xb), { mapped: 1 }, 'the driver is told it is mapped');
    await waitFor('the strike', async () =>
      (await call(nc, STACK, IommuLookup, { bdf: BDF, iova: IOVA })).mapped ? undefined : true,
    );
    assert.equal((await dma(4)).head.record.verdict, 'faulted');
    assert.equal((await fired('unmap-in-flight')).length, 2);
    // Spent: the next map stays.
    await map(0xc);
    assert.equal((await dma(4)).head.record.verdict, 'translated');
  });
});
