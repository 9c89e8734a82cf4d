// Property tests of the device-side walker (popAvail / walkChain) against
// generated hostile rings: random descriptor tables, indices, flags, lengths,
// indirect tables, avail idx jumps, holes in memory and addresses at the 2^64
// wrap. Each case is compared with a reference model of the rules documented
// in chain-walker.ts (testing/walker-reference.ts, with its own decoding) and
// checked for what must hold whatever the reference says: no throw, no hang,
// bounded reads, only guest-kind error codes. Well-formed chains come back
// exactly as written; hostile ones are well-formed chains with targeted edits
// (loops, indexes past the end, flipped WRITE, nested INDIRECT, wraps) or
// random tables.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { VIRTIO_ERROR_CODE_KIND, VRING_DESC_F, popAvail } from './index.js';
import { RingImage, SparseTestMemory } from './testing/index.js';
import type { PoppedChain, RingMemory, SplitQueue, VirtioResult, WalkOptions } from './index.js';
import type { RawDesc } from './testing/index.js';
import { referencePop, type PoppedChainShape, type RefResult } from './testing/walker-reference.js';

const { NEXT, WRITE, INDIRECT } = VRING_DESC_F;
const TWO64 = 1n << 64n;
const DESC = 0x10000n;
const AVAIL = 0x12000n;
const USED = 0x14000n;
/** Two indirect-table pages; the page after each is a hole. */
const TABLES = [0x80000n, 0x82000n] as const;
const HOLE = 0x90_0000n;
/** Indirect tables hold up to this many entries; lengths around it are boundary cases. */
const TABLE_ENTRIES = [1, 2, 3, 15] as const;
/** A walk that takes longer than this is a hang. */
const HANG_MS = 2000;

// CI runs this suite at 500 cases per property (well under a second each);
// the fuzz runner sets its own count through fast-check's global settings.
if (process.env['NESTLAB_FUZZ_RUNS'] === undefined) {
  fc.configureGlobal({ ...fc.readConfigureGlobal(), numRuns: 500, includeErrorInReport: true });
}

// ---- generators ----------------------------------------------------------

const addrArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(0x40000n, 0x40200n, 0x41000n, 0x7fff_f000n) },
  { weight: 2, arbitrary: fc.constantFrom(...TABLES, TABLES[0] + 0x10n, TABLES[1] + 0xff0n) },
  { weight: 1, arbitrary: fc.constantFrom(DESC, AVAIL, USED, HOLE) },
  { weight: 1, arbitrary: fc.constantFrom(TWO64 - 1n, TWO64 - 16n, TWO64 - 0x1000n) },
  { weight: 2, arbitrary: fc.bigInt({ min: 0n, max: TWO64 - 1n }) },
);
const lenArb = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom(0, 1, 16, 32, 48, 64, 256, 512, 4096, 8192) },
  { weight: 2, arbitrary: fc.integer({ min: 1, max: 24 }).map((n) => n * 16) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff_ffff }) },
);
const flagsArb = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(0, NEXT, WRITE, NEXT | WRITE, INDIRECT) },
  { weight: 1, arbitrary: fc.constantFrom(INDIRECT | NEXT, INDIRECT | WRITE) },
  { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
);
/** A descriptor pointing at one of the indirect tables, with a plausible length. */
const indirectDescArb = fc.record({
  addr: fc.constantFrom(...TABLES),
  len: fc.oneof(
    // Around the entry limits the walker is given (maxIndirectEntries below).
    fc.constantFrom(1, 2, 3, 5, 16, 17).map((n) => n * 16),
    fc.integer({ min: 1, max: 17 }).map((n) => n * 16),
  ),
  flags: fc.constantFrom(INDIRECT, INDIRECT | WRITE),
  next: fc.constant(0),
});
const descArb = (size: number): fc.Arbitrary<Required<RawDesc>> =>
  fc.oneof({ weight: 1, arbitrary: indirectDescArb }, { weight: 6, arbitrary: plainDescArb(size) });
const plainDescArb = (size: number): fc.Arbitrary<Required<RawDesc>> =>
  fc.record({
    addr: addrArb,
    len: lenArb,
    flags: flagsArb,
    next: fc.oneof(
      { weight: 5, arbitrary: fc.integer({ min: 0, max: size - 1 }) },
      // Just past the table: the queue size, or an indirect table's entry count.
      { weight: 1, arbitrary: fc.constantFrom(size, 16, ...TABLE_ENTRIES) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
    ),
  });
/** A well-formed buffer: device-readable ones first (the caller sorts), no wrap. */
const bufferArb = fc.record({
  addr: fc.bigInt({ min: 0n, max: TWO64 - 0x10000n }),
  len: fc.integer({ min: 0, max: 0xffff }),
  writable: fc.boolean(),
});

/** An indirect table whose `next` fields mostly stay inside it (so chains and loops form there). */
const tableArb = fc.oneof(
  { weight: 1, arbitrary: fc.constant([]) },
  {
    weight: 8,
    arbitrary: fc
      .integer({ min: 1, max: 16 })
      .chain((n) => fc.array(plainDescArb(n), { minLength: n, maxLength: n })),
  },
);

const MUTATIONS = [
  'loop', // NEXT back to this or an earlier descriptor of the chain
  'past-end', // NEXT to the first index past the table
  'flip-write',
  'indirect', // INDIRECT on a chain descriptor (nested inside a table)
  'wrap', // addr + len past 2^64
  'end', // drop NEXT: a shorter chain
  'ptr-len', // the pointer to the table: a bad or too-long length
  'ptr-next', // the pointer to the table also has NEXT
] as const;
type Mutation = { kind: (typeof MUTATIONS)[number]; pos: number; to: number };
const mutationArb: fc.Arbitrary<Mutation> = fc.record({
  kind: fc.constantFrom(...MUTATIONS),
  pos: fc.nat(15),
  to: fc.nat(15),
});

interface Case {
  size: number;
  descs: Required<RawDesc>[];
  tables: Required<RawDesc>[][];
  last: number;
  pending: number;
  availRing: number[];
  opts: WalkOptions;
  hole: 'none' | 'desc' | 'avail' | 'table';
  /** A chain written over the random table at the slot the device will take. */
  valid: {
    direct: number[];
    bufs: { addr: bigint; len: number; writable: boolean }[];
    /** Put the buffers in an indirect table (TABLES[1]) named by one descriptor. */
    viaTable: boolean;
    /** Hostile edits of the chain's own descriptors; none for a well-formed chain. */
    mutations: Mutation[];
  } | null;
}

const caseArb: fc.Arbitrary<Case> = fc.integer({ min: 0, max: 5 }).chain((log2) => {
  const size = 1 << log2;
  const idx = fc.integer({ min: 0, max: size - 1 });
  return fc.record({
    size: fc.constant(size),
    descs: fc.array(descArb(size), { minLength: size, maxLength: size }),
    tables: fc.tuple(tableArb, tableArb),
    last: fc.oneof(fc.constantFrom(0, 0xffff), fc.integer({ min: 0, max: 0xffff })),
    pending: fc.oneof(
      { weight: 10, arbitrary: fc.constantFrom(0, 1, 2, size, size + 1) },
      { weight: 1, arbitrary: fc.constantFrom(0x8000, 0xffff) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
    ),
    availRing: fc.array(
      fc.oneof(
        { weight: 5, arbitrary: idx },
        { weight: 1, arbitrary: fc.integer({ min: 0, max: 0xffff }) },
      ),
      { minLength: size, maxLength: size },
    ),
    opts: fc.record(
      {
        indirect: fc.boolean(),
        maxIndirectEntries: fc.constantFrom(1, 2, 4, 16, 1024),
      },
      { requiredKeys: [] },
    ),
    hole: fc.oneof(
      { weight: 12, arbitrary: fc.constant('none') },
      { weight: 1, arbitrary: fc.constantFrom('desc', 'avail', 'table') },
    ),
    valid: fc.option(
      fc.record({
        direct: fc.shuffledSubarray([...Array(size).keys()], {
          minLength: 1,
          maxLength: Math.min(size, 6),
        }),
        bufs: fc.array(bufferArb, { minLength: 1, maxLength: 6 }),
        viaTable: fc.boolean(),
        mutations: fc.array(mutationArb, { maxLength: 2 }),
      }),
      { freq: 6 },
    ),
  }) as fc.Arbitrary<Case>;
});

// ---- the ring image ------------------------------------------------------

/** Applies one hostile edit to a chain about to be written (limit: its table's size). */
function mutate(
  m: Mutation,
  chain: Required<RawDesc>[],
  links: number[],
  pointer: Required<RawDesc>,
  limit: number,
): void {
  const pos = m.pos % chain.length;
  const d = chain[pos];
  if (d === undefined) return;
  switch (m.kind) {
    case 'loop':
      d.flags |= NEXT;
      d.next = links[m.to % (pos + 1)] ?? 0;
      return;
    case 'past-end':
      d.flags |= NEXT;
      d.next = limit;
      return;
    case 'flip-write':
      d.flags ^= WRITE;
      return;
    case 'indirect':
      d.flags |= INDIRECT;
      d.addr = TABLES[0];
      d.len = 16 * (1 + m.to);
      return;
    case 'wrap':
      d.len = Math.max(d.len, 2);
      d.addr = TWO64 - BigInt(d.len) + 1n;
      return;
    case 'end':
      d.flags &= ~NEXT;
      return;
    case 'ptr-len':
      pointer.len = [0, 8, pointer.len + 8, pointer.len + 16, 16 * (m.to + 1)][m.pos % 5] ?? 0;
      return;
    case 'ptr-next':
      pointer.flags |= NEXT;
      return;
  }
}

function build(c: Case): { mem: SparseTestMemory; q: SplitQueue; expect: PoppedChainShape | null } {
  const mem = new SparseTestMemory();
  const ring = new RingImage(mem, { size: c.size, desc: DESC, avail: AVAIL, used: USED });
  c.descs.forEach((d, i) => ring.writeDesc(i, d));
  c.tables.forEach((t, i) => {
    mem.map(TABLES[i] ?? 0n, 0x1000);
    ring.writeTable(TABLES[i] ?? 0n, t);
  });
  c.availRing.forEach((head, i) => ring.setAvailRingEntry(i, head));
  let expect: PoppedChainShape | null = null;
  if (c.valid) {
    const v = c.valid;
    // Readable buffers first, as a driver must; linked with NEXT in order.
    const bufs = [...v.bufs]
      .sort((a, b) => Number(a.writable) - Number(b.writable))
      .slice(0, v.viaTable ? 16 : v.direct.length);
    const links = v.viaTable ? bufs.map((_, i) => i) : v.direct.slice(0, bufs.length);
    const head = v.direct[0] ?? 0;
    const chain: Required<RawDesc>[] = bufs.map((b, i) => ({
      addr: b.addr,
      len: b.len,
      flags: (b.writable ? WRITE : 0) | (i + 1 < bufs.length ? NEXT : 0),
      next: links[i + 1] ?? 0,
    }));
    const pointer = { addr: TABLES[1], len: 16 * bufs.length, flags: INDIRECT, next: 0 };
    for (const m of v.mutations)
      mutate(m, chain, links, pointer, v.viaTable ? bufs.length : c.size);
    if (v.viaTable) {
      ring.writeTable(TABLES[1], chain);
      ring.writeDesc(head, pointer);
    } else chain.forEach((d, i) => ring.writeDesc(links[i] ?? 0, d));
    ring.setAvailRingEntry(c.last, head);
    expect =
      v.mutations.length > 0
        ? null
        : {
            headIndex: head,
            buffers: bufs.map((b) => [b.addr, b.len, b.writable]),
            descCount: bufs.length + (v.viaTable ? 1 : 0),
            indirect: v.viaTable,
          };
  }
  // A published chain must be visible: at least one entry pending.
  const pending = c.valid && c.pending === 0 ? 1 : c.pending;
  ring.setAvailIdx((c.last + pending) & 0xffff);
  if (c.hole === 'desc') mem.unmap(DESC, 1);
  if (c.hole === 'avail') mem.unmap(AVAIL, 1);
  if (c.hole === 'table') mem.unmap(TABLES[0], 1);
  return { mem, q: ring.queue, expect };
}

// ---- checks ---------------------------------------------------------------

function shape(r: VirtioResult<PoppedChain | null>): RefResult {
  if (!r.ok) return { ok: false, code: r.error.code };
  if (r.value === null) return { ok: true, value: null };
  const v = r.value;
  return {
    ok: true,
    value: {
      headIndex: v.headIndex,
      buffers: v.buffers.map((b) => [b.addr, b.len, b.writable]),
      descCount: v.descCount,
      indirect: v.indirect,
    },
  };
}

async function withDeadline<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish in ${HANG_MS} ms`)), HANG_MS);
  });
  try {
    return await Promise.race([p, hang]);
  } finally {
    clearTimeout(timer);
  }
}

async function popChecked(c: Case) {
  const { mem, q, expect } = build(c);
  const expected = { reads: 0 };
  const want = referencePop(mem, q, c.last, c.opts, expected);
  const before = mem.reads.length;
  const got = await withDeadline(popAvail(mem, q, c.last, c.opts), 'popAvail');
  // Exactly the reads the rules need: avail.idx, one entry, descriptors up to the TTL, one table.
  assert.equal(mem.reads.length - before, expected.reads, 'memory reads');
  assert.ok(expected.reads <= q.size + 3);
  if (!got.ok) {
    assert.equal(VIRTIO_ERROR_CODE_KIND[got.error.code], 'guest', got.error.message);
  } else if (got.value) {
    const v = got.value;
    const firstWritable = v.buffers.findIndex((b) => b.writable);
    if (firstWritable >= 0) assert.ok(v.buffers.slice(firstWritable).every((b) => b.writable));
    for (const b of v.buffers) assert.ok(b.addr + BigInt(b.len) <= TWO64, 'a buffer wraps 2^64');
    assert.equal(v.nextAvailIdx, (c.last + 1) & 0xffff);
  }
  return { got: shape(got), want, expect };
}

/**
 * The same memory with readNow: the reads `now` marks are answered at once
 * (the bytes, or the missing page thrown), the others by read's promise.
 */
function answeringAtOnce(mem: SparseTestMemory, now: readonly boolean[]): RingMemory {
  let i = 0;
  return {
    read: (addr, len) => mem.read(addr, len),
    readNow: (addr, len) => {
      if (!now[i++ % now.length]) return mem.read(addr, len);
      void mem.read(addr, len).catch(() => undefined); // counted as a read, like the promised ones
      return mem.readSync(addr, len);
    },
  };
}

describe('chain walker properties (fast-check)', () => {
  it('walks the same whether each read is answered at once, later, or a mix of both', async () => {
    await fc.assert(
      fc.asyncProperty(
        caseArb,
        fc.array(fc.boolean(), { minLength: 1, maxLength: 8 }),
        async (c, now) => {
          const { got, want } = await popChecked(c);
          const { mem, q } = build(c);
          const mixed = await withDeadline(
            popAvail(answeringAtOnce(mem, now), q, c.last, c.opts),
            'popAvail',
          );
          assert.deepEqual(shape(mixed), got);
          assert.deepEqual(got, want);
        },
      ),
    );
  });

  it('matches the reference model on hostile rings; never throws, hangs or over-reads', async () => {
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        const { got, want } = await popChecked(c);
        assert.deepEqual(got, want);
      }),
    );
  });

  it('pops a well-formed chain exactly as it was written', async () => {
    const wellFormed = caseArb
      .map((c) => ({ ...c, hole: 'none' as const }))
      .filter((c) => c.valid !== null && c.valid.mutations.length === 0);
    await fc.assert(
      fc.asyncProperty(wellFormed, async (c) => {
        const { got, expect } = await popChecked({
          ...c,
          pending: Math.min(Math.max(c.pending, 1), c.size),
          opts: {},
        });
        assert.deepEqual(got, { ok: true, value: expect });
      }),
    );
  });
});
