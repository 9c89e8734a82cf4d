import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Workload } from '@nestlab/protocol';
import type { BlkIo } from '../block/blk-request.js';
import type { IoResult } from '../block/block-device.js';
import { BlockModel, historyLength, plan, runJob, sectorOf } from './engine.js';
import type { IoTarget } from './io-target.js';
import { blockContent } from '@nestlab/formats';

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

  it('a FLUSH that fails leaves its writes not durable; the next FLUSH covers them', async () => {
    let flushes = 0;
    const disk: IoTarget = {
      canFlush: true,
      async submit(io) {
        await new Promise((r) => setTimeout(r, 1));
        if (io.op === 'flush') {
          const ok = flushes++ !== 0; // the first FLUSH fails
          return ok
            ? { id: io.id, ok, latencyUs: 5, traceId: io.id }
            : { id: io.id, ok, code: 'BLK_IOERR', latencyUs: 5, traceId: io.id };
        }
        return { id: io.id, ok: true, latencyUs: 5, traceId: io.id };
      },
    };
    const w: Workload = {
      ...base,
      rw: 'write',
      iodepth: 1,
      ios: 5,
      fsyncEvery: 2,
      history: true,
      spanBytes: 8 * 4096,
    };
    const r = await runJob(w, disk, new BlockModel(4096), 'f');
    assert.deepEqual(
      r.history!.map((x) => [x.op, x.ok, x.code ?? null, x.durable ?? null]),
      [
        ['write', true, null, true],
        ['write', true, null, true],
        ['flush', false, 'BLK_IOERR', null],
        ['write', true, null, true],
        ['write', true, null, true],
        ['flush', true, null, null],
        ['write', true, null, false],
      ],
    );
    assert.deepEqual(
      { submitted: r.submitted, completed: r.completed },
      { submitted: 5, completed: 5 },
    );
  });

  it('I/Os of one block reach the device one at a time, in the order the history numbers them', async () => {
    // Device-side order per block; a later I/O once overtook an earlier one waiting for the block.
    const order = new Map<bigint, string[]>();
    const active = new Set<bigint>();
    let overlaps = 0;
    const disk: IoTarget = {
      canFlush: true,
      async submit(io) {
        if (io.op !== 'flush') {
          if (active.has(io.sector)) overlaps++;
          active.add(io.sector);
          order.set(io.sector, [...(order.get(io.sector) ?? []), io.id]);
        }
        await new Promise((r) => setTimeout(r, (io.id.length * 7 + Number(io.sector)) % 9));
        active.delete(io.sector);
        const data = io.op === 'read' ? new Uint8Array(io.len) : undefined;
        return { id: io.id, ok: true, latencyUs: 5, traceId: io.id, ...(data ? { data } : {}) };
      },
    };
    const w: Workload = {
      ...base,
      ios: 300,
      iodepth: 6,
      verify: false,
      spanBytes: 6 * 4096,
      fsyncEvery: 4,
      history: true,
    };
    const r = await runJob(w, disk, new BlockModel(4096), 'o');
    assert.equal(overlaps, 0);
    // The planned I/O ids in history order, per block, are the order the device saw them in.
    const seq = (x: { op: string }) => x.op !== 'flush';
    const planned = r.history!.filter(seq);
    const byBlock = new Map<bigint, string[]>();
    planned.forEach((x, k) => {
      const sector = BigInt(x.block * 8);
      byBlock.set(sector, [...(byBlock.get(sector) ?? []), `o-${k}`]);
    });
    for (const [sector, ids] of byBlock)
      assert.deepEqual(order.get(sector), ids, `block ${sector / 8n}`);
  });

  it('a reset between the writes and their FLUSH: the lost writes are written again, superseded ones are not', async () => {
    // A device with a volatile cache; the first FLUSH finds it reset (cache lost, new epoch)
    // and completes only once every planned write did, in the new epoch.
    const backing = new Map<bigint, Uint8Array>();
    const cache = new Map<bigint, Uint8Array>();
    let epoch = 0;
    let writesDone = 0;
    let flushes = 0;
    const seen: string[] = [];
    const allWritten = async () => {
      while (writesDone < 6) await new Promise((r) => setTimeout(r, 1));
    };
    const disk: IoTarget = {
      canFlush: true,
      epoch: () => epoch,
      async submit(io) {
        seen.push(io.op === 'flush' ? 'F' : `${io.op[0]}${io.sector / 8n}`);
        if (io.op === 'flush') {
          if (flushes++ === 0) {
            cache.clear();
            epoch++;
            await allWritten();
          }
          for (const [k, v] of cache) backing.set(k, v);
          cache.clear();
          return { id: io.id, ok: true, latencyUs: 5, traceId: io.id, epoch };
        }
        await new Promise((r) => setTimeout(r, 1));
        cache.set(io.sector, io.data!.slice());
        if (!io.id.includes('-r')) writesDone++;
        return { id: io.id, ok: true, latencyUs: 5, traceId: io.id, epoch };
      },
    };
    // Blocks 0..3 once, then 0 and 1 again (generation 2) while the FLUSH is outstanding.
    const w: Workload = {
      ...base,
      rw: 'write',
      iodepth: 1,
      ios: 6,
      fsyncEvery: 4,
      history: true,
      spanBytes: 4 * 4096,
    };
    const rewritten: number[] = [];
    const r = await runJob(w, disk, new BlockModel(4096), 'c', {
      rewrite: (b) => rewritten.push(b),
    });
    const h = r.history!;
    assert.deepEqual(
      h.map((x) => [x.op, x.block, x.wrote?.generation ?? null, x.ok, x.durable ?? null]),
      [
        ['write', 0, 1, true, false], // superseded by generation 2: not written again
        ['write', 1, 1, true, false],
        ['write', 2, 1, true, true], // durable through its rewrite
        ['write', 3, 1, true, true],
        ['flush', 0, null, true, null], // completed in the new epoch: covers none of the above
        ['write', 0, 2, true, true],
        ['write', 1, 2, true, true],
        ['write', 2, 1, true, true], // the rewrites, same stamps
        ['write', 3, 1, true, true],
        ['flush', 0, null, true, null],
      ],
    );
    assert.deepEqual(rewritten, [2, 3]);
    assert.deepEqual(seen, ['w0', 'w1', 'w2', 'w3', 'F', 'w0', 'w1', 'w2', 'w3', 'F']);
    // Every durable write's stamp is what the backing store holds for its block.
    for (const x of h.filter((y) => y.durable === true)) {
      const got = backing.get(BigInt(x.block * 8));
      assert.ok(
        got && Buffer.from(got).equals(Buffer.from(blockContent(x.wrote!, 4096))),
        `i ${x.i}`,
      );
    }
    assert.equal(r.completed, 6, 'rewrites ride beside the planned I/Os');
  });

  for (const newerOk of [true, false]) {
    it(`a lost write whose block has a newer write in flight waits for it: ${newerOk ? 'superseded when it completes' : 'written again when it fails'}`, async () => {
      // One block, two writes; the first FLUSH finds the device reset while the second write
      // (generation 2) is still at the device.
      const backing = new Map<bigint, Uint8Array>();
      const cache = new Map<bigint, Uint8Array>();
      let epoch = 0;
      let flushes = 0;
      let openGate!: () => void;
      const gate = new Promise<void>((r) => (openGate = r));
      const disk: IoTarget = {
        canFlush: true,
        epoch: () => epoch,
        async submit(io) {
          const ok = { id: io.id, ok: true, latencyUs: 5, traceId: io.id };
          if (io.op === 'flush') {
            if (flushes++ === 0) {
              cache.clear();
              epoch++;
              setTimeout(openGate, 20);
            }
            for (const [k, v] of cache) backing.set(k, v);
            cache.clear();
            return { ...ok, epoch };
          }
          if (io.id === 'n-1') {
            await gate;
            if (!newerOk)
              return { id: io.id, ok: false, code: 'BLK_IOERR', latencyUs: 5, traceId: io.id };
          }
          cache.set(io.sector, io.data!.slice());
          return { ...ok, epoch };
        },
      };
      const w: Workload = {
        ...base,
        rw: 'write',
        iodepth: 2,
        ios: 2,
        fsyncEvery: 1,
        history: true,
        spanBytes: 4096,
      };
      const rewritten: number[] = [];
      const r = await runJob(w, disk, new BlockModel(4096), 'n', {
        rewrite: (b) => rewritten.push(b),
      });
      const rows = r.history!.map((x) => [
        x.op,
        x.wrote?.generation ?? null,
        x.ok,
        x.durable ?? null,
      ]);
      if (newerOk) {
        assert.deepEqual(rows, [
          ['write', 1, true, false], // lost, and superseded: not written again
          ['write', 2, true, true],
          ['flush', null, true, null],
          ['flush', null, true, null],
        ]);
        assert.deepEqual(rewritten, []);
      } else {
        assert.deepEqual(rows, [
          ['write', 1, true, true], // durable through its rewrite
          ['write', 2, false, null],
          ['flush', null, true, null],
          ['write', 1, true, true], // after the failed newer write, never beside it
          ['flush', null, true, null],
        ]);
        assert.deepEqual(rewritten, [0]);
      }
      const newest = r.history!.filter((x) => x.durable === true).at(-1)!;
      assert.ok(
        Buffer.from(backing.get(0n)!).equals(Buffer.from(blockContent(newest.wrote!, 4096))),
      );
    });
  }

  it('refuses a history beyond 20k records before submitting anything', async () => {
    const disk = new MemDisk();
    await assert.rejects(
      runJob({ ...base, ios: 20_001, history: true }, disk, new BlockModel(4096), 'x'),
      { code: 'HISTORY_TOO_LONG' },
    );
    assert.equal(disk.maxInFlight, 0);
    assert.equal(historyLength({ ...base, ios: 10, fsyncEvery: 3 }), 13);
  });
});

describe('sectorOf', () => {
  it('is the block times its size in sectors, exact past 2^53 bytes too', () => {
    assert.equal(sectorOf(0, 4096), 0n);
    assert.equal(sectorOf(3, 4096), 24n);
    assert.equal(sectorOf(5, 512), 5n);
    const big = 2 ** 45 + 3; // × 4096 bytes is past Number.MAX_SAFE_INTEGER
    assert.equal(sectorOf(big, 4096), (BigInt(big) * 4096n) / 512n);
  });
});
