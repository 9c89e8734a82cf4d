import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IoReport, Workload } from '@nestlab/protocol';
import { waitFor } from '@nestlab/testing';
import { FeatureSet, VIRTIO_F } from '@nestlab/virtio';
import { AppHarness, type Scenario } from '../testing/app-harness.js';
import { BAR_BASE } from '../testing/l0-regs-double.js';
import { shuffledP2m } from '../testing/xen-double.js';

const { VERSION_1, ACCESS_PLATFORM, INDIRECT_DESC, EVENT_IDX } = VIRTIO_F;
const ALL = FeatureSet.of(VERSION_1, ACCESS_PLATFORM, INDIRECT_DESC, EVENT_IDX);
const P2M = shuffledP2m(0x20000, 1024, 0x40000);
const NOTIFY = BAR_BASE + 0x3000n;
const W: Workload = {
  rw: 'write',
  bs: 4096,
  iodepth: 2,
  ios: 4,
  seed: 11,
  verify: true,
  deadlineMs: 3000,
  spanBytes: 4 * 4096,
};

/** Runs a job while the test plays the device: serve what is available, then interrupt. */
async function runServed(app: AppHarness, s: Scenario, w: Workload): Promise<IoReport> {
  let done = false;
  const job = app.job(w).finally(() => (done = true));
  while (!done) {
    if (s.device.pending() > 0) {
      await s.device.serveOne();
      s.device.interrupt(app.h.peer, s.xen.ports.queue);
    } else await new Promise((r) => setTimeout(r, 3));
  }
  return job;
}

const driverState = (app: AppHarness) =>
  (app.mod.state?.() as { driver: { tracker: { late: number }; buffersHeld: number } }).driver;

describe('one I/O end to end through the driver (L0 register double; the test plays the device)', () => {
  let app: AppHarness;
  before(async () => {
    // The test plays the device by hand: no hung-queue reset under it (recovery.test.ts covers that).
    app = await AppHarness.start({ hangMs: 60_000 });
  });
  after(async () => {
    await app?.close();
  });

  it('xen-swiotlb: data, header, descriptors, avail and the doorbell go in ONE MemAccess; reads verify', async () => {
    const s = await app.scenario({ offer: ALL }, P2M);
    await app.configure({
      generation: 'modern',
      policy: 'xen-swiotlb',
      wanted: FeatureSet.of(VERSION_1),
      queueSize: 64,
    });
    const probed = await app.probe();
    assert.equal(probed.ok, true);
    // Queue size 64: the used ring starts on the ring's second page (legacy layout).
    const usedIdxAt = BigInt(probed.ring!.bus) + 4096n + 2n;
    const before = s.l0.batches.length;
    const w = await runServed(app, s, W);
    assert.deepEqual(
      { ...w, latencyUs: null, elapsedMs: null, traceIds: w.traceIds.length },
      {
        submitted: 4,
        completed: 4,
        verified: 4,
        corrupted: 0,
        failed: 0,
        errors: {},
        latencyUs: null,
        elapsedMs: null,
        traceIds: 4,
      },
    );
    assert.deepEqual(
      [...s.device.disk.keys()].sort((a, b) => (a < b ? -1 : 1)),
      [0n, 8n, 16n, 24n],
    );
    const kicks = s.l0.batches.slice(before).filter((b) => b.some((o) => o.addr === NOTIFY));
    // Chains posted in one turn share one message (plugging): the job starts two at once.
    const perChain = 17 + 4096 + 48 + 2; // header+status, data, 3 descriptors, avail entry
    const chains = kicks.map((b) => {
      const at = b.findIndex((o) => o.addr === NOTIFY);
      assert.deepEqual([...b[at]!.data!], [0, 0]);
      assert.ok(
        b.slice(0, at).every((o) => !o.mmio && o.op === 'write'),
        'RAM stores before the doorbell',
      );
      // After it, only loads: an idle ring is polled in the same message (used.idx first).
      const after = b.slice(at + 1);
      assert.ok(
        after.every((o) => !o.mmio && o.op === 'read'),
        'only loads after it',
      );
      if (after.length > 0)
        assert.equal(after[0]!.addr, usedIdxAt, 'the poll reads used.idx first');
      const stored = b.slice(0, at).reduce((n, o) => n + o.len, 0);
      // ...and one avail.idx store per message: the data stores travel in the same batch.
      assert.equal((stored - 2) % perChain, 0, `stored ${stored}`);
      return (stored - 2) / perChain;
    });
    assert.equal(chains[0], 2, 'the two chains the job starts with share the first doorbell');
    assert.equal(
      chains.reduce((a, b) => a + b, 0),
      4,
      'every chain went out with a doorbell',
    );
    const r = await runServed(app, s, { ...W, rw: 'read' });
    assert.equal(r.verified, 4);
    assert.equal(r.corrupted, 0);
    const { entries } = await app.ledger();
    const bufs = entries.filter((e) => e.what === 'buffer');
    assert.equal(bufs.length, 16, 'header+status and data per I/O');
    for (const e of bufs) assert.equal(BigInt(e.bus) >> 12n, BigInt(e.mfns[0]!), 'bus = machine');
  });

  it('iommu + INDIRECT + EVENT_IDX: IOVA buffers in an indirect table, kicks suppressed, every buffer unmapped', async () => {
    const s = await app.scenario({ offer: ALL, requireAccessPlatform: true }, P2M, true);
    await app.configure({ generation: 'modern', policy: 'iommu', wanted: ALL, queueSize: 64 });
    const p = await app.probe();
    assert.equal(p.ok, true);
    assert.ok(BigInt(p.ring!.bus) >= 0x1_0000_0000n);
    const mapsAfterProbe = s.xen.iommu.size;
    let served: Awaited<ReturnType<typeof s.device.serveOne>>[] = [];
    const orig = s.device.serveOne.bind(s.device);
    s.device.serveOne = async (st?: number) => {
      const r = await orig(st);
      served.push(r);
      return r;
    };
    const w = await runServed(app, s, { ...W, iodepth: 1, ios: 3 });
    assert.equal(w.completed, 3);
    assert.equal(w.verified, 3);
    for (const c of served) {
      assert.equal(c.indirect, true);
      assert.equal(c.buffers.length, 3);
      for (const b of c.buffers) assert.ok(b >= 0x1_0000_0000n, 'every buffer is an IOVA');
    }
    assert.equal(
      s.l0.notifies.length,
      1,
      'the device never moved avail_event: later kicks suppressed',
    );
    // Unmaps are lazy (flush queue): they go out after the I/O completed.
    await waitFor('buffers unmapped, ring and indirect pool stay', () =>
      s.xen.iommu.size === mapsAfterProbe ? true : undefined,
    );
    const maps = s.xen.calls.filter((c) => c.startsWith('iommu_map')).slice(-3);
    for (const c of maps)
      assert.equal(c.split(',').length, 2, `header+status and data in one: ${c}`);
    const unmaps = s.xen.calls.filter((c) => c.startsWith('iommu_unmap'));
    assert.ok(
      unmaps.length >= 1 && unmaps.length <= 3,
      `6 buffers unmapped in at most one hypercall per I/O: ${unmaps.join(' ')}`,
    );
    served = [];
    const r = await runServed(app, s, { ...W, rw: 'read', iodepth: 1, ios: 3 });
    assert.equal(r.verified, 3);
  });

  it('xen-swiotlb bounces 8 KiB buffers that straddle machine-discontiguous frames, both ways', async () => {
    const s = await app.scenario({ offer: ALL }, P2M);
    await app.configure({
      generation: 'modern',
      policy: 'xen-swiotlb',
      wanted: ALL,
      queueSize: 64,
    });
    assert.equal((await app.probe()).ok, true);
    const w8: Workload = { ...W, bs: 8192, ios: 8, iodepth: 2, spanBytes: 8 * 8192 };
    const wr = await runServed(app, s, w8);
    assert.equal(wr.completed, 8);
    const rd = await runServed(app, s, { ...w8, rw: 'read' });
    assert.equal(rd.verified, 8, 'bounced reads were copied back into the caller buffer');
    assert.equal(rd.corrupted, 0);
    const { entries } = await app.ledger();
    const bounced = entries.filter((e) => e.what === 'bounce');
    assert.ok(bounced.length > 0, 'some 8 KiB buffers needed the bounce pool');
    for (const e of bounced)
      assert.equal(e.mfns[1], e.mfns[0]! + 1, 'a bounce slot is machine-contiguous');
  });

  it('an unserved I/O fails with TIMEOUT by its deadline; its late completion is ignored and counted', async () => {
    const s = await app.scenario({ offer: ALL }, P2M);
    await app.configure({
      generation: 'modern',
      policy: 'xen-swiotlb',
      wanted: FeatureSet.of(VERSION_1),
      queueSize: 64,
    });
    assert.equal((await app.probe()).ok, true);
    const started = Date.now();
    const r = await app.job({ ...W, ios: 1, iodepth: 1, deadlineMs: 150 });
    assert.ok(Date.now() - started < 1500);
    assert.deepEqual(r.errors, { TIMEOUT: 1 });
    assert.equal(r.completed, 0);
    assert.equal(
      driverState(app).buffersHeld,
      1,
      'buffers stay mapped while the device may still use them',
    );
    await s.device.serveOne();
    s.device.interrupt(app.h.peer, s.xen.ports.queue);
    await waitFor(
      'late completion',
      () => (driverState(app).tracker.late === 1 ? true : undefined),
      3000,
    );
    await waitFor(
      'buffers released',
      () => (driverState(app).buffersHeld === 0 ? true : undefined),
      3000,
    );
  });

  it('NEEDS_RESET on the config vector: the driver resets the device, sets the queue up again and resubmits', async () => {
    const s = await app.scenario({ offer: ALL }, P2M);
    await app.configure({
      generation: 'modern',
      policy: 'xen-swiotlb',
      wanted: FeatureSet.of(VERSION_1),
      queueSize: 64,
    });
    assert.equal((await app.probe()).ok, true);
    const resets = () =>
      (app.mod.state?.() as { driver: { recovery: { resets: number } } }).driver.recovery.resets;
    const before = resets();
    const job = app.job({ ...W, ios: 2, iodepth: 2, deadlineMs: 20_000 });
    await waitFor('two chains', () => (s.device.pending() === 2 ? true : undefined), 3000);
    s.l0.status |= 64;
    s.device.interrupt(app.h.peer, s.xen.ports.config);
    await waitFor('device reset', () => (resets() === before + 1 ? true : undefined), 5000);
    assert.equal(s.l0.status & 64, 0, 'the reset cleared NEEDS_RESET');
    assert.equal(s.l0.queue.enable, 1, 'the queue is enabled again');
    // A reset device starts its queue from index 0, on the same ring memory.
    s.device.lastAvail = 0;
    s.device.usedIdx = 0;
    await waitFor('both resubmitted', () => (s.device.pending() === 2 ? true : undefined), 3000);
    for (let i = 0; i < 2; i++) await s.device.serveOne();
    s.device.interrupt(app.h.peer, s.xen.ports.queue);
    const r = await job;
    assert.deepEqual({ completed: r.completed, failed: r.failed }, { completed: 2, failed: 0 });
    assert.equal(r.corrupted, 0);
    const again = await runServed(app, s, { ...W, rw: 'read', ios: 2 });
    assert.deepEqual(
      { completed: again.completed, verified: again.verified },
      { completed: 2, verified: 2 },
    );
  });

  it("legacy under Xen: the ring's bus address is pseudo-physical, so the device finds nothing there", async () => {
    const s = await app.scenario({ offer: ALL }, P2M);
    await app.configure({
      generation: 'pre-2016',
      policy: 'legacy',
      wanted: FeatureSet.of(VERSION_1),
      queueSize: 64,
    });
    const p = await app.probe();
    assert.equal(p.ok, true);
    assert.equal(p.ring!.bus, p.ring!.pseudo);
    const job = app.job({ ...W, ios: 1, iodepth: 1, deadlineMs: 300 });
    await waitFor(
      'the driver published',
      () => (s.l0.notifies.length === 1 ? true : undefined),
      3000,
    );
    assert.equal(s.device.pending(), 0, 'at bus-as-machine there is no avail idx');
    const ringPfn = Number(BigInt(p.ring!.pseudo) >> 12n);
    const realAvail = (BigInt(s.xen.p2m.get(ringPfn)!) << 12n) + 64n * 16n + 2n;
    assert.equal(s.l0.ram.readSync(realAvail, 2)[0], 1, 'the driver wrote it at P2M(pseudo)');
    assert.deepEqual((await job).errors, { TIMEOUT: 1 });
  });

  it('legacy on a plain KVM guest (identity P2M) works', async () => {
    const s = await app.scenario({ offer: ALL }, [{ pfn: 0, mfn: 0, count: 0x30000 }]);
    await app.configure({ generation: 'pre-2016', policy: 'legacy', wanted: ALL, queueSize: 64 });
    assert.equal((await app.probe()).ok, true);
    const w = await runServed(app, s, { ...W, rw: 'randrw', ios: 16, spanBytes: 8 * 4096 });
    assert.equal(w.completed, 16);
    assert.equal(w.corrupted, 0);
    assert.equal(w.verified, 16);
  });
});
