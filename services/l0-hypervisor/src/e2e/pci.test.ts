import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { RemoteError } from '@nestlab/protocol';
import { PCI_CAP_ID_MSIX, PCI_CFG, VIRTIO_BLK_CONFIG, VIRTIO_PCI_CAP } from '@nestlab/virtio';
import { TestDriver } from '../testing/driver.js';
import { startL0, type L0Harness } from '../testing/harness.js';

describe('PCI: config space, capabilities, BAR sizing', () => {
  let h: L0Harness;
  let d: TestDriver;
  before(async () => {
    h = await startL0();
    d = new TestDriver(h);
  });
  after(() => h?.stop());

  it('identifies a modern virtio-blk function', async () => {
    assert.equal(await d.cfg(PCI_CFG.VENDOR_ID, 2), 0x1af4);
    assert.equal(await d.cfg(PCI_CFG.DEVICE_ID, 2), 0x1042);
    assert.equal(await d.cfg(PCI_CFG.VENDOR_ID, 4), 0x1042_1af4);
    assert.equal(await d.cfg(PCI_CFG.SUBSYSTEM_ID, 2), 2);
    assert.equal(await d.cfg(PCI_CFG.CLASS_BASE, 1), 0x01);
    assert.ok((await d.cfg(PCI_CFG.REVISION_ID, 1)) >= 1);
    assert.equal((await d.cfg(PCI_CFG.STATUS, 2)) & 0x10, 0x10, 'capability list present');
  });

  it('lists COMMON/ISR/DEVICE/NOTIFY in BAR 4 and an MSI-X capability', async () => {
    const l = await d.discoverPci();
    assert.equal(l.bar, 0xfe00_0000n);
    assert.deepEqual(
      l.caps.map((c) => [c.type, c.bar, c.offset]),
      [
        [VIRTIO_PCI_CAP.COMMON_CFG, 4, 0x0000],
        [VIRTIO_PCI_CAP.ISR_CFG, 4, 0x1000],
        [VIRTIO_PCI_CAP.DEVICE_CFG, 4, 0x2000],
        [VIRTIO_PCI_CAP.NOTIFY_CFG, 4, 0x3000],
      ],
    );
    assert.equal(l.multiplier, 4);
    const msix = await d.cfg((l.caps[3]?.at ?? 0) + 1, 1);
    assert.equal(await d.cfg(msix, 1), PCI_CAP_ID_MSIX);
    assert.equal(((await d.cfg(msix + 2, 2)) & 0x7ff) + 1, 2, 'MSI-X table size 2');
    assert.equal(await d.cfg(msix + 1, 1), 0, 'end of list');
  });

  it('shows virtio_blk_config in the device region: capacity in sectors, blk_size 512', async () => {
    const l = await d.discoverPci();
    const cfg = await d.read(l.bar + BigInt(l.device), 24);
    const v = new DataView(cfg.buffer);
    assert.equal(v.getBigUint64(VIRTIO_BLK_CONFIG.capacity.offset, true), BigInt((64 << 20) / 512));
    assert.equal(v.getUint32(VIRTIO_BLK_CONFIG.blk_size.offset, true), 512);
    assert.equal(v.getUint32(VIRTIO_BLK_CONFIG.seg_max.offset, true), 254);
  });

  it('answers BAR sizing like hardware, and decodes where the BAR is programmed', async () => {
    const bar4 = PCI_CFG.BAR0 + 16;
    assert.equal(await d.cfg(bar4, 4), 0xfe00_000c, '64-bit prefetchable memory BAR');
    assert.equal(await d.cfg(bar4, 4, 0xffff_ffff), 0xffff_c00c, 'size mask: 16 KiB');
    assert.equal(await d.cfg(bar4 + 4, 4, 0xffff_ffff), 0xffff_ffff);
    await assert.rejects(
      d.read(0xfe00_0012n, 2),
      (e: RemoteError) => e.code === 'MEMORY_UNREACHABLE',
    );
    await d.cfg(bar4, 4, 0xfe00_0000);
    await d.cfg(bar4 + 4, 4, 0);
    assert.deepEqual(await d.read(0xfe00_0012n, 2), Uint8Array.of(1, 0), 'num_queues again');
    assert.equal(await d.cfg(PCI_CFG.BAR0, 4, 0xffff_ffff), 0, 'unimplemented BAR sizes to 0');
    assert.equal(await d.cfg(PCI_CFG.VENDOR_ID, 2, 0x1234), 0x1af4, 'read-only');
  });

  it('stops decoding the BAR when memory space is disabled in COMMAND', async () => {
    const cmd = await d.cfg(PCI_CFG.COMMAND, 2);
    await d.cfg(PCI_CFG.COMMAND, 2, cmd & ~0x2);
    await assert.rejects(
      d.read(0xfe00_0012n, 2),
      (e: RemoteError) => e.code === 'MEMORY_UNREACHABLE',
    );
    await d.cfg(PCI_CFG.COMMAND, 2, cmd);
    assert.deepEqual(await d.read(0xfe00_0012n, 2), Uint8Array.of(1, 0));
  });

  it('reads all ones from an empty slot and ignores writes there', async () => {
    const none = new TestDriver(h, '0000:00:05.0');
    assert.equal(await none.cfg(0, 4), 0xffff_ffff);
    assert.equal(await none.cfg(0, 2), 0xffff);
    assert.equal(await none.cfg(4, 2, 6), 0xffff);
  });

  it('refuses an MMIO write of an odd width', async () => {
    await assert.rejects(
      d.access([{ op: 'write', addr: 0xfe00_0000n, bytes: new Uint8Array(3) }]),
      (e: RemoteError) => e.code === 'MMIO_BAD_WIDTH' && e.kind === 'guest',
    );
  });
});
