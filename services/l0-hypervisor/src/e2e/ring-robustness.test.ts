import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FeatureSet, VIRTIO_BLK_T, VIRTIO_F, VIRTIO_STATUS, VRING_DESC_F } from '@nestlab/virtio';
import { RingImage } from '@nestlab/virtio/testing';
import type { VirtioErrorCode } from '@nestlab/virtio';
import { DEFAULT_BDF } from '../config.js';
import { blkBuffers } from '../testing/blk-helpers.js';
import { TestDriver, type DeviceAt } from '../testing/driver.js';
import { TRANSPORTS_AND_LEGACY, configureOn } from '../testing/transports.js';
import { metricValue, startL0, type L0Harness } from '../testing/harness.js';

const { NEXT, WRITE, INDIRECT } = VRING_DESC_F;
const FEATURES = FeatureSet.of(VIRTIO_F.VERSION_1, VIRTIO_F.INDIRECT_DESC);

/** Each hostile ring, and the reason the device must give for going NEEDS_RESET. */
const CASES: { name: string; code: VirtioErrorCode; build(ring: RingImage): void }[] = [
  {
    name: 'a chain that loops',
    code: 'RING_LOOP',
    build(ring) {
      ring.writeDesc(0, { addr: 0x20000n, len: 16, flags: NEXT, next: 1 });
      ring.writeDesc(1, { addr: 0x21000n, len: 16, flags: NEXT, next: 0 });
      ring.publish(0);
    },
  },
  {
    name: 'a head index out of range',
    code: 'DESC_INDEX_OUT_OF_RANGE',
    build: (ring) => ring.publish(200),
  },
  {
    name: 'a next index out of range',
    code: 'DESC_INDEX_OUT_OF_RANGE',
    build(ring) {
      ring.writeDesc(0, { addr: 0x20000n, len: 16, flags: NEXT, next: 9 });
      ring.publish(0);
    },
  },
  {
    name: 'a nested indirect table',
    code: 'NESTED_INDIRECT',
    build(ring) {
      ring.writeTable(0x40000n, [{ addr: 0x41000n, len: 16, flags: INDIRECT }]);
      ring.writeDesc(0, { addr: 0x40000n, len: 16, flags: INDIRECT });
      ring.publish(0);
    },
  },
  {
    name: 'an indirect table whose length is not a multiple of 16',
    code: 'INDIRECT_LEN_INVALID',
    build(ring) {
      ring.writeDesc(0, { addr: 0x40000n, len: 24, flags: INDIRECT });
      ring.publish(0);
    },
  },
  {
    name: 'a zero-length indirect table',
    code: 'INDIRECT_LEN_INVALID',
    build(ring) {
      ring.writeDesc(0, { addr: 0x40000n, len: 0, flags: INDIRECT });
      ring.publish(0);
    },
  },
  {
    name: 'a readable descriptor after a writable one',
    code: 'READABLE_AFTER_WRITABLE',
    build(ring) {
      ring.writeDesc(0, { addr: 0x20000n, len: 16, flags: WRITE | NEXT, next: 1 });
      ring.writeDesc(1, { addr: 0x21000n, len: 16, flags: 0 });
      ring.publish(0);
    },
  },
  {
    name: 'avail.idx more than the queue size ahead',
    code: 'AVAIL_IDX_TOO_FAR',
    build: (ring) => ring.setAvailIdx(ring.size + 3),
  },
  {
    name: 'a blk request without a status byte',
    code: 'BAD_BLK_REQUEST',
    build(ring) {
      ring.addChain([
        { addr: 0x20000n, len: 16 },
        { addr: 0x21000n, len: 8 },
      ]);
    },
  },
  {
    name: 'a descriptor pointing into the PCI hole',
    code: 'MEMORY_UNREACHABLE',
    build(ring) {
      ring.addChain([
        { addr: 0xd000_0000n, len: 16 },
        { addr: 0x21000n, len: 1, writable: true },
      ]);
    },
  },
];

// The same conformance checks against virtio-pci and virtio-mmio (version 2
// and the legacy version 1, whose ring is placed by QueuePFN).
for (const transport of TRANSPORTS_AND_LEGACY)
  describe(`hostile rings over ${transport}: NEEDS_RESET with a typed reason, never a crash or a spin`, () => {
    let h: L0Harness;
    let at: DeviceAt;
    before(async () => {
      h = await startL0();
      at = await configureOn(h, transport, { freshDisk: true });
    });
    after(() => h?.stop());

    for (const c of CASES) {
      it(`${c.name} → ${c.code}`, async () => {
        const d = new TestDriver(h, DEFAULT_BDF, { kind: 'xen' }, at);
        await d.negotiate(FEATURES);
        const ring = new RingImage(d.mem, { size: 8, base: 0x10000n });
        await d.start(ring);
        h.msis.length = 0;
        const errorsBefore = metricValue(h.metrics, 'nestlab_l0_ring_errors_total', {
          code: c.code,
        });

        c.build(ring);
        await d.kick();
        await h.clientNc.flush();

        const st = await d.state();
        assert.equal(st.status & VIRTIO_STATUS.NEEDS_RESET, VIRTIO_STATUS.NEEDS_RESET);
        assert.ok(st.brokenReason?.startsWith(`${c.code}: `), String(st.brokenReason));
        assert.equal((await d.status()) & VIRTIO_STATUS.NEEDS_RESET, VIRTIO_STATUS.NEEDS_RESET);
        assert.deepEqual(h.msis, [{ bdf: DEFAULT_BDF, vector: d.irqs.config }], 'config interrupt');
        assert.equal((await d.readIsr()) & 2, 2, 'ISR config bit');
        assert.equal(await d.usedIdx(ring), 0, 'nothing completed');
        assert.equal(
          metricValue(h.metrics, 'nestlab_l0_ring_errors_total', { code: c.code }),
          errorsBefore + 1,
        );

        // The queue stays stopped: another doorbell does nothing.
        await d.kick();
        assert.equal((await d.state()).queues[0]?.lastAvail, st.queues[0]?.lastAvail);

        // A reset brings the device back; a good request then completes.
        await d.negotiate(FEATURES);
        const fresh = new RingImage(d.mem, { size: 8, base: 0x10000n });
        await d.start(fresh);
        fresh.addChain(
          blkBuffers(d.mem, { type: VIRTIO_BLK_T.FLUSH, header: 0x30000n, status: 0x30100n }),
        );
        await d.kick();
        assert.equal(await d.usedIdx(fresh), 1);
        assert.equal((await d.state()).brokenReason, null);
      });
    }

    // A page number cannot name a misaligned ring: version 1 has its own layout checks (mmio-legacy.test.ts).
    if (transport !== 'mmio-legacy')
      it('refuses to enable a misaligned queue: NEEDS_RESET, RING_MISALIGNED', async () => {
        const d = new TestDriver(h, DEFAULT_BDF, { kind: 'xen' }, at);
        await d.negotiate(FEATURES);
        const ring = new RingImage(d.mem, {
          size: 8,
          desc: 0x10008n,
          avail: 0x11000n,
          used: 0x12000n,
        });
        await d.start(ring);
        const st = await d.state();
        assert.ok(st.brokenReason?.startsWith('RING_MISALIGNED'), String(st.brokenReason));
        assert.equal(st.queues[0]?.enabled, false);
      });

    it('bounds work per doorbell: a full ring of requests is served once, no more', async () => {
      const d = new TestDriver(h, DEFAULT_BDF, { kind: 'xen' }, at);
      await d.negotiate(FEATURES);
      const ring = new RingImage(d.mem, { size: 8, base: 0x10000n });
      await d.start(ring);
      for (let i = 0; i < 8; i++) {
        ring.addChain(
          blkBuffers(d.mem, {
            type: VIRTIO_BLK_T.FLUSH,
            header: 0x30000n + BigInt(i * 0x100),
            status: 0x38000n + BigInt(i),
          }),
        );
      }
      await d.kick();
      assert.equal(await d.usedIdx(ring), 8);
      assert.equal((await d.state()).brokenReason, null);
    });
  });
