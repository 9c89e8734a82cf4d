// What only virtio-mmio has (spec 4.2.2): the identification registers, the
// 32-bit access rule, one interrupt line with InterruptStatus/InterruptACK,
// and no PCI function. The rest runs in the shared suites (device-init,
// blk-io, ring-robustness) against both transports.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { PciConfig } from '@nestlab/protocol';
import { FeatureSet, VIRTIO_BLK_T, VIRTIO_F, VIRTIO_MMIO as R } from '@nestlab/virtio';
import { RingImage } from '@nestlab/virtio/testing';
import { DEFAULT_BDF } from '../config.js';
import { blkBuffers } from '../testing/blk-helpers.js';
import { TestDriver, le, type DeviceAt } from '../testing/driver.js';
import { metricValue, startL0, type L0Harness } from '../testing/harness.js';
import { configureOn } from '../testing/transports.js';

describe('virtio-mmio: registers only the mmio transport has', () => {
  let h: L0Harness;
  let at: Extract<DeviceAt, { kind: 'mmio' }>;
  let d: TestDriver;
  const reg = async (offset: number) => {
    const b = await d.read(at.base + BigInt(offset), 4);
    return new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true);
  };
  before(async () => {
    h = await startL0();
    const placed = await configureOn(h, 'mmio', { freshDisk: true });
    assert.equal(placed.kind, 'mmio');
    at = placed;
    d = new TestDriver(h, DEFAULT_BDF, { kind: 'xen' }, at);
  });
  after(() => h?.stop());

  it('sits at the platform window with magic "virt", version 2, virtio-blk, and no PCI function', async () => {
    assert.equal(at.base, 0xfeb0_0000n);
    assert.equal(at.irq, 5);
    assert.equal(await reg(R.MAGIC_VALUE), 0x74726976);
    assert.equal(await reg(R.VERSION), 2);
    assert.equal(await reg(R.DEVICE_ID), 2);
    assert.equal(await reg(R.VENDOR_ID), 0x1af4);
    const cfg = await h.request(PciConfig, { bdf: DEFAULT_BDF, op: 'read', offset: 0, size: 4 });
    assert.equal(cfg.head.value, 0xffff_ffff, 'config space of an empty slot');
    // The device config (virtio-blk capacity, 64 MiB of sectors) is at 0x100.
    assert.equal(await reg(R.CONFIG), (64 << 20) / 512);
  });

  it('ignores a control register write that is not 32 bits wide, and counts it', async () => {
    const ignored = () =>
      metricValue(h.metrics, 'nestlab_l0_mmio_ignored_total', { region: 'mmio:width' });
    const before = ignored();
    await d.access([{ op: 'write', addr: at.base + BigInt(R.QUEUE_SEL), bytes: le(3, 2) }]);
    assert.equal(await reg(R.QUEUE_SEL), 0, 'QueueSel is write-only: reads 0');
    await d.writeCommon('queue_select', 0);
    assert.equal(await reg(R.QUEUE_NUM_MAX), 256, 'queue 0 still selected');
    assert.equal(ignored(), before + 1);
  });

  it('raises its line with InterruptStatus VRING set until the driver acknowledges it', async () => {
    await d.negotiate(FeatureSet.of(VIRTIO_F.VERSION_1));
    const ring = new RingImage(d.mem, { size: 8, base: 0x10000n });
    await d.start(ring);
    h.msis.length = 0;
    ring.addChain(
      blkBuffers(d.mem, { type: VIRTIO_BLK_T.FLUSH, header: 0x20000n, status: 0x20100n }),
    );
    await d.kick();
    await h.clientNc.flush();
    assert.deepEqual(h.msis, [{ bdf: DEFAULT_BDF, vector: at.irq }]);
    assert.equal(await reg(R.INTERRUPT_STATUS), 1);
    assert.equal(await reg(R.INTERRUPT_STATUS), 1, 'reading does not clear it');
    await d.access([{ op: 'write', addr: at.base + BigInt(R.INTERRUPT_ACK), bytes: le(1, 4) }]);
    assert.equal(await reg(R.INTERRUPT_STATUS), 0);
  });
});
