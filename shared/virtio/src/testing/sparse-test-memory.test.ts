import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { busAddr } from '@nestlab/addr';
import { SparseTestMemory } from './index.js';

describe('SparseTestMemory', () => {
  it('reads back writes that cross page boundaries', async () => {
    const mem = new SparseTestMemory();
    const bytes = Uint8Array.from({ length: 0x1010 }, (_, i) => i & 0xff);
    mem.write(busAddr(0x1ff8n), bytes);
    assert.deepEqual(await mem.read(busAddr(0x1ff8n), 0x1010), bytes);
  });

  it('fails reads of memory that was never written, unless zero-filled', async () => {
    await assert.rejects(new SparseTestMemory().read(busAddr(0x5000n), 4), /no memory at 0x5000/);
    assert.deepEqual(
      await new SparseTestMemory({ zeroFill: true }).read(busAddr(0x5000n), 2),
      new Uint8Array(2),
    );
  });

  it('unmaps pages and injects failures', async () => {
    const mem = new SparseTestMemory();
    mem.map(0x1000n, 0x2000);
    mem.unmap(0x2000n, 1);
    await assert.rejects(mem.read(busAddr(0x2ffen), 2));
    assert.ok(await mem.read(busAddr(0x1000n), 8));
    mem.failRange = { addr: 0x1004n, len: 1 };
    await assert.rejects(mem.read(busAddr(0x1000n), 8), /injected/);
  });

  it('handles the top page of the address space', async () => {
    const mem = new SparseTestMemory();
    mem.write(busAddr(0xffff_ffff_ffff_fffen), Uint8Array.of(1, 2));
    assert.deepEqual(await mem.read(busAddr(0xffff_ffff_ffff_fffen), 2), Uint8Array.of(1, 2));
  });
});
