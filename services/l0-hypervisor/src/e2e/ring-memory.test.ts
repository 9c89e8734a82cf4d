// A card with device memory for its rings (DeviceSetup.ringMemoryBytes):
// BAR 2 sized like hardware, announced by a virtio shared-memory capability,
// plain memory for CPU loads and stores (no register side effects).
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { L0Configure } from '@nestlab/protocol';
import { PCI_CAP_ID_VNDR, PCI_CFG, VIRTIO_PCI_CAP } from '@nestlab/virtio';
import { defaultConfiguration } from '../config.js';
import { TestDriver } from '../testing/driver.js';
import { startL0, type L0Harness } from '../testing/harness.js';
import { configureOn } from '../testing/transports.js';

const RING_BAR = 0xfe80_0000n;

describe('ring memory: a second BAR of device memory', () => {
  let h: L0Harness;
  let d: TestDriver;
  before(async () => {
    h = await startL0();
    d = new TestDriver(h);
    await configureOn(h, 'pci', { ringMemoryBytes: 48 * 1024 });
  });
  after(() => h?.stop());

  it('reports BAR 2 rounded up to a power of two, and sizes it like hardware', async () => {
    const cfg = defaultConfiguration();
    const dev = cfg.devices[0];
    assert.ok(dev);
    const r = await h.request(L0Configure, {
      ...cfg,
      devices: [{ ...dev, transport: 'pci', ringMemoryBytes: 48 * 1024 }],
    });
    assert.deepEqual(r.head.devices[0]?.bars[1], { index: 2, addr: '0xfe800000', bytes: 0x1_0000 });
    const bar2 = PCI_CFG.BAR0 + 8;
    assert.equal(await d.cfg(bar2, 4), 0xfe80_000c);
    assert.equal(await d.cfg(bar2, 4, 0xffff_ffff), 0xffff_000c, 'size mask: 64 KiB');
    await d.cfg(bar2, 4, 0xfe80_0000);
  });

  it('announces it with a shared-memory capability after MSI-X', async () => {
    let at = await d.cfg(PCI_CFG.CAPABILITY_LIST, 1);
    const seen: [number, number][] = [];
    while (at !== 0) {
      seen.push([at, await d.cfg(at, 1)]);
      if ((await d.cfg(at, 1)) === PCI_CAP_ID_VNDR && (await d.cfg(at + 3, 1)) === 8) break;
      at = await d.cfg(at + 1, 1);
    }
    assert.equal(at, 0x90, JSON.stringify(seen));
    assert.equal(await d.cfg(at + 3, 1), VIRTIO_PCI_CAP.SHARED_MEMORY_CFG);
    assert.equal(await d.cfg(at + 2, 1), 24, 'struct virtio_pci_cap64');
    assert.equal(await d.cfg(at + 4, 1), 2, 'BAR 2');
    assert.equal(await d.cfg(at + 8, 4), 0, 'offset');
    assert.equal(await d.cfg(at + 12, 4), 0x1_0000, 'length');
    assert.equal(await d.cfg(at + 1, 1), 0, 'end of list');
  });

  it('is plain memory for CPU stores and loads, and refuses an access over its edge', async () => {
    const bytes = Uint8Array.from({ length: 64 }, (_, i) => i + 1);
    await d.access([{ op: 'write', addr: RING_BAR + 0x100n, bytes }]);
    assert.deepEqual(await d.read(RING_BAR + 0x100n, 64), bytes);
    assert.deepEqual(await d.read(RING_BAR + 0x140n, 4), new Uint8Array(4));
    await assert.rejects(d.read(RING_BAR + 0xfffcn, 8), /MEMORY_UNREACHABLE|straddles/);
  });
});
