// virtio-mmio version 1 (spec 4.2.4 "Legacy interface"), driven the way
// Linux's vm_probe / vm_setup_vq drive it: GuestPageSize once, then per queue
// QueueSel, QueuePFN read (0: free), QueueNumMax, QueueNum, QueueAlign and the
// QueuePFN write that places the ring and starts it. No FEATURES_OK step. The
// layout is the legacy one; a ring the page number puts past RAM, or a page
// size the device cannot use, is NEEDS_RESET with its typed reason.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { parseHex } from '@nestlab/addr';
import { L0Configure } from '@nestlab/protocol';
import {
  FeatureSet,
  VIRTIO_BLK_S,
  VIRTIO_BLK_T,
  VIRTIO_F,
  VIRTIO_MMIO as R,
  VIRTIO_STATUS as S,
} from '@nestlab/virtio';
import { RingImage } from '@nestlab/virtio/testing';
import { DEFAULT_BDF, defaultConfiguration } from '../config.js';
import { blkBuffers } from '../testing/blk-helpers.js';
import { TestDriver, le } from '../testing/driver.js';
import { startL0, type L0Harness } from '../testing/harness.js';

const MiB = 1n << 20n;
/** RAM is [0, 16 MiB): nothing after it. */
const RAM_END = 16n * MiB;
const PAGE = 4096;

describe('virtio-mmio version 1: the legacy registers and ring layout', () => {
  let h: L0Harness;
  let d: TestDriver;
  let base: bigint;
  let irq: number;
  const reg = async (offset: number) => {
    const b = await d.read(base + BigInt(offset), 4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  };
  const write = (offset: number, value: number) =>
    d.access([{ op: 'write', addr: base + BigInt(offset), bytes: le(value, 4) }]);

  before(async () => {
    h = await startL0();
    const dev = defaultConfiguration().devices[0];
    assert.ok(dev);
    const r = await h.request(L0Configure, {
      memoryMap: { ram: [{ machine: '0x0', bytes: Number(RAM_END) }] },
      devices: [{ ...dev, transport: 'mmio', mmioVersion: 1, freshDisk: true }],
    });
    const placed = r.head.devices[0]?.mmio;
    assert.ok(placed);
    base = parseHex('machine', placed.addr);
    irq = placed.irq;
    d = new TestDriver(h, DEFAULT_BDF, { kind: 'xen' }, { kind: 'mmio', base, irq });
  });
  after(() => h?.stop());

  /** Reset, ACKNOWLEDGE, DRIVER, the one feature word: the legacy init (no FEATURES_OK). */
  async function init(features: number): Promise<void> {
    await write(R.STATUS, 0);
    await write(R.STATUS, S.ACKNOWLEDGE);
    await write(R.STATUS, S.ACKNOWLEDGE | S.DRIVER);
    await write(R.DRIVER_FEATURES_SEL, 0);
    await write(R.DRIVER_FEATURES, features);
  }

  /** vm_setup_vq for version 1: queue 0 of `size` entries at page `pfn`. */
  async function placeQueue(size: number, pfn: number): Promise<void> {
    await write(R.QUEUE_SEL, 0);
    assert.equal(await reg(R.QUEUE_PFN), 0, 'the queue is free');
    assert.equal(await reg(R.QUEUE_NUM_MAX), 256);
    await write(R.QUEUE_NUM, size);
    await write(R.QUEUE_ALIGN, PAGE);
    await write(R.QUEUE_PFN, pfn);
  }

  async function expectNeedsReset(reason: RegExp): Promise<void> {
    const st = await d.state();
    assert.equal(st.status & S.NEEDS_RESET, S.NEEDS_RESET);
    assert.match(String(st.brokenReason), reason);
    assert.equal(st.queues[0]?.enabled, false);
  }

  it('answers Version 1 with one 32-bit feature window and none of the version 2 queue registers', async () => {
    assert.equal(await reg(R.MAGIC_VALUE), 0x74726976);
    assert.equal(await reg(R.VERSION), 1);
    assert.equal(await reg(R.DEVICE_ID), 2);
    await write(R.DEVICE_FEATURES_SEL, 0);
    const low = await reg(R.DEVICE_FEATURES);
    assert.ok(low & (1 << VIRTIO_F.INDIRECT_DESC), 'the offer, low word');
    await write(R.DEVICE_FEATURES_SEL, 1);
    assert.equal(await reg(R.DEVICE_FEATURES), 0, 'VERSION_1 (bit 32) is beyond a legacy device');
    // QueueReady and the three address registers are not there.
    await write(R.QUEUE_SEL, 0);
    await write(R.QUEUE_DESC_LOW, 0x10000);
    await write(R.QUEUE_READY, 1);
    assert.equal(await reg(R.QUEUE_READY), 0);
    const q = (await d.state()).queues[0];
    assert.equal(q?.desc, '0x0');
    assert.equal(q?.enabled, false);
  });

  it('places the ring at QueuePFN × GuestPageSize in the legacy layout and serves I/O without FEATURES_OK', async () => {
    await write(R.GUEST_PAGE_SIZE, PAGE);
    await init(FeatureSet.of(VIRTIO_F.INDIRECT_DESC).word(0));
    await placeQueue(8, 0x10);
    await write(R.STATUS, S.ACKNOWLEDGE | S.DRIVER | S.DRIVER_OK);
    const st = await d.state();
    // 8 descriptors (128 bytes), the avail ring right after, the used ring on the next page.
    assert.deepEqual(
      [st.queues[0]?.desc, st.queues[0]?.driver, st.queues[0]?.device, st.queues[0]?.enabled],
      ['0x10000', '0x10080', '0x11000', true],
    );
    assert.equal(st.negotiated, FeatureSet.of(VIRTIO_F.INDIRECT_DESC).toHex());
    assert.equal(st.status & S.FEATURES_OK, 0);
    assert.equal(await reg(R.QUEUE_PFN), 0x10, 'QueuePFN reads back: the queue is in use');

    const ring = new RingImage(d.mem, { size: 8, base: 0x10000n });
    ring.addChain(
      blkBuffers(d.mem, { type: VIRTIO_BLK_T.FLUSH, header: 0x20000n, status: 0x20100n }),
    );
    await d.kick();
    assert.equal(await d.usedIdx(ring), 1);
    assert.deepEqual([...(await d.read(0x20100n, 1))], [VIRTIO_BLK_S.OK]);
  });

  it('releases the queue when the driver writes QueuePFN 0', async () => {
    await write(R.QUEUE_SEL, 0);
    await write(R.QUEUE_PFN, 0);
    assert.equal(await reg(R.QUEUE_PFN), 0);
    const q = (await d.state()).queues[0];
    assert.deepEqual([q?.enabled, q?.desc], [false, '0x0']);
  });

  it('puts the device in NEEDS_RESET when the page number puts the ring past the end of RAM', async () => {
    await init(0);
    h.msis.length = 0;
    // 256 entries: the 4 KiB descriptor table fills RAM's last page, the avail ring lies past it.
    await placeQueue(256, Number(RAM_END) / PAGE - 1);
    await expectNeedsReset(/^RING_NOT_IN_RAM: queue 0: avail ring at 0x1000000 \+ 518/);
    assert.deepEqual(h.msis, [{ bdf: DEFAULT_BDF, vector: irq }], 'config interrupt');
    assert.equal((await reg(R.INTERRUPT_STATUS)) & 2, 2, 'InterruptStatus: configuration change');
  });

  it('puts the device in NEEDS_RESET when GuestPageSize is not a power of two', async () => {
    await write(R.GUEST_PAGE_SIZE, 3000);
    await init(0);
    await placeQueue(8, 0x10);
    await expectNeedsReset(/^RING_LAYOUT_INVALID: GuestPageSize 3000 is not a power of two/);
    // A reset keeps GuestPageSize (Linux writes it once, at probe): the driver fixes it and goes on.
    await write(R.GUEST_PAGE_SIZE, PAGE);
    await init(0);
    await placeQueue(8, 0x10);
    assert.equal((await d.state()).queues[0]?.enabled, true);
  });
});
