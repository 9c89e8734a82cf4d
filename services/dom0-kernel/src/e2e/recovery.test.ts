// Recovery of the real dom0 driver (service module on real NATS; L0's
// register file and Xen as doubles; the test plays the device): a lost MSI
// is found by polling, a device reset mid-queue is followed by reset +
// re-init + resubmit, duplicate completions end nothing twice, Xen away for
// a while is waited out within the deadline, and FLUSH/history records are
// what the workload contract says.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { IoRecord, IoReport, Workload } from '@nestlab/protocol';
import { waitFor } from '@nestlab/testing';
import {
  FeatureSet,
  VIRTIO_BLK_F,
  VIRTIO_BLK_T,
  VIRTIO_F,
  encodeU16,
  encodeUsedElem,
  usedElemAddr,
  usedIdxAddr,
} from '@nestlab/virtio';
import { AppHarness, type Scenario } from '../testing/app-harness.js';
import { shuffledP2m } from '../testing/xen-double.js';

const { VERSION_1, ACCESS_PLATFORM, INDIRECT_DESC, EVENT_IDX } = VIRTIO_F;
const P2M = shuffledP2m(0x20000, 1024, 0x40000);
const W: Workload = {
  rw: 'write',
  bs: 4096,
  iodepth: 4,
  ios: 4,
  seed: 11,
  verify: true,
  deadlineMs: 10_000,
  spanBytes: 8 * 4096,
};

interface Recovery {
  resets: number;
  failedResets: number;
  lostInterruptsRecovered: number;
  lastReset: { reason: string; resubmitted: number } | null;
  resubmitted: number;
  retries: number;
}
interface DriverState {
  recovery: Recovery;
  tracker: { inFlight: number; late: number; duplicate: number };
  ring?: { bogusUsed: number };
  buffersHeld?: number;
}
const driverState = (app: AppHarness) => (app.mod.state?.() as { driver: DriverState }).driver;

interface ServeOpts {
  /** Send the queue interrupt after serving (false: a lost MSI). */
  interrupt?: boolean;
  /** Publish each used element twice and interrupt three times. */
  duplicate?: boolean;
  /** Header types the device saw, in order. */
  types?: number[];
}

/** Plays the device while the job runs: serves what is available, then (maybe) interrupts. */
async function runServed(
  app: AppHarness,
  s: Scenario,
  w: Workload,
  o: ServeOpts = {},
): Promise<IoReport> {
  let done = false;
  const job = app.job(w).finally(() => (done = true));
  await serveUntil(app, s, () => done, o);
  return job;
}

async function serveUntil(
  app: AppHarness,
  s: Scenario,
  stop: () => boolean,
  o: ServeOpts = {},
): Promise<void> {
  const d = s.device;
  while (!stop()) {
    if (d.pending() > 0) {
      const r = await d.serveOne();
      o.types?.push(r.type);
      if (o.duplicate) {
        // The same used element again, in the same turn: one harvest sees both.
        const len = r.type === VIRTIO_BLK_T.IN ? 4096 + 1 : 1;
        d.write(usedElemAddr(d.queue, d.usedIdx), encodeUsedElem({ id: r.head, len }));
        d.usedIdx = (d.usedIdx + 1) & 0xffff;
        d.write(usedIdxAddr(d.queue), encodeU16(d.usedIdx));
      }
      if (o.interrupt !== false) {
        const n = o.duplicate ? 3 : 1;
        for (let i = 0; i < n; i++) d.interrupt(app.h.peer, s.xen.ports.queue);
      }
    } else await new Promise((r) => setTimeout(r, 3));
  }
}

/** What a reset device forgets: its queue indices (the driver sets the ring up from 0 again). */
function deviceForgets(s: Scenario): void {
  s.device.lastAvail = 0;
  s.device.usedIdx = 0;
}

async function modernSwiotlb(app: AppHarness, wanted = FeatureSet.of(VERSION_1)) {
  const offer = FeatureSet.of(VERSION_1, EVENT_IDX, INDIRECT_DESC).with(VIRTIO_BLK_F.FLUSH);
  const s = await app.scenario({ offer }, P2M);
  await app.configure({ generation: 'modern', policy: 'xen-swiotlb', wanted, queueSize: 64 });
  assert.equal((await app.probe()).ok, true);
  return s;
}

describe('driver recovery: hung queue, device reset, duplicates (short hang timeout)', () => {
  let app: AppHarness;
  before(async () => {
    app = await AppHarness.start({ hangMs: 300 });
  });
  after(async () => {
    await app?.close();
  });

  it('a lost MSI: the hung-queue poll harvests the completions, no reset needed', async () => {
    const s = await modernSwiotlb(app);
    const before = driverState(app).recovery;
    const r = await runServed(app, s, W, { interrupt: false });
    assert.deepEqual({ completed: r.completed, failed: r.failed }, { completed: 4, failed: 0 });
    const after = driverState(app).recovery;
    assert.ok(after.lostInterruptsRecovered > before.lostInterruptsRecovered, 'counted');
    assert.equal(after.resets, before.resets, 'polling was enough');
    assert.match(
      await app.h.metrics.render(),
      /nestlab_dom0_lost_interrupts_recovered_total [1-9]/,
    );
    const rd = await runServed(app, s, { ...W, rw: 'read' });
    assert.deepEqual(
      { verified: rd.verified, corrupted: rd.corrupted },
      { verified: 4, corrupted: 0 },
    );
  });

  it('the device reset mid-queue: reset, init, queue set up again, every I/O resubmitted and verified', async () => {
    const s = await modernSwiotlb(app, FeatureSet.of(VERSION_1, EVENT_IDX, INDIRECT_DESC));
    const before = driverState(app).recovery;
    const job = app.job(W);
    await waitFor('four chains', () => (s.device.pending() === 4 ? true : undefined), 3000);
    // What L0 does on a device reset (or comes back with after a restart): status 0, queue gone.
    s.l0.status = 0;
    s.l0.queue.enable = 0;
    await waitFor(
      'reset by the hung-queue watch',
      () => (driverState(app).recovery.resets === before.resets + 1 ? true : undefined),
      5000,
    );
    const rec = driverState(app).recovery;
    assert.deepEqual(rec.lastReset && { ...rec.lastReset, at: undefined }, {
      reason: 'hung-queue',
      resubmitted: 4,
      at: undefined,
    });
    assert.equal(s.l0.queue.enable, 1, 'the queue is live again');
    assert.ok(s.l0.status & 4, 'DRIVER_OK again');
    deviceForgets(s);
    let done = false;
    const finished = job.finally(() => (done = true));
    await serveUntil(app, s, () => done);
    const r = await finished;
    assert.deepEqual({ completed: r.completed, failed: r.failed }, { completed: 4, failed: 0 });
    const rd = await runServed(app, s, { ...W, rw: 'read' });
    assert.deepEqual(
      { verified: rd.verified, corrupted: rd.corrupted },
      { verified: 4, corrupted: 0 },
    );
    assert.equal(driverState(app).tracker.inFlight, 0);
  });

  it('a device found reset before a job (L0 restarted): set up again first, the job runs', async () => {
    const s = await modernSwiotlb(app);
    assert.equal((await runServed(app, s, W)).completed, 4);
    const before = driverState(app).recovery.resets;
    s.l0.status = 0;
    s.l0.queue.enable = 0;
    let done = false;
    const job = app.job({ ...W, rw: 'read' }).finally(() => (done = true));
    // The test's device has no queue_enable: it starts serving once the driver set the queue up.
    await waitFor('reset before the job', () =>
      driverState(app).recovery.resets === before + 1 ? true : undefined,
    );
    deviceForgets(s);
    await serveUntil(app, s, () => done);
    const r = await job;
    assert.deepEqual({ verified: r.verified, failed: r.failed }, { verified: 4, failed: 0 });
    const rec = driverState(app).recovery;
    assert.equal(rec.resets, before + 1);
    assert.equal(rec.lastReset?.reason, 'device-reset-found');
  });

  it('duplicated used entries and interrupts: every I/O ends once, the duplicates are counted', async () => {
    const s = await modernSwiotlb(app);
    const bogus = driverState(app).ring?.bogusUsed ?? 0;
    const r = await runServed(app, s, { ...W, ios: 16, spanBytes: 16 * 4096 }, { duplicate: true });
    assert.deepEqual(
      { completed: r.completed, failed: r.failed, submitted: r.submitted },
      { completed: 16, failed: 0, submitted: 16 },
    );
    const rd = await runServed(
      app,
      s,
      { ...W, rw: 'read', ios: 16, spanBytes: 16 * 4096 },
      {
        duplicate: true,
      },
    );
    assert.deepEqual(
      { verified: rd.verified, corrupted: rd.corrupted },
      { verified: 16, corrupted: 0 },
    );
    const st = driverState(app);
    assert.equal(st.ring!.bogusUsed - bogus, 32, 'each duplicate seen and ignored');
    assert.equal(st.tracker.inFlight, 0);
    assert.equal(st.buffersHeld, 0);
    assert.match(
      await app.h.metrics.render(),
      /nestlab_dom0_device_errors_total\{code="USED_ID_NOT_POSTED"\} \d+/,
    );
  });
});

describe('FLUSH and the workload history (no hang resets: the test plays the device)', () => {
  let app: AppHarness;
  before(async () => {
    app = await AppHarness.start({ hangMs: 60_000 });
  });
  after(async () => {
    await app?.close();
  });

  const FLUSHING = FeatureSet.of(VERSION_1).with(VIRTIO_BLK_F.FLUSH);

  it('fsyncEvery 3: a FLUSH after every 3 completed writes; writes it covered are durable', async () => {
    const s = await modernSwiotlb(app, FLUSHING);
    const types: number[] = [];
    const w: Workload = { ...W, iodepth: 1, ios: 8, fsyncEvery: 3, history: true };
    const r = await runServed(app, s, w, { types });
    assert.deepEqual({ completed: r.completed, failed: r.failed }, { completed: 8, failed: 0 });
    const h = r.history!;
    assert.deepEqual(
      h.map((x) => x.op),
      ['write', 'write', 'write', 'flush', 'write', 'write', 'write', 'flush', 'write', 'write'],
    );
    assert.deepEqual(
      h.map((x) => x.i),
      h.map((_, k) => k),
      'record i is its place in submission order',
    );
    assert.ok(h.every((x) => x.ok && x.endMs >= x.startMs));
    assert.equal(
      types.filter((t) => t === VIRTIO_BLK_T.FLUSH).length,
      2,
      'the device saw 2 FLUSHes',
    );
    const writes = h.filter((x) => x.op === 'write');
    assert.deepEqual(
      writes.map((x) => x.durable),
      [true, true, true, true, true, true, false, false],
    );
    writes.forEach((x, k) =>
      assert.deepEqual(x.wrote, { seed: w.seed, block: k % 8, generation: 1 }),
    );
    // Reads report what they found, as a stamp, and whether the workload accepted it.
    const rd = await runServed(app, s, { ...W, rw: 'read', iodepth: 1, ios: 8, history: true });
    const reads: IoRecord[] = rd.history!;
    reads.forEach((x, k) => {
      assert.equal(x.op, 'read');
      assert.deepEqual(x.read, { seed: w.seed, block: k, generation: 1 });
      assert.equal(x.verified, true);
      assert.equal(x.durable, undefined);
    });
  });

  it('without FLUSH negotiated the device is write-through: no FLUSH sent, every completed write durable', async () => {
    const s = await modernSwiotlb(app);
    const types: number[] = [];
    const r = await runServed(
      app,
      s,
      { ...W, iodepth: 2, fsyncEvery: 1, history: true },
      { types },
    );
    assert.equal(r.completed, 4);
    assert.ok(!types.includes(VIRTIO_BLK_T.FLUSH));
    assert.deepEqual(
      r.history!.map((x) => [x.op, x.durable]),
      [
        ['write', true],
        ['write', true],
        ['write', true],
        ['write', true],
      ],
    );
  });

  it('a failed I/O is in the history with its code; reads of unwritten blocks say zeros', async () => {
    const s = await modernSwiotlb(app);
    const r = await runServed(app, s, {
      ...W,
      rw: 'read',
      iodepth: 1,
      ios: 2,
      spanBytes: 2 * 4096,
      seed: 99,
      history: true,
    });
    // A fresh device: never-written blocks read as zeros, which the model expects.
    assert.deepEqual(
      r.history!.map((x) => [x.op, x.read, x.verified]),
      [
        ['read', 'zeros', true],
        ['read', 'zeros', true],
      ],
    );
    const t = await app.job({ ...W, ios: 1, iodepth: 1, deadlineMs: 200, history: true });
    assert.equal(t.history!.length, 1);
    assert.equal(t.history![0]!.ok, false);
    assert.equal(t.history![0]!.code, 'TIMEOUT');
    assert.ok(t.history![0]!.wrote, 'the stamp it tried to write');
    void s;
  });

  it('a history longer than 20k records is refused before the job starts (typed)', async () => {
    await modernSwiotlb(app);
    await assert.rejects(
      app.job({ ...W, ios: 20_001, history: true }),
      (e: Error & { code?: string }) => {
        assert.equal(e.code, 'HISTORY_TOO_LONG');
        return true;
      },
    );
    await assert.rejects(
      app.job({ ...W, ios: 15_000, fsyncEvery: 2, history: true }),
      /HISTORY_TOO_LONG/,
    );
  });
});

describe('Xen away for a while (its process restarting)', () => {
  let app: AppHarness;
  before(async () => {
    app = await AppHarness.start({ hangMs: 60_000 });
  });
  after(async () => {
    await app?.close();
  });

  const ALL = FeatureSet.of(VERSION_1, ACCESS_PLATFORM, INDIRECT_DESC, EVENT_IDX);

  async function iommuScenario(): Promise<{
    s: Scenario;
    xenUp: () => Promise<void>;
    xenDown: () => Promise<void>;
  }> {
    const xenBus = await app.xenBus();
    const s = await app.scenario({ offer: ALL, requireAccessPlatform: true }, P2M, true, xenBus);
    await app.configure({ generation: 'modern', policy: 'iommu', wanted: ALL, queueSize: 64 });
    assert.equal((await app.probe()).ok, true);
    return {
      s,
      xenDown: () => xenBus.close(),
      xenUp: async () => {
        s.xen.serve(xenBus);
        await xenBus.nc.flush();
      },
    };
  }

  it('IOMMU maps that find nobody are retried with backoff; the I/O completes once Xen is back', async () => {
    const { s, xenDown, xenUp } = await iommuScenario();
    await xenDown();
    const retries = driverState(app).recovery.retries;
    const back = new Promise<void>((r) => setTimeout(r, 400)).then(xenUp);
    const r = await runServed(app, s, { ...W, ios: 2, iodepth: 2, deadlineMs: 8000 });
    await back;
    assert.deepEqual({ completed: r.completed, failed: r.failed }, { completed: 2, failed: 0 });
    assert.ok(driverState(app).recovery.retries > retries, 'retried while Xen was away');
    const rd = await runServed(app, s, { ...W, rw: 'read', ios: 2, iodepth: 2 });
    assert.equal(rd.verified, 2);
  });

  it('Xen away past the deadline: the I/O fails TIMEOUT by its deadline, never hangs', async () => {
    const { s, xenDown, xenUp } = await iommuScenario();
    await xenDown();
    const started = Date.now();
    const r = await runServed(app, s, { ...W, ios: 1, iodepth: 1, deadlineMs: 500 });
    assert.deepEqual(r.errors, { TIMEOUT: 1 });
    assert.ok(Date.now() - started < 5000, 'ended by its deadline');
    await xenUp();
    await waitFor(
      'buffers released',
      () => (driverState(app).buffersHeld === 0 ? true : undefined),
      5000,
    );
  });
});
