import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Subscription } from '@nats-io/nats-core';
import {
  DeviceDma,
  DmaLog,
  IommuTranslate,
  IotlbInvalidate,
  decodeRequest,
  encodeErrorReply,
  encodeReply,
  subjectOf,
} from '@nestlab/protocol';
import type { IommuAttachment } from '@nestlab/protocol';
import { FeatureSet, VIRTIO_BLK_S, VIRTIO_BLK_T, VIRTIO_F } from '@nestlab/virtio';
import { RingImage } from '@nestlab/virtio/testing';
import { DEFAULT_BDF } from '../config.js';
import { blkBuffers } from '../testing/blk-helpers.js';
import { TestDriver } from '../testing/driver.js';
import { metricValue, startL0, type L0Harness } from '../testing/harness.js';
import { IOVA_SHIFT, IovaMemory } from '../testing/iova-memory.js';
import { configureOn } from '../testing/transports.js';
import { waitFor } from '@nestlab/testing';

/** The fake IOMMU maps IOVA = machine + SHIFT; IOVAs below SHIFT are not present. */
const SHIFT = IOVA_SHIFT;
const hex = (v: bigint) => `0x${v.toString(16)}`;

describe('DMA engine: IOMMU attachment, faults, IOTLB, rogue accesses', () => {
  let h: L0Harness;
  let sub: Subscription | undefined;
  let translations = 0;

  const configure = (iommu: IommuAttachment) => configureOn(h, 'pci', { iommu, freshDisk: true });
  /** Answers IommuTranslate on raw NATS, as the iommu service would. */
  /** 'run': also answers the 3 pages after the asked one (an IOMMU prefetch). */
  const serveIommu = (mode: 'fault' | 'shift' | 'run') => {
    sub?.unsubscribe();
    sub = h.clientNc.subscribe(subjectOf(IommuTranslate, h.stack), {
      callback: (_e, msg) => {
        translations++;
        const req = decodeRequest(IommuTranslate, msg.data).head;
        const iova = BigInt(req.iova);
        if (mode === 'fault' || iova < SHIFT) {
          msg.respond(
            encodeErrorReply({
              code: 'IOMMU_FAULT_NOT_PRESENT',
              message: `${req.iova} not mapped`,
              kind: 'guest',
            }),
          );
          return;
        }
        const page = (iova - SHIFT) & ~0xfffn;
        const following = [1n, 2n, 3n].map((i) => ({
          machinePage: hex(page + i * 0x1000n),
          read: true,
          write: true,
        }));
        msg.respond(
          encodeReply(IommuTranslate, {
            machine: hex(iova - SHIFT),
            read: true,
            write: true,
            by: 'iommu',
            ...(mode === 'run' ? { following } : {}),
          }),
        );
      },
    });
    return h.clientNc.flush();
  };
  const rogue = (bus: bigint, len: number, data?: Uint8Array) =>
    h.request(
      DeviceDma,
      { bdf: DEFAULT_BDF, bus: hex(bus), len, write: data !== undefined },
      data ? { data } : {},
    );

  before(async () => {
    h = await startL0({ iommuTimeoutMs: 500 });
  });
  after(async () => {
    sub?.unsubscribe();
    await h?.stop();
  });

  it('physical device, no IOMMU answering: faulted (NO_RESPONDERS), nothing read', async () => {
    await configure('physical');
    const r = await rogue(0x5000n, 16);
    assert.equal(r.head.record.verdict, 'faulted');
    assert.equal(r.head.record.fault, 'NO_RESPONDERS');
    assert.equal(r.head.record.machine, null);
    assert.equal(r.data.byteLength, 0);
  });

  it('physical device, IOMMU says not present: faulted, memory unchanged', async () => {
    await configure('physical');
    await serveIommu('fault');
    const d = new TestDriver(h);
    await d.access([{ op: 'write', addr: 0x5000n, bytes: Uint8Array.of(1, 2, 3, 4) }]);
    const r = await rogue(0x5000n, 4, Uint8Array.of(9, 9, 9, 9));
    assert.equal(r.head.record.verdict, 'faulted');
    assert.equal(r.head.record.fault, 'IOMMU_FAULT_NOT_PRESENT');
    assert.equal(r.head.record.what, 'rogue');
    assert.deepEqual(await d.read(0x5000n, 4), Uint8Array.of(1, 2, 3, 4));
    const log = await h.request(DmaLog, { since: r.head.record.seq, limit: 1 });
    assert.deepEqual(log.head.records, [r.head.record]);
  });

  it('translates through the IOMMU, caches in the IOTLB, and drops the entry on IotlbInvalidate', async () => {
    await configure('physical');
    await serveIommu('shift');
    const d = new TestDriver(h);
    await d.access([{ op: 'write', addr: 0x7010n, bytes: Uint8Array.of(5, 6) }]);
    translations = 0;
    const hits = metricValue(h.metrics, 'nestlab_l0_iotlb_hits_total');
    const r = await rogue(SHIFT + 0x7010n, 2);
    assert.equal(r.head.record.verdict, 'translated');
    assert.equal(r.head.record.machine, '0x7010');
    assert.equal(r.head.record.hostPhys, '0x7010');
    assert.deepEqual(Uint8Array.from(r.data), Uint8Array.of(5, 6));
    await rogue(SHIFT + 0x7ff0n, 1);
    assert.equal(translations, 1, 'second access to the page is an IOTLB hit');
    assert.equal(metricValue(h.metrics, 'nestlab_l0_iotlb_hits_total'), hits + 1);
    h.client.publish(IotlbInvalidate, {
      bdf: DEFAULT_BDF,
      ranges: [{ iova: hex(SHIFT + 0x7000n), pages: 1 }],
    });
    await h.clientNc.flush();
    await rogue(SHIFT + 0x7010n, 1);
    assert.equal(translations, 2, 'invalidated: asked again');
  });

  it('fills the IOTLB with the run a translation carries; a multi-range invalidation drops all of it', async () => {
    await configure('physical');
    await serveIommu('run');
    const d = new TestDriver(h);
    await d.access([{ op: 'write', addr: 0x32008n, bytes: Uint8Array.of(7) }]);
    translations = 0;
    const base = SHIFT + 0x30000n;
    const at = (page: bigint) => base + page * 0x1000n;
    assert.equal((await rogue(at(0n), 1)).head.record.verdict, 'translated');
    const r = await rogue(at(2n) + 8n, 1);
    assert.equal(r.head.record.machine, '0x32008', 'the prefetched page translates right');
    assert.deepEqual(Uint8Array.from(r.data), Uint8Array.of(7));
    for (const p of [1n, 3n]) await rogue(at(p), 1);
    assert.equal(translations, 1, 'one miss filled four pages');
    h.client.publish(IotlbInvalidate, {
      bdf: DEFAULT_BDF,
      ranges: [
        { iova: hex(at(0n)), pages: 1 },
        { iova: hex(at(2n)), pages: 2 },
      ],
    });
    await h.clientNc.flush();
    await serveIommu('shift');
    for (const p of [0n, 2n, 3n]) await rogue(at(p), 1);
    assert.equal(translations, 4, 'every invalidated page is asked again');
    await rogue(at(1n), 1);
    assert.equal(translations, 4, 'the page between the ranges is still cached');
  });

  it('a miss under a miss waits for the fill out instead of asking the IOMMU again', async () => {
    await configure('physical');
    sub?.unsubscribe();
    const held: { iova: bigint; respond: () => void }[] = [];
    sub = h.clientNc.subscribe(subjectOf(IommuTranslate, h.stack), {
      callback: (_e, msg) => {
        const iova = BigInt(decodeRequest(IommuTranslate, msg.data).head.iova);
        const page = (iova - SHIFT) & ~0xfffn;
        const reply = encodeReply(IommuTranslate, {
          machine: hex(iova - SHIFT),
          read: true,
          write: true,
          by: 'iommu',
          following: [1n, 2n, 3n].map((i) => ({
            machinePage: hex(page + i * 0x1000n),
            read: true,
            write: true,
          })),
        });
        held.push({ iova, respond: () => msg.respond(reply) });
      },
    });
    await h.clientNc.flush();
    const base = SHIFT + 0x50000n;
    const misses = metricValue(h.metrics, 'nestlab_l0_iotlb_misses_total');
    const first = rogue(base, 1);
    await waitFor('the first translation asked', () => (held.length === 1 ? true : undefined));
    const second = rogue(base + 0x2000n, 1);
    await waitFor('the second access missed too', () =>
      metricValue(h.metrics, 'nestlab_l0_iotlb_misses_total') === misses + 2 ? true : undefined,
    );
    held[0]!.respond();
    const [a, b] = await Promise.all([first, second]);
    assert.deepEqual([a.head.record.verdict, b.head.record.verdict], ['translated', 'translated']);
    assert.equal(b.head.record.machine, '0x52000');
    assert.equal(held.length, 1, 'the second access was served by the first one’s fill');
  });

  it('virtio device without ACCESS_PLATFORM bypasses the IOMMU (the isolation hole)', async () => {
    await configure('virtio');
    await serveIommu('fault');
    const d = new TestDriver(h);
    await d.negotiate(FeatureSet.of(VIRTIO_F.VERSION_1));
    await d.access([{ op: 'write', addr: 0x9000n, bytes: Uint8Array.of(42) }]);
    const r = await rogue(0x9000n, 1);
    assert.equal(r.head.record.verdict, 'bypass');
    assert.deepEqual(Uint8Array.from(r.data), Uint8Array.of(42));
    await d.negotiate(FeatureSet.of(VIRTIO_F.VERSION_1, VIRTIO_F.ACCESS_PLATFORM));
    assert.equal(
      (await rogue(0x9000n, 1)).head.record.verdict,
      'faulted',
      'with bit 33: translated, so refused',
    );
  });

  it('with ACCESS_PLATFORM every ring and buffer access of a request is translated', async () => {
    await configure('virtio');
    await serveIommu('shift');
    const d = new TestDriver(h);
    await d.negotiate(FeatureSet.of(VIRTIO_F.VERSION_1, VIRTIO_F.ACCESS_PLATFORM));
    const iovaMem = new IovaMemory(d.mem);
    const ring = new RingImage(iovaMem, { size: 8, base: SHIFT + 0x10000n });
    await d.start(ring);
    const since = (await h.request(DmaLog, { since: 0, limit: 1 })).head.next;
    const spec = { type: VIRTIO_BLK_T.FLUSH, header: SHIFT + 0x20000n, status: SHIFT + 0x20100n };
    ring.addChain(
      blkBuffers(d.mem, { ...spec, header: 0x20000n, status: 0x20100n }).map((b) => ({
        ...b,
        addr: b.addr + SHIFT,
      })),
    );
    await d.kick();
    assert.equal((await d.read(0x20100n, 1))[0], VIRTIO_BLK_S.OK);
    const log = (await h.request(DmaLog, { since, limit: 1000 })).head.records;
    const mine = log.filter((r) => r.bdf === DEFAULT_BDF && r.what !== 'rogue');
    assert.ok(mine.length >= 8, `${mine.length} accesses`);
    for (const r of mine) {
      assert.equal(r.verdict, 'translated');
      assert.equal(BigInt(r.bus) - SHIFT, BigInt(r.machine ?? '0x0'));
    }
  });

  it('an IOMMU fault on the ring stops the device with NEEDS_RESET', async () => {
    await configure('physical');
    await serveIommu('fault');
    const d = new TestDriver(h);
    await d.negotiate(FeatureSet.of(VIRTIO_F.VERSION_1));
    const ring = new RingImage(d.mem, { size: 8, base: 0x10000n });
    await d.start(ring);
    ring.addChain(
      blkBuffers(d.mem, { type: VIRTIO_BLK_T.FLUSH, header: 0x20000n, status: 0x20100n }),
    );
    await d.kick();
    const st = await d.state();
    assert.match(String(st.brokenReason), /^MEMORY_UNREACHABLE: .*IOMMU_FAULT_NOT_PRESENT/);
  });
});
