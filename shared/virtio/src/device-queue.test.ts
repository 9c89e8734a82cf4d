import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DeviceQueue, splitRingLayout, unwrap } from './index.js';
import type { QueueMemory, RamBackingCheck, SplitQueue } from './index.js';
import { RingImage, SparseTestMemory } from './testing/index.js';

const RAM_END = 0x10_0000n;

/** RAM from 0 to RAM_END with a hole at [holeAt, holeAt + 4 KiB). */
const ramWithHole =
  (holeAt: bigint): RamBackingCheck =>
  (addr, len) => {
    const end = addr + BigInt(len);
    return end <= RAM_END && (end <= holeAt || addr >= holeAt + 0x1000n);
  };

function memory(): { mem: SparseTestMemory; io: QueueMemory } {
  const mem = new SparseTestMemory({ zeroFill: true });
  const io: QueueMemory = {
    read: (addr, len) => mem.read(addr, len),
    write: (addr, bytes) => {
      mem.write(addr, bytes);
      return Promise.resolve(true);
    },
  };
  return { mem, io };
}

/** A device queue configured onto the areas of a ring image, enabled. */
function deviceQueueFor(ring: RingImage, backed?: RamBackingCheck): DeviceQueue {
  const q = new DeviceQueue(0, ring.size);
  q.configure('desc', ring.queue.desc);
  q.configure('driver', ring.queue.avail);
  q.configure('device', ring.queue.used);
  unwrap(q.enable(backed));
  return q;
}

describe('DeviceQueue enable: every ring area wholly RAM', () => {
  it('refuses a used ring that ends past the end of RAM (RING_NOT_IN_RAM)', () => {
    const q = new DeviceQueue(0, 256);
    const usedBytes = splitRingLayout(256).used.bytes; // 2054
    q.configure('desc', 0x1_0000n);
    q.configure('driver', 0x2_0000n);
    // Starts in RAM, its last bytes (avail_event) lie past RAM_END.
    q.configure('device', RAM_END - 2048n);
    assert.ok(RAM_END - 2048n + BigInt(usedBytes) > RAM_END);
    const r = q.enable(ramWithHole(0x8_0000n));
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.error.code, 'RING_NOT_IN_RAM');
      assert.match(r.error.message, /used ring/);
    }
    assert.equal(q.ready, false);
    // Once it fits it is accepted, and a live queue ignores reconfiguration.
    q.configure('device', RAM_END - 2056n);
    assert.equal(q.enable(ramWithHole(0x8_0000n)).ok, true);
    assert.equal(q.configure('device', 0n), false);
  });

  it('refuses a descriptor table that straddles a memory-map hole', () => {
    const q = new DeviceQueue(0, 256);
    const hole = 0x8_0000n;
    q.configure('desc', hole - 0x800n); // 4 KiB table: half below the hole, half in it
    q.configure('driver', 0x2_0000n);
    q.configure('device', 0x3_0000n);
    const r = q.enable(ramWithHole(hole));
    assert.equal(r.ok, false);
    if (!r.ok) {
      assert.equal(r.error.code, 'RING_NOT_IN_RAM');
      assert.match(r.error.message, /descriptor table/);
    }
  });

  it('cannot tell behind an IOMMU (undefined) and then enables', () => {
    const q = new DeviceQueue(0, 8);
    assert.equal(q.enable(() => undefined).ok, true);
  });
});

describe('DeviceQueue chains', () => {
  it('treats a chain of more than 4 GiB as malformed (CHAIN_TOO_LONG)', async () => {
    const { mem, io } = memory();
    const ring = new RingImage(mem, { size: 8 });
    const q = deviceQueueFor(ring);
    ring.addChain([
      { addr: 0x10_0000n, len: 0x8000_0000 },
      { addr: 0x9000_0000n, len: 0x8000_0000, writable: true },
    ]);
    const sq = unwrap(q.split());
    const r = await q.pop(io, sq);
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.error.code, 'CHAIN_TOO_LONG');
    assert.equal(q.nextAvail, 0, 'a malformed chain is not consumed');
  });

  it('pops, adds used elements, publishes one used.idx and asks about the interrupt', async () => {
    const { mem, io } = memory();
    const ring = new RingImage(mem, { size: 8 });
    const q = deviceQueueFor(ring);
    const sq = unwrap(q.split());
    const a = ring.addChain([{ addr: 0x4_0000n, len: 16 }]);
    const b = ring.addChain([{ addr: 0x5_0000n, len: 512, writable: true }]);
    assert.equal(unwrap(await q.pending(io, sq)), 2);
    assert.equal(unwrap(await q.pop(io, sq))?.headIndex, a);
    assert.equal(unwrap(await q.pop(io, sq))?.headIndex, b);
    assert.equal(unwrap(await q.pop(io, sq)), null);
    unwrap(await q.addUsed(io, sq, a, 0));
    unwrap(await q.addUsed(io, sq, b, 512));
    assert.equal(ring.usedIdx(), 0, 'nothing visible before publishUsed');
    assert.equal(unwrap(await q.publishUsed(io, sq)), true);
    assert.equal(ring.usedIdx(), 2);
    assert.deepEqual(ring.usedElem(1), { id: b, len: 512 });
    assert.equal(unwrap(await q.publishUsed(io, sq)), false);
    ring.setUsedEvent(0); // EVENT_IDX: interrupt once used.idx passes 0
    assert.equal(unwrap(await q.needsNotification(io, sq, true)), true);
    assert.deepEqual(q.state(), { nextAvail: 2, nextUsed: 2 });
  });
});

describe('DeviceQueue state / restore', () => {
  it('continues across the u16 wrap after restore near 65535', async () => {
    const { mem, io } = memory();
    const ring = new RingImage(mem, { size: 4 });
    const q = deviceQueueFor(ring);
    const sq: SplitQueue = unwrap(q.split());
    // A snapshot taken mid-stream: the driver is at the same place in memory.
    const start = 0xfffe;
    ring.setAvailIdx(start);
    mem.write(sq.used + 2n, Uint8Array.of(start & 0xff, start >> 8));
    q.restore({ nextAvail: start, nextUsed: start });
    const heads = [0, 1, 2].map((i) =>
      ring.addChain([{ addr: 0x6_0000n + BigInt(i) * 0x1000n, len: 8 }]),
    );
    assert.equal(ring.availIdx, 1, 'avail.idx wrapped to 1');
    for (const h of heads) {
      const c = unwrap(await q.pop(io, sq));
      assert.equal(c?.headIndex, h);
      unwrap(await q.addUsed(io, sq, h, 8));
    }
    unwrap(await q.publishUsed(io, sq));
    assert.deepEqual(q.state(), { nextAvail: 1, nextUsed: 1 });
    assert.equal(ring.usedIdx(), 1, 'used.idx wrapped to 1');
    // Free-running 0xfffe, 0xffff, 0x0000 land in slots 2, 3, 0.
    assert.deepEqual(
      [0xfffe, 0xffff, 0].map((i) => ring.usedElem(i).id),
      heads,
    );
    // EVENT_IDX across the wrap: used_event 0xffff was passed by 0xfffe → 1.
    ring.setUsedEvent(0xffff);
    assert.equal(unwrap(await q.needsNotification(io, sq, true)), true);
    ring.setUsedEvent(1);
    assert.equal(unwrap(await q.needsNotification(io, sq, true)), false);
  });

  it('refuses a state that is not two u16s', () => {
    const q = new DeviceQueue(0, 8);
    assert.throws(() => q.restore({ nextAvail: 0x1_0000, nextUsed: 0 }), /INVALID_ARGUMENT|u16/);
  });
});
