// L0 configured with an explicit memory map (RAM ranges and holes) and a
// device serial; rings that RAM does not wholly back, and a chain too long
// for used.len, put the device in NEEDS_RESET with their typed reason.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { L0Configure } from '@nestlab/protocol';
import {
  FeatureSet,
  VIRTIO_BLK_S,
  VIRTIO_BLK_T,
  VIRTIO_F,
  VIRTIO_STATUS,
  VRING_DESC_F,
} from '@nestlab/virtio';
import { RingImage } from '@nestlab/virtio/testing';
import { DEFAULT_BDF, defaultConfiguration } from '../config.js';
import { blkBuffers } from '../testing/blk-helpers.js';
import { TestDriver } from '../testing/driver.js';
import { startL0, type L0Harness } from '../testing/harness.js';

const MiB = 1n << 20n;
/** RAM [0, 16 MiB) and [32 MiB, 48 MiB): a hole between, nothing after. */
const HOLE = 16n * MiB;
const RAM_END = 48n * MiB;
const FEATURES = FeatureSet.of(VIRTIO_F.VERSION_1, VIRTIO_F.INDIRECT_DESC);

describe('L0 with an explicit memory map', () => {
  let h: L0Harness;
  before(async () => {
    h = await startL0();
    const dev = defaultConfiguration().devices[0];
    assert.ok(dev);
    const reply = await h.request(L0Configure, {
      memoryMap: {
        ram: [
          { machine: '0x0', bytes: Number(HOLE) },
          { machine: `0x${(2n * HOLE).toString(16)}`, bytes: Number(HOLE) },
        ],
      },
      devices: [{ ...dev, serial: 'lab-disk-7', freshDisk: true }],
    });
    assert.deepEqual(
      reply.head.memslots.map((s) => [s.machine, s.hostPhys, s.bytes]),
      [
        ['0x0', '0x0', Number(HOLE)],
        ['0x2000000', '0x1000000', Number(HOLE)],
      ],
    );
  });
  after(() => h?.stop());

  /** Starts queue 0 on `ring` without writing its areas (part of them is no RAM). */
  async function startUnwritten(d: TestDriver, ring: RingImage): Promise<void> {
    d.mem.pending.length = 0;
    await d.start(ring);
  }

  async function expectNeedsReset(d: TestDriver, reason: RegExp): Promise<void> {
    const st = await d.state();
    assert.equal(st.status & VIRTIO_STATUS.NEEDS_RESET, VIRTIO_STATUS.NEEDS_RESET);
    assert.match(String(st.brokenReason), reason);
  }

  it('refuses a queue whose used ring ends past the end of RAM (RING_NOT_IN_RAM)', async () => {
    const d = new TestDriver(h);
    await d.negotiate(FEATURES);
    h.msis.length = 0;
    // 8 entries: the used ring is 70 bytes; at RAM_END - 64 its last 6 lie past RAM.
    const ring = new RingImage(d.mem, {
      size: 8,
      desc: 0x10000n,
      avail: 0x11000n,
      used: RAM_END - 64n,
    });
    await startUnwritten(d, ring);
    await expectNeedsReset(d, /^RING_NOT_IN_RAM: queue 0: used ring at 0x2ffffc0 \+ 70/);
    assert.equal((await d.state()).queues[0]?.enabled, false);
    assert.deepEqual(h.msis, [{ bdf: DEFAULT_BDF, vector: 0 }], 'config interrupt');
  });

  it('refuses a queue whose descriptor table straddles the hole (RING_NOT_IN_RAM)', async () => {
    const d = new TestDriver(h);
    await d.negotiate(FEATURES);
    // 256 entries: a 4 KiB table, its first half below the hole, its second half in it.
    const ring = new RingImage(d.mem, {
      size: 256,
      desc: HOLE - 2048n,
      avail: 0x11000n,
      used: 0x12000n,
    });
    await startUnwritten(d, ring);
    await expectNeedsReset(d, /^RING_NOT_IN_RAM: queue 0: descriptor table at 0xfff800/);
  });

  it('treats a chain of more than 4 GiB as malformed (CHAIN_TOO_LONG), not a failed request', async () => {
    const d = new TestDriver(h);
    await d.negotiate(FEATURES);
    const ring = new RingImage(d.mem, { size: 8, base: 0x10000n });
    await d.start(ring);
    ring.writeDesc(0, { addr: 0x20000n, len: 0x8000_0000, flags: VRING_DESC_F.NEXT, next: 1 });
    ring.writeDesc(1, { addr: 0x2100_0000n, len: 0x8000_0001, flags: VRING_DESC_F.WRITE });
    ring.publish(0);
    await d.kick();
    await expectNeedsReset(d, /^CHAIN_TOO_LONG: /);
    assert.equal(await d.usedIdx(ring), 0, 'nothing completed');
  });

  it('answers GET_ID with the configured serial, in RAM above the hole', async () => {
    const d = new TestDriver(h);
    await d.negotiate(FEATURES);
    const high = 2n * HOLE;
    const ring = new RingImage(d.mem, { size: 8, base: high + 0x10000n });
    await d.start(ring);
    ring.addChain(
      blkBuffers(d.mem, {
        type: VIRTIO_BLK_T.GET_ID,
        header: high + 0x20000n,
        data: [{ addr: high + 0x22000n, len: 20, writable: true }],
        status: high + 0x20100n,
      }),
    );
    await d.kick();
    assert.equal(await d.usedIdx(ring), 1);
    assert.equal((await d.read(high + 0x20100n, 1))[0], VIRTIO_BLK_S.OK);
    const id = new TextDecoder().decode(await d.read(high + 0x22000n, 20)).replace(/\0+$/, '');
    assert.equal(id, 'lab-disk-7');
  });

  it('refuses a configuration with both ramBytes and a memory map, and RAM over a BAR', async () => {
    const dev = defaultConfiguration().devices[0];
    assert.ok(dev);
    await assert.rejects(
      h.request(L0Configure, {
        ramBytes: 1 << 30,
        memoryMap: { ram: [{ machine: '0x0', bytes: 1 << 30 }] },
        devices: [],
      }),
      { code: 'CONFIG_INVALID' },
    );
    await assert.rejects(
      h.request(L0Configure, {
        memoryMap: { ram: [{ machine: '0x0', bytes: 2 ** 33 }] },
        devices: [dev],
      }),
      /BAR .* would overlap RAM/,
    );
  });
});
