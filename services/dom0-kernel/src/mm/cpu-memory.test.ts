import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { machineAddr, pseudoPhysAddr } from '@nestlab/addr';
import { FeatureSet } from '@nestlab/virtio';
import { flush, startHarness, type Harness } from '../testing/harness.js';
import { BAR_BASE, L0RegsDouble } from '../testing/l0-regs-double.js';
import { CpuMemory } from './cpu-memory.js';
import { P2mCopy } from './p2m-copy.js';

describe('CPU memory of a PV dom0 (real NATS, L0 register double)', () => {
  let h: Harness;
  let l0: L0RegsDouble;
  // pfn 0x20000 → mfn 0x500, pfn 0x20001 → mfn 0x300: pseudo-contiguous, machine-discontiguous.
  const p2m = new P2mCopy([
    { pfn: 0x20000, mfn: 0x500, count: 1 },
    { pfn: 0x20001, mfn: 0x300, count: 1 },
    { pfn: 0x20002, mfn: 0x301, count: 200 },
  ]);
  before(async () => {
    h = await startHarness();
    l0 = new L0RegsDouble({ offer: FeatureSet.EMPTY });
    l0.serve(h.peer);
    await flush(h);
  });
  after(async () => {
    await h?.close();
  });

  it('translates page by page, puts RAM ops before MMIO ones, and returns each read', async () => {
    const cpu = new CpuMemory(h.bus, () => p2m);
    const b = cpu.batch();
    b.mmioWrite(machineAddr(BAR_BASE + 0x3000n), new Uint8Array([0, 0]));
    b.write(pseudoPhysAddr(0x2000_0ff0n), new Uint8Array(32).fill(7));
    const r1 = b.read(pseudoPhysAddr(0x2000_0ff8n), 16);
    const r2 = b.mmioRead(machineAddr(BAR_BASE + 0x2000n), 4);
    const res = await b.commit();
    const batch = l0.batches.at(-1)!;
    assert.deepEqual(
      batch.map((o) => `${o.op}@0x${o.addr.toString(16)}+${o.len}`),
      [
        'write@0x500ff0+16',
        'write@0x300000+16',
        'read@0x500ff8+8',
        'read@0x300000+8',
        'write@0xfe003000+2',
        'read@0xfe002000+4',
      ],
    );
    assert.deepEqual([...res.get(r1)], new Array(16).fill(7));
    assert.equal(
      new DataView(new Uint8Array(res.get(r2)).buffer).getUint32(0, true),
      1 << 20,
      'capacity low word',
    );
    assert.ok(batch.every((o) => o.mmio === o.addr >= BAR_BASE));
  });

  it('merges machine-contiguous pages and splits a large batch below the NATS payload limit', async () => {
    const cpu = new CpuMemory(h.bus, () => p2m);
    const before = l0.batches.length;
    const big = new Uint8Array(600 * 1024).map((_, i) => i & 0xff);
    await cpu.write(pseudoPhysAddr(0x2000_1000n), big);
    const sent = l0.batches.slice(before);
    assert.equal(sent.length, 2, 'two messages');
    assert.ok(sent.every((b) => b.reduce((n, o) => n + o.len, 0) <= 512 * 1024));
    assert.equal(sent[0]![0]!.len, 64 * 1024, 'contiguous pages merged up to 64 KiB per op');
    const back = await cpu.read(pseudoPhysAddr(0x2000_1000n), big.byteLength);
    assert.deepEqual(back, big);
  });
});
