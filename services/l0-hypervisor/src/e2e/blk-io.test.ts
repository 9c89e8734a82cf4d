import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import { DmaLog } from '@nestlab/protocol';
import {
  FeatureSet,
  VIRTIO_BLK_F,
  VIRTIO_BLK_S,
  VIRTIO_BLK_T,
  VIRTIO_F,
  VRING_AVAIL_F_NO_INTERRUPT,
} from '@nestlab/virtio';
import { RingImage } from '@nestlab/virtio/testing';
import { diskImagePath } from '../blk/disk-backend.js';
import { DEFAULT_BDF } from '../config.js';
import { blkBuffers, pattern } from '../testing/blk-helpers.js';
import { TestDriver, interruptsOf, type DeviceAt } from '../testing/driver.js';
import { TRANSPORTS_AND_LEGACY, configureOn } from '../testing/transports.js';
import { metricValue, startL0, type L0Harness } from '../testing/harness.js';

const BASE = FeatureSet.of(VIRTIO_F.VERSION_1, VIRTIO_BLK_F.FLUSH);

// The same conformance checks against virtio-pci and virtio-mmio.
for (const transport of TRANSPORTS_AND_LEGACY)
  describe(`virtio-blk requests over ${transport}, through the ring, to a real image file`, () => {
    let h: L0Harness;
    let d: TestDriver;
    let ring: RingImage;
    let at: DeviceAt;
    const irq = () => interruptsOf(at);

    const init = async (features: FeatureSet) => {
      d = new TestDriver(h, DEFAULT_BDF, { kind: 'xen' }, at);
      await d.negotiate(features);
      ring = new RingImage(d.mem, { size: 8, base: 0x10000n });
      await d.start(ring);
      h.msis.length = 0;
    };
    const status = async (addr: bigint) => (await d.read(addr, 1))[0];
    const kickAndSettle = async () => {
      await d.kick();
      await h.clientNc.flush(); // MSIs were published before the reply: they are in by now
    };

    before(async () => {
      h = await startL0();
    });
    beforeEach(async () => {
      at = await configureOn(h, transport, { freshDisk: true });
    });
    after(() => h?.stop());

    it('writes (OUT) then reads (IN) sectors; FLUSH puts the data in the image at sector*512', async () => {
      await init(BASE);
      const data = pattern(1024, 3);
      d.mem.write(0x21800n, data); // crosses a page boundary
      const out = ring.addChain(
        blkBuffers(d.mem, {
          type: VIRTIO_BLK_T.OUT,
          sector: 5n,
          header: 0x20000n,
          data: [{ addr: 0x21800n, len: 1024 }],
          status: 0x20100n,
        }),
      );
      await kickAndSettle();
      assert.equal(await d.usedIdx(ring), 1);
      assert.deepEqual(await d.usedElem(ring, 0), { id: out, len: 1 });
      assert.equal(await status(0x20100n), VIRTIO_BLK_S.OK);
      assert.deepEqual(h.msis, [{ bdf: DEFAULT_BDF, vector: irq().queue }]);

      const imagePath = diskImagePath(h.dataDir, h.stack, DEFAULT_BDF);
      // Write-back cache: completed, not yet in the file until a FLUSH.
      const before = await readFile(imagePath);
      assert.equal(before.byteLength, 64 << 20);
      assert.ok(before.subarray(5 * 512, 5 * 512 + 1024).every((b) => b === 0));

      const inHead = ring.addChain(
        blkBuffers(d.mem, {
          type: VIRTIO_BLK_T.IN,
          sector: 5n,
          header: 0x30000n,
          data: [
            { addr: 0x31000n, len: 512, writable: true },
            { addr: 0x33000n, len: 512, writable: true },
          ],
          status: 0x30100n,
        }),
      );
      await kickAndSettle();
      assert.equal(await d.usedIdx(ring), 2);
      assert.deepEqual(await d.usedElem(ring, 1), { id: inHead, len: 1025 });
      assert.equal(await status(0x30100n), VIRTIO_BLK_S.OK);
      assert.deepEqual(await d.read(0x31000n, 512), data.subarray(0, 512));
      assert.deepEqual(await d.read(0x33000n, 512), data.subarray(512));

      ring.addChain(
        blkBuffers(d.mem, { type: VIRTIO_BLK_T.FLUSH, header: 0x20200n, status: 0x20300n }),
      );
      await kickAndSettle();
      assert.equal(await status(0x20300n), VIRTIO_BLK_S.OK);
      const image = await readFile(imagePath);
      assert.deepEqual(Uint8Array.from(image.subarray(5 * 512, 5 * 512 + 1024)), data);
      assert.ok(image.subarray(0, 5 * 512).every((b) => b === 0));
      const st = await d.state();
      assert.equal(st.requests.done, 3);
      assert.equal(st.queues[0]?.lastAvail, 3);
      assert.equal(st.brokenReason, null);
    });

    it('logs each device access with its verdict (direct, no IOMMU)', async () => {
      await init(BASE);
      const since = (await h.request(DmaLog, { since: 0, limit: 2000 })).head.next;
      ring.addChain(
        blkBuffers(d.mem, { type: VIRTIO_BLK_T.FLUSH, header: 0x20000n, status: 0x20100n }),
      );
      await kickAndSettle();
      const log = (await h.request(DmaLog, { since, limit: 100 })).head;
      assert.deepEqual(
        log.records.map((r) => `${r.what}:${r.write ? 'w' : 'r'}`),
        // avail.idx, avail.ring[0], 2 descriptors, header, status, used elem, used.idx,
        // avail.flags (interrupt?), avail.idx again (anything new?).
        [
          'avail:r',
          'avail:r',
          'desc:r',
          'desc:r',
          'buffer:r',
          'buffer:w',
          'used:w',
          'used:w',
          'avail:r',
          'avail:r',
        ],
      );
      assert.ok(
        log.records.every(
          (r) => r.verdict === 'direct' && r.machine === r.bus && r.hostPhys === r.bus,
        ),
      );
      assert.equal(await status(0x20100n), VIRTIO_BLK_S.OK);
    });

    it('serves an indirect chain (GET_ID) when INDIRECT_DESC is negotiated', async () => {
      await init(BASE.with(VIRTIO_F.INDIRECT_DESC));
      const head = ring.addIndirectChain(
        blkBuffers(d.mem, {
          type: VIRTIO_BLK_T.GET_ID,
          header: 0x20000n,
          data: [{ addr: 0x22000n, len: 20, writable: true }],
          status: 0x20100n,
        }),
        0x40000n,
      );
      await kickAndSettle();
      assert.deepEqual(await d.usedElem(ring, 0), { id: head, len: 21 });
      assert.equal(await status(0x20100n), VIRTIO_BLK_S.OK);
      const id = new TextDecoder().decode(await d.read(0x22000n, 20)).replace(/\0+$/, '');
      assert.equal(id, 'nestlab-00:04.0');
    });

    it('answers UNSUPP for an unknown type and IOERR past the end of the disk, and keeps going', async () => {
      await init(BASE);
      ring.addChain(
        blkBuffers(d.mem, { type: VIRTIO_BLK_T.DISCARD, header: 0x20000n, status: 0x20100n }),
      );
      ring.addChain(
        blkBuffers(d.mem, {
          type: VIRTIO_BLK_T.IN,
          sector: BigInt((64 << 20) / 512),
          header: 0x20200n,
          data: [{ addr: 0x22000n, len: 512, writable: true }],
          status: 0x20300n,
        }),
      );
      ring.addChain(
        blkBuffers(d.mem, { type: VIRTIO_BLK_T.FLUSH, header: 0x20400n, status: 0x20500n }),
      );
      await kickAndSettle();
      assert.equal(await d.usedIdx(ring), 3);
      assert.equal(await status(0x20100n), VIRTIO_BLK_S.UNSUPP);
      assert.equal(await status(0x20300n), VIRTIO_BLK_S.IOERR);
      assert.equal(await status(0x20500n), VIRTIO_BLK_S.OK);
      assert.deepEqual((await d.state()).requests, { done: 1, ioerr: 1, unsupp: 1 });
      assert.equal(
        metricValue(h.metrics, 'nestlab_l0_blk_requests_total', { type: 'flush' }) >= 1,
        true,
      );
    });

    it('EVENT_IDX: no MSI while used_event says so, one when the index passes it; avail_event written', async () => {
      await init(BASE.with(VIRTIO_F.EVENT_IDX));
      ring.setUsedEvent(5);
      ring.addChain(
        blkBuffers(d.mem, { type: VIRTIO_BLK_T.FLUSH, header: 0x20000n, status: 0x20100n }),
      );
      await kickAndSettle();
      assert.equal(await d.usedIdx(ring), 1);
      assert.deepEqual(h.msis, [], 'used_event 5: no interrupt for used 0 -> 1');
      const availEvent = (await d.read(ring.queue.used + 4n + 8n * 8n, 2))[0];
      assert.equal(availEvent, 1, 'avail_event = last_avail_idx');

      ring.setUsedEvent(1);
      ring.addChain(
        blkBuffers(d.mem, { type: VIRTIO_BLK_T.FLUSH, header: 0x20200n, status: 0x20300n }),
      );
      await kickAndSettle();
      assert.equal(await d.usedIdx(ring), 2);
      assert.deepEqual(
        h.msis,
        [{ bdf: DEFAULT_BDF, vector: irq().queue }],
        'used_event 1: interrupt for 1 -> 2',
      );
    });

    it('without EVENT_IDX honours VRING_AVAIL_F_NO_INTERRUPT', async () => {
      await init(BASE);
      ring.setAvailFlags(VRING_AVAIL_F_NO_INTERRUPT);
      ring.addChain(
        blkBuffers(d.mem, { type: VIRTIO_BLK_T.FLUSH, header: 0x20000n, status: 0x20100n }),
      );
      await kickAndSettle();
      assert.equal(await d.usedIdx(ring), 1);
      assert.deepEqual(h.msis, []);
      assert.equal(await d.readIsr(), 0, 'no interrupt at all: ISR untouched');
      ring.setAvailFlags(0);
      ring.addChain(
        blkBuffers(d.mem, { type: VIRTIO_BLK_T.FLUSH, header: 0x20200n, status: 0x20300n }),
      );
      await kickAndSettle();
      assert.deepEqual(h.msis, [{ bdf: DEFAULT_BDF, vector: irq().queue }]);
      assert.equal(await d.readIsr(), 1, 'ISR queue bit set with the interrupt');
      assert.equal(await d.readIsr(), 0, 'and reading cleared it');
    });

    it('does nothing on a doorbell before DRIVER_OK', async () => {
      d = new TestDriver(h, DEFAULT_BDF, { kind: 'xen' }, at);
      await d.negotiate(BASE);
      ring = new RingImage(d.mem, { size: 8, base: 0x10000n });
      ring.addChain(
        blkBuffers(d.mem, { type: VIRTIO_BLK_T.FLUSH, header: 0x20000n, status: 0x20100n }),
      );
      await d.kick();
      assert.equal(await d.usedIdx(ring), 0);
    });
  });
