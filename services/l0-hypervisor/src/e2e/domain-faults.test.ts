// L0's domain faults (device-reset, lose-msi, lose-doorbell) against the
// real device, driven through the ring as a driver would.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { Msg, Subscription } from '@nats-io/nats-core';
import {
  IommuTranslate,
  L0Configure,
  decodeRequest,
  encodeReply,
  subjectOf,
} from '@nestlab/protocol';
import type { IommuAttachment } from '@nestlab/protocol';
import {
  FeatureSet,
  VIRTIO_BLK_F,
  VIRTIO_BLK_S,
  VIRTIO_BLK_T,
  VIRTIO_F,
  decodeU16,
  usedIdxAddr,
} from '@nestlab/virtio';
import { RingImage } from '@nestlab/virtio/testing';
import { blkBuffers, pattern } from '../testing/blk-helpers.js';
import { TestDriver } from '../testing/driver.js';
import { metricValue, startL0, type L0Harness } from '../testing/harness.js';
import { IOVA_SHIFT, IovaMemory } from '../testing/iova-memory.js';
import { configureOn } from '../testing/transports.js';

const BASE = FeatureSet.of(VIRTIO_F.VERSION_1, VIRTIO_BLK_F.FLUSH);
/** The test IOMMU maps IOVA = machine + SHIFT. */
const SHIFT = IOVA_SHIFT;

describe('L0 domain faults', () => {
  let h: L0Harness;
  let d: TestDriver;
  let ring: RingImage;

  const configure = (iommu: IommuAttachment = 'none') =>
    configureOn(h, 'pci', { iommu, freshDisk: true });
  const init = async () => {
    d = new TestDriver(h);
    await d.negotiate(BASE);
    ring = new RingImage(d.mem, { size: 8, base: 0x10000n });
    await d.start(ring);
    h.msis.length = 0;
  };
  /** One 4 KiB write of `seed`'s pattern to `sector`, made available (not kicked). */
  const addWrite = (sector: bigint, seed: number, at: bigint) => {
    d.mem.write(at + 0x1000n, pattern(4096, seed));
    return ring.addChain(
      blkBuffers(d.mem, {
        type: VIRTIO_BLK_T.OUT,
        sector,
        header: at,
        data: [{ addr: at + 0x1000n, len: 4096 }],
        status: at + 0x100n,
      }),
    );
  };
  const events = (kind: string) => h.faults.events().filter((e) => e.kind === kind);

  before(async () => {
    h = await startL0();
  });
  beforeEach(() => configure());
  after(() => h?.stop());

  it('lose-msi: the interrupt after the first is not sent; the completion still is', async () => {
    await init();
    assert.equal(await h.faults.arm({ kind: 'lose-msi', after: 1, count: 1 }), 1);
    const before = events('lose-msi').length;
    for (let i = 0; i < 3; i++) {
      addWrite(BigInt(8 * i), i + 1, 0x20000n + BigInt(i) * 0x2000n);
      await d.kick();
      await h.clientNc.flush();
    }
    assert.equal(await d.usedIdx(ring), 3, 'all three requests completed');
    assert.equal(h.msis.length, 2, 'one of three MSIs was lost');
    const fired = events('lose-msi').slice(before);
    assert.equal(fired.length, 1);
    assert.match(fired[0]?.detail ?? '', /MSI vector 1 not sent/);
    // Spent: the next interrupt goes out again.
    addWrite(64n, 9, 0x28000n);
    await d.kick();
    await h.clientNc.flush();
    assert.equal(h.msis.length, 3);
  });

  it('lose-doorbell: the next notify is ignored, the one after serves everything made available', async () => {
    await init();
    assert.equal(await h.faults.arm({ kind: 'lose-doorbell', count: 1 }), 1);
    const dropped = metricValue(h.metrics, 'nestlab_l0_notifies_dropped_total', {
      reason: 'fault',
    });
    addWrite(0n, 1, 0x20000n);
    await d.kick();
    assert.equal(await d.usedIdx(ring), 0, 'the device never saw the doorbell');
    assert.equal((await d.state()).queues[0]?.lastAvail, 0);
    assert.equal(
      metricValue(h.metrics, 'nestlab_l0_notifies_dropped_total', { reason: 'fault' }),
      dropped + 1,
    );
    assert.match(events('lose-doorbell').at(-1)?.detail ?? '', /queue 0 notify ignored/);
    addWrite(8n, 2, 0x22000n);
    await d.kick();
    assert.equal(await d.usedIdx(ring), 2);
    assert.equal((await d.read(0x20100n, 1))[0], VIRTIO_BLK_S.OK);
    assert.equal((await d.read(0x22100n, 1))[0], VIRTIO_BLK_S.OK);
  });

  it('device-reset mid-queue: status 0, the in-flight chain is abandoned, never completed', async () => {
    await configure('virtio');
    // A test IOMMU that holds translations until told: the device stops mid-request.
    const held: Msg[] = [];
    let holding = true;
    const answer = (msg: Msg) => {
      const iova = BigInt(decodeRequest(IommuTranslate, msg.data).head.iova);
      msg.respond(
        encodeReply(IommuTranslate, {
          machine: `0x${(iova - SHIFT).toString(16)}`,
          read: true,
          write: true,
          by: 'iommu',
        }),
      );
    };
    const sub: Subscription = h.clientNc.subscribe(subjectOf(IommuTranslate, h.stack), {
      callback: (_e, msg) => {
        if (holding) held.push(msg);
        else answer(msg);
      },
    });
    await h.clientNc.flush();
    try {
      d = new TestDriver(h);
      await d.negotiate(
        FeatureSet.of(VIRTIO_F.VERSION_1, VIRTIO_F.ACCESS_PLATFORM, VIRTIO_BLK_F.FLUSH),
      );
      ring = new RingImage(new IovaMemory(d.mem), { size: 8, base: SHIFT + 0x10000n });
      await d.start(ring);
      d.mem.write(0x21000n, pattern(4096, 5));
      ring.addChain(
        blkBuffers(d.mem, {
          type: VIRTIO_BLK_T.OUT,
          sector: 0n,
          header: 0x20000n,
          data: [{ addr: SHIFT + 0x21000n, len: 4096 }],
          status: 0x20100n,
        }).map((b) => (b.addr < SHIFT ? { ...b, addr: b.addr + SHIFT } : b)),
      );
      const kicked = d.kick();
      await waitUntil(() => held.length > 0);
      assert.equal(await h.faults.arm({ kind: 'device-reset' }), 0, 'fires at once');
      holding = false;
      for (const m of held.splice(0)) answer(m);
      await kicked;
      const st = await d.state();
      assert.equal(st.status, 0);
      assert.equal(st.queues[0]?.enabled, false);
      assert.equal(st.requests.done, 0, 'the abandoned request never completed');
      const used = decodeU16(await d.read(usedIdxAddr(ring.queue) - SHIFT, 2));
      assert.equal(used, 0, 'no used element written after the reset');
      assert.match(events('device-reset').at(-1)?.detail ?? '', /0000:00:04.0 reset mid-queue/);
    } finally {
      sub.unsubscribe();
    }
  });

  it('refuses a kind L0 does not own, and device-reset with no device', async () => {
    await assert.rejects(h.faults.arm({ kind: 'stale-iotlb' }), { code: 'FAULT_KIND_UNSUPPORTED' });
    await h.request(L0Configure, { ramBytes: 1 << 30, devices: [] });
    await assert.rejects(h.faults.arm({ kind: 'device-reset' }), { code: 'FAULT_NOT_APPLICABLE' });
  });
});

async function waitUntil(cond: () => boolean, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 10));
  }
}
