// The p2m-change fault against a real L0 (memory, CPU frame checks, DMA
// engine) and a real IOMMU, each its own built process in the monorepo.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  DeviceDma,
  FaultControl,
  FrameOwners,
  IommuConfigure,
  IommuMapHypercall,
  IommuUnmapHypercall,
  L0Configure,
  MemAccess,
  P2mGet,
  P2mMoves,
  XenConfigure,
  type DmaRecord,
  type FrameMove,
  type LedgerEntry,
} from '@nestlab/protocol';
import { FeatureSet, VIRTIO_F } from '@nestlab/virtio';
import { TestFleet, call, callData, callError, waitFor } from '@nestlab/testing';

type JudgeWithMoves = (
  records: readonly DmaRecord[],
  ledger: readonly LedgerEntry[],
  owners: (mfns: number[]) => Promise<string[]>,
  moves: readonly FrameMove[],
) => Promise<{
  counts: { misdirected: number };
  firstMisdirected: { intendedMfn: number | null; owner: string | null } | null;
}>;

const STACK = 'xen-p2m';
const BDF = '0000:00:04.0';
const MIB = 2 ** 20;
const hex = (n: number) => `0x${n.toString(16)}`;

describe('xen p2m-change: a dom0 frame moves under a DMA mapping', () => {
  const fleet = new TestFleet({
    stack: STACK,
    services: ['iommu', 'l0-hypervisor', 'xen'],
    dataDir: true,
  });
  let nc: NatsConnection;

  const p2mOf = async (pfn: number) => {
    const { ranges } = await call(nc, STACK, P2mGet, { domain: 0 });
    const r = ranges.find((x) => x.pfn <= pfn && pfn < x.pfn + x.count);
    return r && r.mfn + (pfn - r.pfn);
  };
  /** dom0's CPU at a machine frame (L0 checks the frame is dom0's). */
  const cpu = (op: 'read' | 'write', mfn: number, data?: number[]) =>
    callData(
      nc,
      STACK,
      MemAccess,
      {
        requester: { kind: 'cpu', domain: 0 },
        ops: [{ op, addr: hex(mfn * 4096), len: data?.length ?? 4 }],
      },
      data ? Uint8Array.from(data) : undefined,
    );
  const mapPfn = (iova: string, pfn: number) =>
    call(nc, STACK, IommuMapHypercall, {
      domain: 0,
      bdf: BDF,
      ranges: [{ iova, pfns: [pfn], write: true }],
    });
  const events = async () =>
    (await call(nc, STACK, FaultControl.xen.list, {})).domain.filter(
      (e) => e.kind === 'p2m-change',
    );

  before(async () => {
    await fleet.start();
    ({ nc } = fleet);
  });
  after(() => fleet.stop());

  it('is refused while there is no P2M', async () => {
    const err = await callError(nc, STACK, FaultControl.xen.inject, { kind: 'p2m-change' });
    assert.equal(err.code, 'FAULT_NOT_APPLICABLE');
  });

  it('copies the page, remaps the pfn, hands the old frame back; the device still DMAs there', async () => {
    await call(nc, STACK, L0Configure, {
      ramBytes: 64 * MIB,
      devices: [
        {
          bdf: BDF,
          transport: 'pci',
          offer: FeatureSet.of(VIRTIO_F.VERSION_1, VIRTIO_F.ACCESS_PLATFORM).toHex(),
          requireAccessPlatform: false,
          iommu: 'physical',
          queueSizeMax: 8,
          diskBytes: MIB,
          freshDisk: true,
        },
      ],
    });
    await call(nc, STACK, IommuConfigure, { mode: 'translate' });
    await call(nc, STACK, XenConfigure, {
      present: true,
      machineBytes: 64 * MIB,
      dom0Bytes: 32 * MIB,
      seed: 3,
      passthrough: [BDF],
    });
    const { ranges } = await call(nc, STACK, P2mGet, { domain: 0 });
    const pfn = ranges[ranges.length - 1]!.pfn;
    const from = (await p2mOf(pfn))!;
    await cpu('write', from, [7, 7, 7, 7]);
    assert.deepEqual(await mapPfn('0x100000000', pfn), { ranges: [{ mfns: [from] }] });

    assert.deepEqual(await call(nc, STACK, FaultControl.xen.inject, { kind: 'p2m-change' }), {
      armed: 0,
    });
    const to = (await p2mOf(pfn))!;
    assert.notEqual(to, from);
    const owners = await call(nc, STACK, FrameOwners, { mfns: [from, to] });
    assert.deepEqual(owners.owners, ['free', 'dom0']);
    assert.deepEqual([...(await cpu('read', to)).data], [7, 7, 7, 7], 'contents copied');
    const refused = await callData(nc, STACK, MemAccess, {
      requester: { kind: 'cpu', domain: 0 },
      ops: [{ op: 'read', addr: hex(from * 4096), len: 4 }],
    }).catch((e: unknown) => e as Error);
    assert.ok(refused instanceof Error, 'L0 no longer lets dom0 touch the old frame');
    const [ev] = await events();
    assert.equal(
      ev!.detail,
      `dom0 pfn ${hex(pfn)}: mfn ${hex(from)} -> ${hex(to)} (DMA-mapped for ${BDF} at iova 0x100000000; the IOMMU still points at ${hex(from)})`,
    );

    // The hazard: the device's write lands in the old frame, dom0 never sees it.
    const dma = await callData(
      nc,
      STACK,
      DeviceDma,
      { bdf: BDF, bus: '0x100000000', len: 4, write: true },
      Uint8Array.of(1, 2, 3, 4),
    );
    assert.equal(dma.head.record.machine, hex(from * 4096));
    assert.deepEqual([...(await cpu('read', to)).data], [7, 7, 7, 7]);

    // Xen lists the move, timed before the access: the oracle judges the access misdirected.
    const { moves } = await call(nc, STACK, P2mMoves, {});
    assert.deepEqual(
      moves.map(({ at: _at, ...m }) => m),
      [{ domain: 0, pfn, from, to }],
    );
    const at = dma.head.record.at;
    assert.ok(at !== undefined && moves[0]!.at < at, 'moved before the access');
    // The lab's oracle, from its build (the lab depends on xen, not the reverse).
    const { judge } = (await import(
      fileURLToPath(new URL('../../../lab/dist/oracle/oracle.js', import.meta.url))
    )) as { judge: JudgeWithMoves };
    const mapping = {
      what: 'buffer' as const,
      bus: '0x100000000',
      len: 4096,
      pseudo: hex(pfn * 4096),
      mfns: [from],
      mappedAt: moves[0]!.at - 1,
    };
    const ownerOf = async (mfns: number[]) => (await call(nc, STACK, FrameOwners, { mfns })).owners;
    const verdict = await judge([dma.head.record], [mapping], ownerOf, moves);
    assert.equal(verdict.counts.misdirected, 1);
    assert.equal(verdict.firstMisdirected?.intendedMfn, to);
    assert.equal(verdict.firstMisdirected?.owner, 'free');

    // The move is part of what Xen keeps across a crash.
    await fleet.restart('xen');
    assert.equal(await p2mOf(pfn), to);
    assert.deepEqual((await call(nc, STACK, FrameOwners, { mfns: [from, to] })).owners, [
      'free',
      'dom0',
    ]);
  });

  it('with no DMA-mapped page, strikes the next iommu_map right after its reply', async () => {
    await call(nc, STACK, IommuUnmapHypercall, {
      domain: 0,
      bdf: BDF,
      ranges: [{ iova: '0x100000000', pages: 1 }],
    });
    assert.deepEqual(await call(nc, STACK, FaultControl.xen.inject, { kind: 'p2m-change' }), {
      armed: 1,
    });
    const { ranges } = await call(nc, STACK, P2mGet, { domain: 0 });
    const pfn = ranges[0]!.pfn;
    const from = (await p2mOf(pfn))!;
    assert.deepEqual(
      await mapPfn('0x100001000', pfn),
      { ranges: [{ mfns: [from] }] },
      'mapped as it was',
    );
    // The move runs after the reply; it is counted last, once L0 has the new frame set.
    await waitFor('the move counted', async () => ((await events()).length > 0 ? true : undefined));
    assert.equal((await events()).length, 1, 'counted by this process since its restart');
    const to = (await p2mOf(pfn))!;
    assert.notEqual(to, from, 'the pfn moved');
    assert.deepEqual((await call(nc, STACK, FrameOwners, { mfns: [from, to] })).owners, [
      'free',
      'dom0',
    ]);
  });
});
