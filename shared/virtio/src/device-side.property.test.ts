// Property tests of what a device does around the walker: checking a queue
// the driver configured, cutting a virtio-blk request out of a chain, and
// computing the used-ring and EVENT_IDX writes. Each against a reference
// written from the spec text, on generated hostile input: a typed result or
// VirtioError, never another throw, and no write outside the used ring or the
// buffers the chain names.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { busAddr } from '@nestlab/addr';
import {
  VIRTIO_BLK_T,
  VIRTIO_ERROR_CODE_KIND,
  VirtioError,
  availEventWrite,
  checkBlkDirection,
  popAvail,
  splitBlkRequest,
  usedElemWrite,
  usedIdxWrite,
  vringNeedEvent,
} from './index.js';
import { SparseTestMemory } from './testing/index.js';
import type { Segment, SplitQueue } from './index.js';

const TWO64 = 1n << 64n;
const u64 = fc.bigInt({ min: 0n, max: TWO64 - 1n });

if (process.env['NESTLAB_FUZZ_RUNS'] === undefined) {
  fc.configureGlobal({ ...fc.readConfigureGlobal(), numRuns: 500, includeErrorInReport: true });
}

/** checkSplitQueue's documented order: size, then each area's alignment and wrap; then last_avail_idx. */
function configReference(c: {
  size: number;
  desc: bigint;
  avail: bigint;
  used: bigint;
  last: number;
}): string | null {
  if (!Number.isInteger(c.size) || c.size < 1 || c.size > 32768 || (c.size & (c.size - 1)) !== 0) {
    return 'QUEUE_SIZE_INVALID';
  }
  const areas: [bigint, bigint, number][] = [
    [c.desc, 16n, 16 * c.size],
    [c.avail, 2n, 6 + 2 * c.size],
    [c.used, 4n, 6 + 8 * c.size],
  ];
  for (const [addr, align, bytes] of areas) {
    if (addr % align !== 0n) return 'RING_MISALIGNED';
    if (addr + BigInt(bytes) > TWO64) return 'ADDR_WRAP';
  }
  if (!Number.isInteger(c.last) || c.last < 0 || c.last > 0xffff) return 'INVALID_ARGUMENT';
  return null;
}

type Piece = { addr: bigint; len: number; writable: boolean };

/** Spec 5.2.6 by byte position: bytes [0,16) header, the last byte status, the rest data. */
function splitReference(bufs: readonly Piece[]) {
  const total = bufs.reduce((n, b) => n + b.len, 0);
  if (total < 17) return null;
  const header: Piece[] = [];
  const data: Piece[] = [];
  let status: Piece | null = null;
  let pos = 0;
  for (const b of bufs) {
    for (const [from, to] of [
      [pos, Math.min(pos + b.len, 16)],
      [Math.max(pos, 16), Math.min(pos + b.len, total - 1)],
      [Math.max(pos, total - 1), pos + b.len],
    ] as const) {
      if (to <= from) continue;
      const piece = { addr: b.addr + BigInt(from - pos), len: to - from, writable: b.writable };
      if (to <= 16) header.push(piece);
      else if (from >= total - 1) status = piece;
      else data.push(piece);
    }
    pos += b.len;
  }
  if (header.some((p) => p.writable) || !status?.writable) return null;
  return { header, data, dataLen: total - 17, status: status.addr };
}

const pieces = (segs: readonly Segment[]): Piece[] =>
  segs.map((s) => ({ addr: s.addr, len: s.len, writable: s.writable }));

describe('device-side properties (fast-check)', () => {
  it('any queue configuration and last_avail_idx: the documented error, never a throw', async () => {
    const mem = new SparseTestMemory({ zeroFill: true });
    const cfgArb = fc.record({
      size: fc.oneof(fc.constantFrom(0, 1, 3, 256, 32768, 65536), fc.integer()),
      desc: fc.oneof(fc.constantFrom(0n, 8n, TWO64 - 16n), u64),
      avail: fc.oneof(fc.constantFrom(1n, TWO64 - 2n), u64),
      used: fc.oneof(fc.constantFrom(2n, TWO64 - 4n), u64),
      last: fc.oneof(
        fc.constantFrom(-1, 0x10000, 0.5, Number.NaN),
        fc.integer({ min: 0, max: 0xffff }),
      ),
    });
    await fc.assert(
      fc.asyncProperty(cfgArb, async (cfg) => {
        const q = {
          size: cfg.size,
          desc: busAddr(cfg.desc),
          avail: busAddr(cfg.avail),
          used: busAddr(cfg.used),
        };
        const r = await popAvail(mem, q, cfg.last);
        const want = configReference(cfg);
        if (want !== null) assert.equal(r.ok ? 'ok' : r.error.code, want);
        else if (!r.ok)
          assert.equal(VIRTIO_ERROR_CODE_KIND[r.error.code], 'guest', r.error.message);
      }),
    );
  });

  it('splitBlkRequest cuts header, data and status exactly where the spec puts them', () => {
    const buf = fc.record({
      addr: fc.bigInt({ min: 0n, max: TWO64 - 0x20000n }),
      len: fc.oneof(fc.constantFrom(0, 1, 15, 16, 17, 512), fc.integer({ min: 0, max: 0x1_0000 })),
      writable: fc.boolean(),
    });
    // The walker hands over readable buffers first; shuffled ones test the checks too.
    const chain = fc.oneof(
      fc
        .array(buf, { minLength: 1, maxLength: 8 })
        .map((b) => b.sort((x, y) => Number(x.writable) - Number(y.writable))),
      fc.array(buf, { maxLength: 8 }),
    );
    fc.assert(
      fc.property(chain, (bufs) => {
        const segs = bufs.map((b) => ({ ...b, addr: busAddr(b.addr) }));
        const got = splitBlkRequest(segs);
        const want = splitReference(bufs);
        if (want === null) {
          assert.equal(got.ok ? 'ok' : got.error.code, 'BAD_BLK_REQUEST');
          return;
        }
        assert.ok(got.ok, got.ok ? '' : got.error.message);
        assert.deepEqual(
          {
            header: pieces(got.value.header),
            data: pieces(got.value.data),
            dataLen: got.value.dataLen,
            status: got.value.status as bigint,
          },
          want,
        );
      }),
    );
  });

  it('checkBlkDirection: IN/GET_ID write to the driver, OUT reads from it, others pass', () => {
    const seg = fc.record({ addr: u64.map(busAddr), len: fc.nat(4096), writable: fc.boolean() });
    fc.assert(
      fc.property(
        fc.oneof(fc.constantFrom(...Object.values(VIRTIO_BLK_T)), fc.nat()),
        fc.array(seg, { maxLength: 6 }),
        (type, data) => {
          const want =
            type === VIRTIO_BLK_T.IN || type === VIRTIO_BLK_T.GET_ID
              ? data.every((s) => s.writable)
              : type === VIRTIO_BLK_T.OUT
                ? data.every((s) => !s.writable)
                : true;
          const r = checkBlkDirection(type, data);
          assert.equal(r.ok, want);
          if (!r.ok) assert.equal(r.error.code, 'BAD_BLK_REQUEST');
        },
      ),
    );
  });

  it('used-ring and EVENT_IDX writes land inside the used ring, or are refused with INVALID_ARGUMENT', () => {
    const argArb = fc.record({
      log2: fc.integer({ min: 0, max: 15 }),
      used: fc.bigInt({ min: 0n, max: (TWO64 - 0x80000n) / 4n }).map((v) => v * 4n),
      idx: fc.oneof(fc.integer({ min: 0, max: 0xffff }), fc.constantFrom(-1, 0x10000, 1.5)),
      head: fc.oneof(fc.nat(0xffff), fc.constantFrom(-1, 0x10000)),
      len: fc.oneof(fc.nat(), fc.constantFrom(0xffff_ffff, 2 ** 32, -1)),
    });
    fc.assert(
      fc.property(argArb, (a) => {
        const size = 1 << a.log2;
        const q: SplitQueue = {
          size,
          desc: busAddr(0n),
          avail: busAddr(0n),
          used: busAddr(a.used),
        };
        const end = a.used + BigInt(6 + 8 * size);
        const inside = (w: { addr: bigint; bytes: Uint8Array }) =>
          w.addr >= a.used && w.addr + BigInt(w.bytes.byteLength) <= end;
        const goodIdx = Number.isInteger(a.idx) && a.idx >= 0 && a.idx <= 0xffff;
        const goodElem =
          goodIdx && a.head >= 0 && a.head < size && a.len >= 0 && a.len <= 0xffff_ffff;
        const attempt = <T>(f: () => T): T | VirtioError => {
          try {
            return f();
          } catch (e) {
            assert.ok(e instanceof VirtioError && e.code === 'INVALID_ARGUMENT', String(e));
            return e;
          }
        };
        const elem = attempt(() => usedElemWrite(q, a.idx, a.head, a.len));
        assert.equal(elem instanceof VirtioError, !goodElem);
        if (!(elem instanceof VirtioError)) {
          assert.ok(inside(elem));
          assert.equal(elem.addr, a.used + 4n + 8n * BigInt(a.idx % size));
          const v = new DataView(elem.bytes.buffer);
          assert.deepEqual([v.getUint32(0, true), v.getUint32(4, true)], [a.head, a.len]);
        }
        for (const w of [
          attempt(() => usedIdxWrite(q, a.idx)),
          attempt(() => availEventWrite(q, a.idx)),
        ]) {
          assert.equal(w instanceof VirtioError, !goodIdx);
          if (!(w instanceof VirtioError)) assert.ok(inside(w));
        }
      }),
    );
  });

  it('vring_need_event: notify exactly when the event index lies in [old, new) mod 2^16', () => {
    const u16 = fc.integer({ min: 0, max: 0xffff });
    fc.assert(
      fc.property(u16, u16, u16, (event, oldIdx, newIdx) => {
        const want = ((event - oldIdx) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
        assert.equal(vringNeedEvent(event, newIdx, oldIdx), want);
      }),
    );
  });
});
