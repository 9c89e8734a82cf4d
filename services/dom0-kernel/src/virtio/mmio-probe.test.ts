// vm_probe over a virtio-mmio window, real NATS: the register window is
// played by the L0 double's memory (a window at a RAM address), so a test
// can show the driver a Version no L0 device has.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { busAddr } from '@nestlab/addr';
import { FeatureSet, VIRTIO_MMIO as R, VIRTIO_MMIO_MAGIC } from '@nestlab/virtio';
import { Dom0Error } from '../errors.js';
import { CpuMemory } from '../mm/cpu-memory.js';
import { P2mCopy } from '../mm/p2m-copy.js';
import { flush, startHarness, type Harness } from '../testing/harness.js';
import { L0RegsDouble } from '../testing/l0-regs-double.js';
import { MmioRegs, parseMmioDevice } from './mmio.js';

const WINDOW = 0x4000_0000n;
const le32 = (v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
};

describe('virtio-mmio probe: version 1 the legacy way, version 2 the modern way, others refused', () => {
  let h: Harness;
  let l0: L0RegsDouble;
  let cpu: CpuMemory;
  before(async () => {
    h = await startHarness();
    l0 = new L0RegsDouble({ offer: FeatureSet.EMPTY });
    l0.serve(h.peer);
    await flush(h);
    cpu = new CpuMemory(h.bus, () => new P2mCopy([{ pfn: 0, mfn: 0, count: 16 }]));
  });
  after(async () => {
    await h?.close();
  });

  /** A fresh window answering MagicValue, `version` and virtio-blk. */
  function windowWith(version: number): MmioRegs {
    for (const [reg, v] of [
      [R.MAGIC_VALUE, VIRTIO_MMIO_MAGIC],
      [R.VERSION, version],
      [R.DEVICE_ID, 2],
      [R.GUEST_PAGE_SIZE, 0],
      [R.QUEUE_ALIGN, 0],
      [R.QUEUE_PFN, 0],
    ] as const)
      l0.ram.write(WINDOW + BigInt(reg), le32(v));
    return new MmioRegs(cpu, parseMmioDevice(`0x200@0x${WINDOW.toString(16)}:5`));
  }
  const reg = (offset: number) =>
    new DataView(l0.ram.readSync(WINDOW + BigInt(offset), 4).slice().buffer).getUint32(0, true);

  it('version 1: tells the device its page size and places a ring by page number', async () => {
    const regs = windowWith(1);
    await regs.probe();
    assert.equal(regs.legacy, true);
    assert.equal(reg(R.GUEST_PAGE_SIZE), 4096);
    await regs.placeLegacyRing(busAddr(0x123_4000n), 4096);
    assert.equal(reg(R.QUEUE_ALIGN), 4096);
    assert.equal(reg(R.QUEUE_PFN), 0x1234);
  });

  it('version 1: a ring QueuePFN cannot name is a typed error, nothing written', async () => {
    const regs = windowWith(1);
    await regs.probe();
    for (const desc of [0x123_4800n, 1n << 44n]) {
      await assert.rejects(
        regs.placeLegacyRing(busAddr(desc), 4096),
        (e: unknown) => e instanceof Dom0Error && e.code === 'QUEUE_UNAVAILABLE',
      );
    }
    assert.equal(reg(R.QUEUE_PFN), 0);
  });

  it('version 2: no GuestPageSize, the modern registers', async () => {
    const regs = windowWith(2);
    await regs.probe();
    assert.equal(regs.legacy, false);
    assert.equal(reg(R.GUEST_PAGE_SIZE), 0);
  });

  for (const version of [0, 3, 0xffff_ffff]) {
    it(`Version ${version}: a typed probe error (MMIO_VERSION_UNSUPPORTED)`, async () => {
      const regs = windowWith(version);
      await assert.rejects(regs.probe(), (e: unknown) => {
        assert.ok(e instanceof Dom0Error);
        assert.equal(e.code, 'MMIO_VERSION_UNSUPPORTED');
        assert.match(
          e.message,
          new RegExp(`Version ${version}, this driver speaks 1 \\(legacy\\) and 2`),
        );
        return true;
      });
      assert.equal(reg(R.GUEST_PAGE_SIZE), 0);
    });
  }
});
