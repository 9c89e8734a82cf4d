// A malicious device against the real dom0 driver (the service module on
// real NATS, with L0's register file and Xen's hypercalls as doubles): the
// test plays a device that completes ids never posted, claims more bytes than
// the buffer holds, completes an I/O twice, changes its config mid-I/O,
// storms interrupts and jumps used.idx. Whatever it does, every I/O ends
// exactly once, nothing completes that the device did not serve, and the
// driver never reads memory outside the buffers and ring it mapped.
// Each misbehaviour the driver catches is counted by code in
// nestlab_dom0_device_errors_total.
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import type { IoReport, Workload } from '@nestlab/protocol';
import { waitFor } from '@nestlab/testing';
import {
  FeatureSet,
  VIRTIO_BLK_T,
  VIRTIO_F,
  decodeBlkHeader,
  encodeU16,
  encodeUsedElem,
  popAvail,
  splitBlkRequest,
  unwrap,
  usedElemAddr,
  usedIdxAddr,
} from '@nestlab/virtio';
import { AppHarness, type Scenario } from '../testing/app-harness.js';
import { shuffledP2m } from '../testing/xen-double.js';

const QUEUE = 8;
const W: Workload = {
  rw: 'write',
  bs: 4096,
  iodepth: 1,
  ios: 1,
  seed: 3,
  verify: true,
  deadlineMs: 1500,
  spanBytes: 8 * 4096,
};

interface DriverState {
  tracker: { inFlight: number; late: number; duplicate: number };
  unknownEvents: number;
  buffersHeld: number;
  ring: { bogusUsed: number; inFlight: number };
  recovery: { resets: number };
}

/** Serves the next chain (data and status) but leaves the used ring to the test. */
async function serveQuietly(s: Scenario, status = 0): Promise<{ head: number; written: number }> {
  const d = s.device;
  const chain = unwrap(await popAvail(d.mem, d.queue, d.lastAvail));
  assert.ok(chain, 'a chain to serve');
  d.lastAvail = chain.nextAvailIdx;
  const req = unwrap(splitBlkRequest(chain.buffers));
  const hdr = new Uint8Array(16);
  let at = 0;
  for (const seg of req.header) {
    hdr.set(d.read(seg.addr, seg.len), at);
    at += seg.len;
  }
  const { type, sector } = unwrap(decodeBlkHeader(hdr));
  for (const seg of req.data) {
    if (type === VIRTIO_BLK_T.OUT) d.disk.set(sector, d.read(seg.addr, seg.len));
    else d.write(seg.addr, d.disk.get(sector) ?? new Uint8Array(seg.len));
  }
  d.write(req.status, Uint8Array.of(status));
  return { head: chain.headIndex, written: type === VIRTIO_BLK_T.IN ? req.dataLen + 1 : 1 };
}

/** Publishes used elements as given (any id, any len), then used.idx. */
function publishUsed(s: Scenario, elems: { id: number; len: number }[]): void {
  const d = s.device;
  for (const e of elems) {
    d.write(usedElemAddr(d.queue, d.usedIdx), encodeUsedElem(e));
    d.usedIdx = (d.usedIdx + 1) & 0xffff;
  }
  d.write(usedIdxAddr(d.queue), encodeU16(d.usedIdx));
}

describe('a malicious device against the dom0 driver', () => {
  let app: AppHarness;
  let s: Scenario;
  const state = () => (app.mod.state?.() as { driver: DriverState }).driver;
  const resets = () => state().recovery.resets;
  const queueIrq = () => s.device.interrupt(app.h.peer, s.xen.ports.queue);
  const startJob = (w: Partial<Workload> = {}) => app.job({ ...W, ...w });
  const posted = (n: number) =>
    waitFor(`${n} chain(s) posted`, () => (s.device.pending() >= n ? true : undefined), 3000);

  /** Every RAM read the driver made lies in a frame it mapped (ledger) or its ring. */
  async function readsStayInside(): Promise<void> {
    const { entries } = await app.ledger();
    const frames = new Set(entries.flatMap((e) => e.mfns));
    for (const op of s.l0.ramOps().filter((o) => o.op === 'read')) {
      const first = Number(op.addr >> 12n);
      const last = Number((op.addr + BigInt(op.len) - 1n) >> 12n);
      for (let f = first; f <= last; f++) {
        assert.ok(
          frames.has(f),
          `driver read 0x${op.addr.toString(16)}+${op.len}: frame not its own`,
        );
      }
    }
  }

  /** The device-error counter for `code` (the registry lives across this file's tests). */
  const deviceErrors = (code: string): number =>
    app.h.metrics.value('nestlab_dom0_device_errors_total', { code });

  before(async () => {
    // The test plays the device by hand: no hung-queue reset under it.
    app = await AppHarness.start({ hangMs: 60_000 });
  });
  beforeEach(async () => {
    s = await app.scenario(
      { offer: FeatureSet.of(VIRTIO_F.VERSION_1, VIRTIO_F.INDIRECT_DESC) },
      shuffledP2m(0x20000, 1024, 0x40000),
    );
    const wanted = FeatureSet.of(VIRTIO_F.VERSION_1, VIRTIO_F.INDIRECT_DESC);
    await app.configure({ generation: 'modern', policy: 'xen-swiotlb', wanted, queueSize: QUEUE });
    assert.equal((await app.probe()).ok, true);
  });
  after(async () => {
    await app?.close();
  });

  it('used ids never posted complete nothing; the real completion still does, once', async () => {
    const job = startJob();
    await posted(1);
    publishUsed(s, [
      { id: 5, len: 1 }, // a free descriptor
      { id: QUEUE + 3, len: 1 }, // past the queue
      { id: 0xffff_ffff, len: 1 },
    ]);
    queueIrq();
    await waitFor('bogus ids counted', () => (state().ring.bogusUsed === 3 ? true : undefined));
    assert.equal(state().tracker.inFlight, 1, 'the posted I/O is still in flight');
    const { head, written } = await serveQuietly(s);
    publishUsed(s, [{ id: head, len: written }]);
    queueIrq();
    const r: IoReport = await job;
    assert.deepEqual(
      { completed: r.completed, failed: r.failed, errors: r.errors },
      { completed: 1, failed: 0, errors: {} },
    );
    await readsStayInside();
  });

  it('a used length larger than the buffer: the read completes once and the driver reads only its buffer', async () => {
    await runServed();
    const job = startJob({ rw: 'read' });
    await posted(1);
    const { head } = await serveQuietly(s);
    publishUsed(s, [{ id: head, len: 0xffff_ffff }]);
    queueIrq();
    const r = await job;
    assert.equal(r.completed, 1);
    assert.equal(r.verified, 1, 'the data is what was written, not more');
    await readsStayInside();
  });

  it('a duplicate completion ends the I/O once; the second is counted, not delivered', async () => {
    const job = startJob();
    await posted(1);
    const { head, written } = await serveQuietly(s);
    publishUsed(s, [
      { id: head, len: written },
      { id: head, len: written },
    ]);
    queueIrq();
    const r = await job;
    assert.deepEqual({ completed: r.completed, failed: r.failed }, { completed: 1, failed: 0 });
    await waitFor('duplicate counted', () => (state().ring.bogusUsed === 1 ? true : undefined));
    publishUsed(s, [{ id: head, len: written }]); // and once more, later
    queueIrq();
    await waitFor('late duplicate counted', () =>
      state().ring.bogusUsed === 2 ? true : undefined,
    );
    assert.equal(state().tracker.inFlight, 0);
    assert.equal(state().buffersHeld, 0);
  });

  it('a config change mid-I/O (no NEEDS_RESET) disturbs nothing: the I/O completes once', async () => {
    const job = startJob();
    await posted(1);
    s.l0.regs.set('config_generation', 1);
    s.device.interrupt(app.h.peer, s.xen.ports.config);
    s.device.interrupt(app.h.peer, s.xen.ports.config);
    const { head, written } = await serveQuietly(s);
    publishUsed(s, [{ id: head, len: written }]);
    queueIrq();
    const r = await job;
    assert.deepEqual({ completed: r.completed, failed: r.failed }, { completed: 1, failed: 0 });
  });

  it('an interrupt storm (own and foreign ports) invents no completion and leaves the driver working', async () => {
    const job = startJob();
    await posted(1);
    for (let i = 0; i < 500; i++) {
      queueIrq();
      s.device.interrupt(app.h.peer, 999);
    }
    await waitFor('storm delivered', () => (state().unknownEvents >= 500 ? true : undefined), 5000);
    assert.equal(state().tracker.inFlight, 1, 'nothing completed that was not served');
    const { head, written } = await serveQuietly(s);
    publishUsed(s, [{ id: head, len: written }]);
    queueIrq();
    const r = await job;
    assert.deepEqual({ completed: r.completed, failed: r.failed }, { completed: 1, failed: 0 });
    const reads = s.l0.ramOps().filter((o) => o.op === 'read').length;
    assert.ok(reads <= 2 * 501 + 16, `${reads} RAM reads for 501 queue interrupts`);
  });

  it('used.idx jumping past the queue size: the I/O ends once, with an error, by its deadline', async () => {
    const resetsBefore = resets();
    const job = startJob();
    await posted(1);
    s.device.write(usedIdxAddr(s.device.queue), encodeU16(QUEUE + 5));
    queueIrq();
    const r = await job;
    assert.equal(r.completed, 0);
    assert.equal(r.failed, 1);
    assert.equal(state().tracker.inFlight, 0);
    // The broken ring is followed by a reset; let it finish before the next scenario.
    await waitFor('device reset', () => (resets() === resetsBefore + 1 ? true : undefined));
  });

  it('a status byte that is not OK, IOERR or UNSUPP fails the I/O with BLK_BAD_STATUS', async () => {
    const job = startJob();
    await posted(1);
    const { head, written } = await serveQuietly(s, 0x7f);
    publishUsed(s, [{ id: head, len: written }]);
    queueIrq();
    assert.deepEqual((await job).errors, { BLK_BAD_STATUS: 1 });
  });

  it('a used id never posted is rejected with a typed, counted error', async () => {
    const before = deviceErrors('USED_ID_NOT_POSTED');
    const job = startJob();
    await posted(1);
    publishUsed(s, [{ id: QUEUE + 3, len: 1 }]);
    queueIrq();
    await waitFor('counted', () => (state().ring.bogusUsed === 1 ? true : undefined));
    const { head, written } = await serveQuietly(s);
    publishUsed(s, [{ id: head, len: written }]);
    queueIrq();
    const r = await job;
    assert.deepEqual({ completed: r.completed, failed: r.failed }, { completed: 1, failed: 0 });
    assert.equal(deviceErrors('USED_ID_NOT_POSTED'), before + 1);
  });

  it('a used length beyond the writable bytes is rejected with a typed, counted error', async () => {
    await runServed();
    const before = deviceErrors('USED_LEN_TOO_LONG');
    const job = startJob({ rw: 'read' });
    await posted(1);
    const { head } = await serveQuietly(s);
    publishUsed(s, [{ id: head, len: 0xffff_ffff }]);
    queueIrq();
    const r = await job;
    // The lie is counted; the read still completes per its status byte, with its own data.
    assert.deepEqual(
      { completed: r.completed, verified: r.verified },
      { completed: 1, verified: 1 },
    );
    assert.equal(deviceErrors('USED_LEN_TOO_LONG'), before + 1);
  });

  it('used.idx jumping past the queue size fails in-flight I/O at once, typed, and the device is reset', async () => {
    const before = deviceErrors('DEVICE_BROKEN');
    const resets = () =>
      (app.mod.state?.() as { driver: { recovery: { resets: number } } }).driver.recovery.resets;
    const resetsBefore = resets();
    const started = Date.now();
    const job = startJob({ deadlineMs: 4000 });
    await posted(1);
    s.device.write(usedIdxAddr(s.device.queue), encodeU16(QUEUE + 5));
    queueIrq();
    const r = await job;
    assert.ok(Date.now() - started < 2000, 'failed at once, not at the deadline');
    assert.deepEqual(Object.keys(r.errors), ['DEVICE_BROKEN']);
    assert.equal(deviceErrors('DEVICE_BROKEN'), before + 1);
    // Then the recovery path resets the device, so later I/O works again.
    await waitFor('device reset', () => (resets() === resetsBefore + 1 ? true : undefined), 5000);
    s.device.lastAvail = 0;
    s.device.usedIdx = 0;
    const next = startJob();
    await posted(1);
    const { head, written } = await serveQuietly(s);
    publishUsed(s, [{ id: head, len: written }]);
    queueIrq();
    assert.deepEqual((await next).completed, 1);
    assert.equal(state().tracker.inFlight, 0);
  });

  /** A correct device for one write, so a read has data to verify. */
  async function runServed(): Promise<void> {
    const job = startJob();
    await posted(1);
    const { head, written } = await serveQuietly(s);
    publishUsed(s, [{ id: head, len: written }]);
    queueIrq();
    assert.equal((await job).completed, 1);
  }
});
