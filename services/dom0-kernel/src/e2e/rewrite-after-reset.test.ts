// FLUSH across a device reset (the crash-restart-l0 finding): the device has
// a volatile write cache; it completes writes, then L0 dies (cache lost) and
// comes back in reset while the FLUSH is outstanding. The FLUSH resubmitted
// on the new device instance must not make the lost writes durable: the
// workload writes them again in the new epoch and flushes, so every write
// the history calls durable is in the device's backing store.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IoRecord, Workload } from '@nestlab/protocol';
import { waitFor } from '@nestlab/testing';
import { FeatureSet, VIRTIO_BLK_F, VIRTIO_BLK_T, VIRTIO_F } from '@nestlab/virtio';
import { AppHarness, type Scenario } from '../testing/app-harness.js';
import { shuffledP2m } from '../testing/xen-double.js';
import { blockContent } from '@nestlab/formats';

const P2M = shuffledP2m(0x20000, 1024, 0x40000);
const FLUSHING = FeatureSet.of(VIRTIO_F.VERSION_1).with(VIRTIO_BLK_F.FLUSH);
const W: Workload = {
  rw: 'write',
  bs: 4096,
  iodepth: 4,
  ios: 4,
  seed: 21,
  verify: true,
  deadlineMs: 10_000,
  spanBytes: 8 * 4096,
  fsyncEvery: 4,
  history: true,
};

interface Dom0State {
  rewritesAfterReset: number;
  driver: { recovery: { resets: number }; tracker: { inFlight: number } };
}
const state = (app: AppHarness) => app.mod.state?.() as Dom0State;

/** Serves one chain and sends its interrupt, as the device would. */
async function serveNext(app: AppHarness, s: Scenario): Promise<number> {
  await waitFor('a chain to serve', () => (s.device.pending() > 0 ? true : undefined), 5000);
  const r = await s.device.serveOne();
  s.device.interrupt(app.h.peer, s.xen.ports.queue);
  return r.type;
}

/** Whether the device's backing store (not its cache) holds exactly what `r` wrote. */
function onDisk(s: Scenario, r: IoRecord): boolean {
  const got = s.device.disk.get(BigInt(r.block * (W.bs / 512)));
  const want = blockContent(r.wrote!, W.bs);
  return got !== undefined && Buffer.from(got).equals(Buffer.from(want));
}

describe('FLUSH across a device reset: lost cached writes are written again', () => {
  let app: AppHarness;
  before(async () => {
    app = await AppHarness.start({ hangMs: 300 });
  });
  after(async () => {
    await app?.close();
  });

  it('writes completed, L0 dies before the FLUSH completes: no durable write is missing from the disk', async () => {
    const s = await app.scenario({ offer: FLUSHING }, P2M);
    await app.configure({
      generation: 'modern',
      policy: 'xen-swiotlb',
      wanted: FLUSHING,
      queueSize: 64,
    });
    assert.equal((await app.probe()).ok, true);
    s.device.volatileCache = true;
    const before = state(app);
    let done = false;
    const job = app.job(W).finally(() => (done = true));

    // The device completes the four writes (into its cache) ...
    const first: number[] = [];
    for (let k = 0; k < 4; k++) first.push(await serveNext(app, s));
    assert.deepEqual(
      first,
      [1, 1, 1, 1].map(() => VIRTIO_BLK_T.OUT),
    );
    // ... the FLUSH is posted, and L0 is SIGKILLed before serving it: cache gone, device in reset.
    await waitFor('the FLUSH posted', () => (s.device.pending() === 1 ? true : undefined), 5000);
    assert.equal(s.device.loseCache(), 4, 'four completed writes were only in the cache');
    s.l0.status = 0;
    s.l0.queue.enable = 0;
    await waitFor(
      'reset by the hung-queue watch',
      () =>
        state(app).driver.recovery.resets === before.driver.recovery.resets + 1 ? true : undefined,
      5000,
    );
    s.device.lastAvail = 0;
    s.device.usedIdx = 0;

    // The new device instance: the resubmitted FLUSH, the rewrites, the FLUSH after them.
    const types: number[] = [];
    while (!done) {
      if (s.device.pending() > 0) {
        types.push((await s.device.serveOne()).type);
        s.device.interrupt(app.h.peer, s.xen.ports.queue);
      } else await new Promise((r) => setTimeout(r, 3));
    }
    const r = await job;
    assert.deepEqual({ completed: r.completed, failed: r.failed }, { completed: 4, failed: 0 });
    assert.deepEqual(types, [
      VIRTIO_BLK_T.FLUSH,
      VIRTIO_BLK_T.OUT,
      VIRTIO_BLK_T.OUT,
      VIRTIO_BLK_T.OUT,
      VIRTIO_BLK_T.OUT,
      VIRTIO_BLK_T.FLUSH,
    ]);

    const h = r.history!;
    assert.deepEqual(
      h.map((x) => [x.op, x.ok, x.durable ?? null]),
      [
        ['write', true, true],
        ['write', true, true],
        ['write', true, true],
        ['write', true, true],
        ['flush', true, null], // completed on the new instance: it made none of them durable
        ['write', true, true], // the rewrites
        ['write', true, true],
        ['write', true, true],
        ['write', true, true],
        ['flush', true, null],
      ],
    );
    // Each rewrite carries the stamp of a planned write; every durable write is on the disk.
    const planned = h.slice(0, 4).map((x) => JSON.stringify(x.wrote));
    assert.deepEqual(
      h
        .slice(5, 9)
        .map((x) => JSON.stringify(x.wrote))
        .sort(),
      planned.sort(),
    );
    const durable = h.filter((x) => x.op === 'write' && x.durable === true);
    assert.equal(durable.length, 8);
    for (const x of durable) assert.ok(onDisk(s, x), `record ${x.i} (block ${x.block}) on disk`);
    assert.equal(s.device.cache.size, 0, 'nothing left only in the cache');

    assert.equal(state(app).rewritesAfterReset - before.rewritesAfterReset, 4);
    assert.match(await app.h.metrics.render(), /nestlab_dom0_rewrites_after_reset_total [1-9]/);
    assert.equal(state(app).driver.tracker.inFlight, 0);

    // The model agrees: reading every block back finds what the job wrote.
    let readDone = false;
    const rd = app.job({ ...W, rw: 'read', fsyncEvery: 0 }).finally(() => (readDone = true));
    while (!readDone) {
      if (s.device.pending() > 0) {
        await s.device.serveOne();
        s.device.interrupt(app.h.peer, s.xen.ports.queue);
      } else await new Promise((r) => setTimeout(r, 3));
    }
    const read = await rd;
    assert.deepEqual(
      { verified: read.verified, corrupted: read.corrupted },
      { verified: 4, corrupted: 0 },
    );
  });
});
