import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  VRING_AVAIL_F_NO_INTERRUPT,
  availEventWrite,
  popAvail,
  readUsedEvent,
  shouldInterrupt,
  usedElemWrite,
  usedIdxWrite,
} from './index.js';
import { RingImage, SparseTestMemory } from './testing/index.js';
import type { RingWrite } from './index.js';

function setup() {
  const mem = new SparseTestMemory();
  const ring = new RingImage(mem, { size: 4 });
  const apply = (w: RingWrite) => mem.write(w.addr, w.bytes);
  return { mem, ring, q: ring.queue, apply };
}

describe('used ring writes', () => {
  it('completes a popped chain where the driver will look for it', async () => {
    const { mem, ring, q, apply } = setup();
    const head = ring.addChain([{ addr: 0x1000n, len: 512, writable: true }]);
    const r = await popAvail(mem, q, 0);
    assert.ok(r.ok && r.value);
    apply(usedElemWrite(q, 0, r.value.headIndex, 512));
    apply(usedIdxWrite(q, 1));
    assert.equal(ring.usedIdx(), 1);
    assert.deepEqual(ring.usedElem(0), { id: head, len: 512 });
  });

  it('places used idx 5 in slot 1 of a 4-entry ring', () => {
    const { q } = setup();
    assert.equal(usedElemWrite(q, 5, 0, 0).addr, q.used + 4n + 8n);
  });

  it('refuses ids and indexes the device got wrong', () => {
    const { q } = setup();
    assert.throws(() => usedElemWrite(q, 0, 4, 0), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => usedElemWrite(q, 0, 0, 2 ** 32), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => usedIdxWrite(q, 0x10000), { code: 'INVALID_ARGUMENT' });
  });

  it('writes avail_event after the used ring and reads used_event after the avail ring', async () => {
    const { mem, ring, q, apply } = setup();
    apply(availEventWrite(q, 0x1234));
    assert.equal(ring.availEvent(), 0x1234);
    ring.setUsedEvent(7);
    assert.deepEqual(await readUsedEvent(mem, q), { ok: true, value: 7 });
  });
});

describe('shouldInterrupt', () => {
  it('follows avail.flags without EVENT_IDX', async () => {
    const { mem, ring, q } = setup();
    assert.deepEqual(await shouldInterrupt(mem, q, false, 0, 1), { ok: true, value: true });
    ring.setAvailFlags(VRING_AVAIL_F_NO_INTERRUPT);
    assert.deepEqual(await shouldInterrupt(mem, q, false, 0, 1), { ok: true, value: false });
  });

  it('follows used_event with EVENT_IDX and ignores avail.flags', async () => {
    const { mem, ring, q } = setup();
    ring.setAvailFlags(VRING_AVAIL_F_NO_INTERRUPT);
    ring.setUsedEvent(2);
    assert.deepEqual(await shouldInterrupt(mem, q, true, 0, 2), { ok: true, value: false });
    assert.deepEqual(await shouldInterrupt(mem, q, true, 2, 3), { ok: true, value: true });
  });

  it('reports an unreadable avail ring as MEMORY_UNREACHABLE', async () => {
    const { mem, q } = setup();
    mem.unmap(q.avail, 2);
    const r = await shouldInterrupt(mem, q, false, 0, 1);
    assert.ok(!r.ok);
    assert.equal(r.error.code, 'MEMORY_UNREACHABLE');
  });
});
