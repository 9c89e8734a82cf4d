import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Workload } from '@nestlab/protocol';
import type { BlkIo } from '../block/blk-request.js';
import type { IoResult } from '../block/block-device.js';
import { plan, runJob, type IoTarget } from './engine.js';
import { BlockModel } from './verify.js';

const base: Workload = {
  rw: 'randrw',
  bs: 4096,
  iodepth: 4,
  ios: 200,
  seed: 7,
  verify: true,
  deadlineMs: 1000,
  spanBytes: 64 * 4096,
};

/** An in-memory disk for the engine's own logic; the real device path is tested elsewhere. */
class MemDisk implements IoTarget {
  readonly blocks = new Map<bigint, Uint8Array>();
  inFlight = 0;
  maxInFlight = 0;
  constructor(private readonly behave: (io: BlkIo) => 'ok' | 'corrupt' | 'hang' = () => 'ok') {}
  async submit(io: BlkIo, deadlineMs: number): Promise<IoResult> {
    this.inFlight++;
    this.maxInFlight = Math.max(this.maxInFlight, this.inFlight);
    try {
      const how = this.behave(io);
      if (how === 'hang') {
        await new Promise((r) => setTimeout(r, deadlineMs));
        return {
          id: io.id,
          ok: false,
          code: 'TIMEOUT',
          latencyUs: deadlineMs * 1000,
          traceId: 't',
        };
      }
      await new Promise((r) => setTimeout(r, 1));
      if (io.op === 'write') {
        this.blocks.set(io.sector, io.data!.slice());
        return { id: io.id, ok: true, latencyUs: 10, traceId: io.id };
      }
      const data = this.blocks.get(io.sector)?.slice() ?? new Uint8Array(io.len);
      if (how === 'corrupt') data[100]! ^= 0xff;
      return { id: io.id, ok: true, data, latencyUs: 20, traceId: io.id };
    } finally {
      this.inFlight--;
    }
  }
}

describe('workload engine', () => {
  it('plans the same I/Os for the same seed and different ones for another', () => {
    const a = [...plan(base)];
    assert.deepEqual([...plan(base)], a);
    assert.notDeepEqual([...plan({ ...base, seed: 8 })], a);
    const reads = a.filter((p) => p.op === 'read').length;
    assert.ok(reads > 70 && reads < 130, `about half reads: ${reads}`);
    const written = new Set<number>();
    let readsOfWritten = 0;
    for (const p of a) {
      if (p.op === 'write') written.add(p.block);
      else if (written.has(p.block)) readsOfWritten++;
      else
        assert.equal(written.size, 0, 'randrw reads only target written blocks once there are any');
    }
    assert.ok(readsOfWritten > 0);
    assert.deepEqual(
      [...plan({ ...base, rw: 'write', ios: 5, spanBytes: 3 * 4096 })].map((p) => p.block),
      [0, 1, 2, 0, 1],
    );
  });

  it('keeps iodepth in flight, verifies reads and reports every I/O', async () => {
    const disk = new MemDisk();
    const r = await runJob(base, disk, new BlockModel(base.bs), 'j1');
    assert.equal(disk.maxInFlight, 4);
    assert.equal(r.submitted, 200);
    assert.equal(r.completed, 200);
    assert.equal(r.failed, 0);
    assert.equal(r.corrupted, 0);
    assert.equal(r.verified, 200);
    assert.equal(r.traceIds.length, 64);
    assert.ok(r.latencyUs.p99 >= r.latencyUs.p50 && r.latencyUs.p50 > 0);
  });

  it('counts corrupted reads', async () => {
    const disk = new MemDisk((io) => (io.op === 'read' && io.sector === 0n ? 'corrupt' : 'ok'));
    const w: Workload = { ...base, rw: 'write', ios: 4, spanBytes: 4 * 4096 };
    const model = new BlockModel(4096);
    await runJob(w, disk, model, 'w');
    const r = await runJob({ ...w, rw: 'read' }, disk, model, 'r');
    assert.equal(r.completed, 4);
    assert.equal(r.corrupted, 1);
    assert.equal(r.verified, 3);
  });

  it('ends within (ios/iodepth + 1) deadlines when the device never answers', async () => {
    const w: Workload = { ...base, ios: 12, iodepth: 4, deadlineMs: 50 };
    const started = Date.now();
    const r = await runJob(w, new MemDisk(() => 'hang'), new BlockModel(4096), 'h');
    assert.ok(Date.now() - started <= (12 / 4 + 1) * 50 + 100, `took ${Date.now() - started} ms`);
    assert.equal(r.failed, 12);
    assert.equal(r.errors['TIMEOUT'], 12);
    assert.equal(r.completed, 0);
  });
});
