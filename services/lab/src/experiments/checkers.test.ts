// The checkers on hand-made histories and real image files: each one must
// pass a correct history and fail a broken one (a lost write, a silent
// corruption, an I/O that never ended).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { blockContent } from '@nestlab/formats';
import {
  acceptableFor,
  detectedCorruptions,
  type Evidence,
  lostAckedWrites,
  recoveryMs,
  runCheckers,
  silentCorruptions,
  unendedIos,
} from './checkers.js';
import type { Found, History, HistoryOp, JobSummary, Stamp, TimedFault } from './history.js';
import { readImageBlocks } from './image.js';

const BS = 4096;
const SEED = 11;
const scratch = mkdtempSync(join(tmpdir(), 'nestlab-checkers-'));
after(() => rmSync(scratch, { recursive: true, force: true }));

const st = (block: number, generation: number, seed = SEED): Stamp => ({ seed, block, generation });

/** A real image file: each entry is a block's content (a stamp, zeros or garbage bytes). */
function image(name: string, blocks: Found[]): string {
  const bytes = new Uint8Array(blocks.length * BS);
  blocks.forEach((b, k) => {
    if (b === 'garbage') bytes.fill(0xa5, k * BS, (k + 1) * BS);
    else if (b !== 'zeros') bytes.set(blockContent(b, BS), k * BS);
  });
  const path = join(scratch, `${name}.img`);
  writeFileSync(path, bytes);
  return path;
}
const disk = (path: string, blocks: number) => {
  const found = readImageBlocks(path, BS, blocks);
  return (b: number) => found[b] ?? 'zeros';
};

let clock = 0;
function op(o: Partial<HistoryOp> & Pick<HistoryOp, 'op' | 'block'>): HistoryOp {
  const startMs = o.startMs ?? (clock += 10);
  return { job: 0, i: 0, ok: true, endMs: startMs + 5, ...o, startMs };
}
function history(
  ops: HistoryOp[],
  extra: { jobs?: JobSummary[]; faults?: TimedFault[] } = {},
): History {
  const numbered = ops.map((o, i) => ({ ...o, i: o.i || i }));
  return {
    bs: BS,
    jobs: extra.jobs ?? [
      {
        job: 0,
        seed: SEED,
        ios: numbered.filter((o) => o.op !== 'flush').length,
        deadlineMs: 1000,
        startMs: 0,
        endMs: clock + 100,
        crashed: false,
        submitted: numbered.length,
      },
    ],
    ops: numbered,
    faults: extra.faults ?? [],
  };
}
const write = (block: number, g: number, more: Partial<HistoryOp> = {}) =>
  op({ op: 'write', block, wrote: st(block, g), durable: true, ...more });
const read = (block: number, found: Found, more: Partial<HistoryOp> = {}) =>
  op({ op: 'read', block, read: found, verified: true, ...more });

describe('readImageBlocks', () => {
  it('reads stamps, zeros and garbage back from a real file, and zeros past its end', () => {
    const path = image('mixed', [st(0, 3), 'zeros', 'garbage']);
    assert.deepEqual(readImageBlocks(path, BS, 4), [st(0, 3), 'zeros', 'garbage', 'zeros']);
  });
  it('fails with a typed error when the file is missing', () => {
    assert.throws(() => readImageBlocks(join(scratch, 'none.img'), BS, 1), {
      code: 'IMAGE_UNREADABLE',
    });
  });
});

describe('lostAckedWrites', () => {
  it('is 0 when each durable write, or a later write of its block, is on disk', () => {
    const h = history([write(0, 1), write(0, 2, { durable: false }), write(1, 1)]);
    assert.equal(lostAckedWrites(h, disk(image('ok', [st(0, 2), st(1, 1)]), 2)), 0);
  });
  it('counts a durable write whose block holds older data, zeros or garbage', () => {
    const h = history([write(0, 1), write(0, 2), write(1, 1), write(2, 1)]);
    const ev: Evidence = { lost: [], silent: [], unended: [], unrecovered: [] };
    const n = lostAckedWrites(h, disk(image('lost', [st(0, 1), 'zeros', 'garbage']), 3), ev);
    assert.equal(n, 3);
    assert.deepEqual(
      ev.lost.map((l) => [l.block, l.onDisk]),
      [
        [0, `${SEED}/0/g1`],
        [1, 'zeros'],
        [2, 'garbage'],
      ],
    );
  });
  it('does not count a write that was acknowledged but never made durable', () => {
    const h = history([write(0, 1, { durable: false })]);
    assert.equal(lostAckedWrites(h, disk(image('volatile', ['zeros']), 1)), 0);
  });
  it('accepts a later job’s stamp (even of a job dom0 died under) over an earlier durable write', () => {
    const jobs: JobSummary[] = [
      {
        job: 0,
        seed: SEED,
        ios: 1,
        deadlineMs: 1000,
        startMs: 0,
        endMs: 50,
        crashed: false,
        submitted: 1,
      },
      {
        job: 1,
        seed: SEED + 1,
        ios: 5,
        deadlineMs: 1000,
        startMs: 60,
        endMs: 90,
        crashed: true,
        submitted: 0,
      },
    ];
    const h = history([write(0, 7)], { jobs });
    assert.equal(lostAckedWrites(h, disk(image('later', [st(0, 1, SEED + 1)]), 1)), 0);
    assert.equal(lostAckedWrites(h, disk(image('foreign', [st(0, 9, 999)]), 1)), 1);
  });
});

describe('silentCorruptions and detectedCorruptions', () => {
  it('accept reads of the last acknowledged write, and zeros for a block never written', () => {
    const h = history([
      read(0, 'zeros'),
      write(0, 1),
      read(0, st(0, 1)),
      write(0, 2),
      read(0, st(0, 2)),
    ]);
    assert.equal(silentCorruptions(h), 0);
    assert.equal(detectedCorruptions(h), 0);
  });
  it('count a read of stale data that nobody flagged as silent', () => {
    const h = history([write(0, 1), write(0, 2), read(0, st(0, 1))]);
    const ev: Evidence = { lost: [], silent: [], unended: [], unrecovered: [] };
    assert.equal(silentCorruptions(h, ev), 1);
    assert.deepEqual(ev.silent[0]?.expected, [`${SEED}/0/g2`]);
  });
  it('count garbage and another block’s data as silent, but not when the workload flagged it', () => {
    const h = history([
      write(0, 1),
      read(0, 'garbage', { verified: undefined }),
      read(0, st(3, 1)),
      read(0, 'garbage', { verified: false }),
    ]);
    assert.equal(silentCorruptions(h), 2);
    assert.equal(detectedCorruptions(h), 1);
  });
  it('accept either side of a failed write (the device may or may not have done it)', () => {
    const h = history([
      write(0, 1),
      write(0, 2, { ok: false, code: 'TIMEOUT', durable: undefined }),
      read(0, st(0, 1)),
      read(0, st(0, 2)),
    ]);
    assert.equal(silentCorruptions(h), 0);
  });
  it('accept either side of a write still in flight when the read started', () => {
    const h = history([
      write(0, 1),
      write(0, 2, { startMs: 100, endMs: 300 }),
      read(0, st(0, 1), { startMs: 110, endMs: 200 }),
    ]);
    assert.equal(silentCorruptions(h), 0);
    const after = history([
      write(0, 1),
      write(0, 2, { startMs: 100, endMs: 300 }),
      read(0, st(0, 1), { startMs: 310, endMs: 400 }),
    ]);
    assert.equal(
      silentCorruptions(after),
      1,
      'once the write had completed, the old data is wrong',
    );
  });
  it('after L0 lost its cache, accept writes back to the last durable one, not before it', () => {
    clock = 0;
    const w1 = write(0, 1); // durable: a FLUSH follows
    const f1 = op({ op: 'flush', block: 0 });
    const w2 = write(0, 2, { durable: false });
    const w3 = write(0, 3, { durable: false });
    clock += 50;
    const crash: TimedFault = {
      step: 0,
      what: 'crash l0',
      atMs: clock,
      doneMs: clock + 20,
      volatileLoss: true,
    };
    clock += 40;
    const r1 = read(0, st(0, 1));
    const r2 = read(0, st(0, 2));
    const r0 = read(0, 'zeros');
    const h = history([w1, f1, w2, w3, r1, r2, r0], { faults: [crash] });
    assert.deepEqual(
      acceptableFor(h, h.ops[4]!).map((f) => (typeof f === 'string' ? f : f.generation)),
      [3, 2, 1],
    );
    assert.equal(silentCorruptions(h), 1, 'only zeros (before the durable write) is wrong');
  });
});

describe('unendedIos', () => {
  it('is 0 when every planned I/O has a record that ended by its deadline', () => {
    assert.equal(unendedIos(history([write(0, 1), read(0, st(0, 1))])), 0);
  });
  it('counts planned I/Os without a record and I/Os far past their deadline', () => {
    const h = history([write(0, 1), read(0, st(0, 1), { startMs: 100, endMs: 100 + 2500 })]);
    const withMissing: History = { ...h, jobs: [{ ...h.jobs[0]!, ios: 4 }] };
    assert.equal(unendedIos(withMissing), 3);
  });
  it('does not count the I/Os of a job dom0 died under: they failed', () => {
    const h = history([], {
      jobs: [
        {
          job: 0,
          seed: SEED,
          ios: 10,
          deadlineMs: 1000,
          startMs: 0,
          endMs: 5,
          crashed: true,
          submitted: 0,
        },
      ],
    });
    assert.equal(unendedIos(h), 0);
  });
});

describe('recoveryMs', () => {
  it('is null without a discrete fault', () => {
    assert.equal(recoveryMs(history([write(0, 1)])), null);
  });
  it('is the time from the fault to the first successful I/O started after it', () => {
    const fault: TimedFault = {
      step: 0,
      what: 'crash xen',
      atMs: 1000,
      doneMs: 1200,
      volatileLoss: false,
    };
    const h = history(
      [
        write(0, 1, { startMs: 990, endMs: 1001 }), // in flight at the fault: not a recovery
        write(1, 1, { startMs: 1010, endMs: 1300, ok: false, code: 'TIMEOUT' }),
        write(2, 1, { startMs: 1300, endMs: 1450 }),
      ],
      { faults: [fault] },
    );
    assert.equal(recoveryMs(h), 450);
  });
});

describe('runCheckers', () => {
  it('judges a whole history against a real image in one go', () => {
    const h = history([write(0, 1), write(1, 1), read(1, st(1, 1))]);
    const { verdicts } = runCheckers(h, disk(image('whole', [st(0, 1), st(1, 1)]), 2));
    assert.deepEqual(verdicts, {
      lostAckedWrites: 0,
      silentCorruptions: 0,
      unendedIos: 0,
      detectedCorruptions: 0,
      recoveryMs: null,
    });
  });
});
