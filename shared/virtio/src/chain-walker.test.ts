import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { busAddr } from '@nestlab/addr';
import { VRING_DESC_F, VirtioError, popAvail, walkChain } from './index.js';
import { RingImage, SparseTestMemory } from './testing/index.js';
import type { RingMemory, VirtioErrorCode, VirtioResult, WalkOptions } from './index.js';

const { NEXT, WRITE, INDIRECT } = VRING_DESC_F;
const TABLE = 0x20000n;

function setup(size = 8) {
  const mem = new SparseTestMemory();
  const ring = new RingImage(mem, { size });
  return { mem, ring, q: ring.queue };
}

function expectError(r: VirtioResult<unknown>, code: VirtioErrorCode): VirtioError {
  assert.equal(r.ok, false, `expected ${code}, got a chain`);
  assert.ok(!r.ok);
  assert.ok(r.error instanceof VirtioError);
  assert.equal(r.error.code, code, r.error.message);
  return r.error;
}

const blkRequest = [
  { addr: 0x100000n, len: 16 },
  { addr: 0x101000n, len: 512, writable: true },
  { addr: 0x102000n, len: 1, writable: true },
];

describe('popAvail / walkChain: valid rings', () => {
  it('pops a direct chain and reports each buffer with its direction', async () => {
    const { mem, ring, q } = setup();
    const head = ring.addChain(blkRequest);
    const r = await popAvail(mem, q, 0);
    assert.ok(r.ok);
    assert.ok(r.value);
    assert.equal(r.value.headIndex, head);
    assert.equal(r.value.descCount, 3);
    assert.equal(r.value.indirect, false);
    assert.equal(r.value.readableBytes, 16);
    assert.equal(r.value.writableBytes, 513);
    assert.deepEqual(
      r.value.buffers.map((b) => [b.addr, b.len, b.writable]),
      [
        [0x100000n, 16, false],
        [0x101000n, 512, true],
        [0x102000n, 1, true],
      ],
    );
    assert.equal(r.value.availIdx, 0);
    assert.equal(r.value.nextAvailIdx, 1);
  });

  it('returns null when the driver published nothing new', async () => {
    const { mem, q } = setup();
    const r = await popAvail(mem, q, 0);
    assert.deepEqual(r, { ok: true, value: null });
  });

  it('follows descriptors placed out of order', async () => {
    const { mem, ring, q } = setup();
    ring.addChain(blkRequest, { indices: [5, 2, 7] });
    const r = await popAvail(mem, q, 0);
    assert.ok(r.ok && r.value);
    assert.equal(r.value.headIndex, 5);
    assert.equal(r.value.buffers.length, 3);
  });

  it('pops an indirect chain', async () => {
    const { mem, ring, q } = setup();
    ring.addIndirectChain(blkRequest, TABLE);
    const r = await popAvail(mem, q, 0);
    assert.ok(r.ok && r.value);
    assert.equal(r.value.indirect, true);
    assert.equal(r.value.descCount, 4); // the pointing descriptor + 3 entries
    assert.deepEqual(
      r.value.buffers.map((b) => b.len),
      [16, 512, 1],
    );
  });

  it('accepts direct descriptors followed by one indirect (spec: Indirect Descriptors)', async () => {
    const { mem, ring, q } = setup();
    ring.addIndirectChain(blkRequest.slice(1), TABLE, { direct: blkRequest.slice(0, 1) });
    const r = await popAvail(mem, q, 0);
    assert.ok(r.ok && r.value);
    assert.deepEqual(
      r.value.buffers.map((b) => [b.len, b.writable]),
      [
        [16, false],
        [512, true],
        [1, true],
      ],
    );
  });

  it('ignores WRITE on the descriptor that points at an indirect table', async () => {
    const { mem, ring, q } = setup();
    const head = ring.addIndirectChain(blkRequest, TABLE);
    ring.patchDesc(head, { flags: INDIRECT | WRITE });
    assert.ok((await popAvail(mem, q, 0)).ok);
  });

  it('keeps u16 index arithmetic across the 65535 -> 0 wrap', async () => {
    const { mem, ring, q } = setup();
    ring.setAvailIdx(0xfffe);
    const a = ring.addChain([{ addr: 0x1000n, len: 1 }]);
    const b = ring.addChain([{ addr: 0x2000n, len: 2 }]);
    assert.equal(ring.availIdx, 0);
    const first = await popAvail(mem, q, 0xfffe);
    assert.ok(first.ok && first.value);
    assert.equal(first.value.headIndex, a);
    assert.equal(first.value.nextAvailIdx, 0xffff);
    const second = await popAvail(mem, q, 0xffff);
    assert.ok(second.ok && second.value);
    assert.equal(second.value.headIndex, b);
    assert.equal(second.value.nextAvailIdx, 0);
    assert.deepEqual(await popAvail(mem, q, 0), { ok: true, value: null });
  });

  it('accepts exactly Q outstanding chains', async () => {
    const { mem, ring, q } = setup(4);
    for (let i = 0; i < 4; i++) ring.addChain([{ addr: 0x1000n, len: 1 }]);
    assert.ok((await popAvail(mem, q, 0)).ok);
  });

  it('accepts a buffer ending exactly at 2^64 - 1', async () => {
    const { mem, ring, q } = setup();
    ring.addChain([{ addr: 0xffff_ffff_ffff_f000n, len: 0x1000 }]);
    assert.ok((await popAvail(mem, q, 0)).ok);
  });
});

describe('popAvail / walkChain: hostile rings', () => {
  it('RING_LOOP: two descriptors pointing at each other', async () => {
    const { mem, ring, q } = setup();
    ring.writeDesc(0, { addr: 0x1000n, len: 8, flags: NEXT, next: 1 });
    ring.writeDesc(1, { addr: 0x2000n, len: 8, flags: NEXT, next: 0 });
    ring.publish(0);
    expectError(await popAvail(mem, q, 0), 'RING_LOOP');
  });

  it('RING_LOOP: a cycle through all 32768 descriptors ends after Q reads, without hanging', async () => {
    const size = 32768;
    const { mem, ring, q } = setup(size);
    for (let i = 0; i < size; i++) {
      ring.writeDesc(i, { addr: 0x1000n, len: 1, flags: NEXT, next: (i + 1) % size });
    }
    ring.publish(0);
    mem.reads.length = 0;
    expectError(await popAvail(mem, q, 0), 'RING_LOOP');
    assert.equal(mem.reads.length, size + 2); // avail.idx, avail.ring[0], then Q descriptors
  });

  it('RING_LOOP: a self-loop inside an indirect table', async () => {
    const { mem, ring, q } = setup();
    const head = ring.addIndirectChain(blkRequest, TABLE);
    ring.writeTable(TABLE, [
      { addr: 0x1000n, len: 16, flags: NEXT, next: 0 },
      ...blkRequest.slice(1),
    ]);
    const r = await walkChain(mem, q, head);
    expectError(r, 'RING_LOOP');
  });

  it('DESC_INDEX_OUT_OF_RANGE: head index >= Q', async () => {
    const { mem, ring, q } = setup();
    ring.publish(8);
    expectError(await popAvail(mem, q, 0), 'DESC_INDEX_OUT_OF_RANGE');
    expectError(await walkChain(mem, q, -1), 'DESC_INDEX_OUT_OF_RANGE');
  });

  it('DESC_INDEX_OUT_OF_RANGE: next >= Q', async () => {
    const { mem, ring, q } = setup();
    ring.writeDesc(0, { addr: 0x1000n, len: 8, flags: NEXT, next: 8 });
    ring.publish(0);
    expectError(await popAvail(mem, q, 0), 'DESC_INDEX_OUT_OF_RANGE');
  });

  it('DESC_INDEX_OUT_OF_RANGE: next beyond the indirect table', async () => {
    const { mem, ring, q } = setup();
    const head = ring.addIndirectChain(blkRequest.slice(0, 2), TABLE);
    ring.writeTable(TABLE, [
      { addr: 0x1000n, len: 16, flags: NEXT, next: 1 },
      { addr: 0x2000n, len: 16, flags: NEXT | WRITE, next: 2 },
    ]);
    expectError(await walkChain(mem, q, head), 'DESC_INDEX_OUT_OF_RANGE');
  });

  it('NESTED_INDIRECT: an INDIRECT entry inside an indirect table', async () => {
    const { mem, ring, q } = setup();
    const head = ring.addIndirectChain(blkRequest, TABLE);
    ring.writeTable(TABLE, [{ addr: TABLE, len: 48, flags: INDIRECT }]);
    expectError(await walkChain(mem, q, head), 'NESTED_INDIRECT');
  });

  for (const [what, len, options] of [
    ['zero', 0, {}],
    ['not a multiple of 16', 24, {}],
    ['more entries than allowed', 5 * 16, { maxIndirectEntries: 4 }],
  ] as const) {
    it(`INDIRECT_LEN_INVALID: table length ${what}`, async () => {
      const { mem, ring, q } = setup();
      mem.map(TABLE, 0x1000);
      ring.writeDesc(0, { addr: TABLE, len, flags: INDIRECT });
      ring.publish(0);
      const opts: WalkOptions = options;
      expectError(await popAvail(mem, q, 0, opts), 'INDIRECT_LEN_INVALID');
    });
  }

  it('INDIRECT_WITH_NEXT: INDIRECT and NEXT on one descriptor', async () => {
    const { mem, ring, q } = setup();
    const head = ring.addIndirectChain(blkRequest, TABLE);
    ring.patchDesc(head, { flags: INDIRECT | NEXT, next: 1 });
    expectError(await walkChain(mem, q, head), 'INDIRECT_WITH_NEXT');
  });

  it('INDIRECT_NOT_NEGOTIATED: INDIRECT without the feature', async () => {
    const { mem, ring, q } = setup();
    const head = ring.addIndirectChain(blkRequest, TABLE);
    expectError(await walkChain(mem, q, head, { indirect: false }), 'INDIRECT_NOT_NEGOTIATED');
  });

  it('READABLE_AFTER_WRITABLE: in the descriptor table and in an indirect table', async () => {
    const { mem, ring, q } = setup();
    const swapped = [blkRequest[1], blkRequest[0]].filter((b) => b !== undefined);
    const direct = ring.addChain(swapped, { publish: false });
    expectError(await walkChain(mem, q, direct), 'READABLE_AFTER_WRITABLE');
    const indirect = ring.addIndirectChain(swapped, TABLE, { publish: false });
    expectError(await walkChain(mem, q, indirect), 'READABLE_AFTER_WRITABLE');
  });

  it('AVAIL_IDX_TOO_FAR: avail.idx more than Q ahead', async () => {
    const { mem, ring, q } = setup();
    ring.setAvailIdx(9);
    const e = expectError(await popAvail(mem, q, 0), 'AVAIL_IDX_TOO_FAR');
    assert.equal(e.kind, 'guest');
    // "Behind" is the same as far ahead in u16 arithmetic.
    ring.setAvailIdx(0xffff);
    expectError(await popAvail(mem, q, 0), 'AVAIL_IDX_TOO_FAR');
  });

  it('ADDR_WRAP: a buffer whose addr + len passes 2^64', async () => {
    const { mem, ring, q } = setup();
    ring.addChain([{ addr: 0xffff_ffff_ffff_fff0n, len: 0x20 }]);
    expectError(await popAvail(mem, q, 0), 'ADDR_WRAP');
  });

  it('ADDR_WRAP: an indirect table whose addr + len passes 2^64', async () => {
    const { mem, ring, q } = setup();
    ring.writeDesc(0, { addr: 0xffff_ffff_ffff_fff0n, len: 32, flags: INDIRECT });
    expectError(await walkChain(mem, q, 0), 'ADDR_WRAP');
  });

  it('MEMORY_UNREACHABLE: an indirect table where there is no memory, with the cause kept', async () => {
    const { mem, ring, q } = setup();
    const head = ring.addIndirectChain(blkRequest, TABLE);
    mem.unmap(TABLE, 48);
    const e = expectError(await walkChain(mem, q, head), 'MEMORY_UNREACHABLE');
    assert.ok(e.cause instanceof Error);
    assert.match(e.message, /indirect table/);
  });

  it('MEMORY_UNREACHABLE: a failing read of the descriptor table, kind taken from the cause', async () => {
    const { mem, ring, q } = setup();
    ring.addChain(blkRequest);
    const timeout = Object.assign(new Error('iommu translate timed out'), { kind: 'transient' });
    mem.failRange = { addr: q.desc, len: 16, error: timeout };
    const e = expectError(await popAvail(mem, q, 0), 'MEMORY_UNREACHABLE');
    assert.equal(e.cause, timeout);
    assert.equal(e.kind, 'transient');
  });

  it('MEMORY_UNREACHABLE: a reader that rejects with a non-Error or returns short data', async () => {
    const { mem, ring, q } = setup();
    ring.addChain(blkRequest);
    const rejecting: RingMemory = { read: () => Promise.reject(new Error('boom')) };
    expectError(await popAvail(rejecting, q, 0), 'MEMORY_UNREACHABLE');
    const throwing: RingMemory = {
      read: () => {
        throw 'not an error';
      },
    };
    expectError(await popAvail(throwing, q, 0), 'MEMORY_UNREACHABLE');
    const short: RingMemory = { read: async (a, len) => (await mem.read(a, len)).subarray(1) };
    expectError(await popAvail(short, q, 0), 'MEMORY_UNREACHABLE');
  });

  it('QUEUE_SIZE_INVALID and RING_MISALIGNED for a bad queue configuration', async () => {
    const { mem, q } = setup();
    expectError(await popAvail(mem, { ...q, size: 6 }, 0), 'QUEUE_SIZE_INVALID');
    expectError(await popAvail(mem, { ...q, desc: busAddr(q.desc + 8n) }, 0), 'RING_MISALIGNED');
    expectError(await popAvail(mem, { ...q, used: busAddr(q.used + 2n) }, 0), 'RING_MISALIGNED');
    expectError(await popAvail(mem, q, 0x10000), 'INVALID_ARGUMENT');
  });
});
