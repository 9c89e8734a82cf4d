// MemAccess's binary heads (codec-binary.ts) against its JSON form: a head a
// sender writes travels binary and decodes to exactly what its JSON would; a
// head the binary form cannot carry exactly travels as JSON; every edit of a
// binary frame is refused with an input code, or decodes to a head the schema
// accepts (never an exception of another kind, never a half-checked head).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  MAX_ACCESS_LEN,
  MemAccess,
  ProtocolError,
  binaryFrameOf,
  decodeFrame,
  decodeReply,
  decodeRequest,
  encodeFrame,
  encodeReply,
  encodeRequest,
} from './index.js';
import type { RequestOf } from './index.js';

if (process.env['NESTLAB_FUZZ_RUNS'] === undefined) {
  fc.configureGlobal({ ...fc.readConfigureGlobal(), numRuns: 300, includeErrorInReport: true });
}

type Head = RequestOf<typeof MemAccess>;
const hex = (v: bigint) => `0x${v.toString(16)}`;

/** Heads as senders write them: canonical hex (toHex), ASCII io ids. */
const opArb = fc.record({
  op: fc.constantFrom('read' as const, 'write' as const),
  addr: fc.bigInt({ min: 0n, max: (1n << 64n) - 1n }).map(hex),
  len: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.constantFrom(4096, MAX_ACCESS_LEN)),
});
const headArb: fc.Arbitrary<Head> = fc
  .record(
    {
      requester: fc.oneof(
        fc.record({
          kind: fc.constant('cpu' as const),
          domain: fc.integer({ min: 0, max: 0x7ff0 }),
        }),
        fc.constant({ kind: 'xen' as const }),
      ),
      ops: fc.array(opArb, { minLength: 1, maxLength: 8 }),
      ioIds: fc.array(fc.string({ unit: 'binary-ascii', maxLength: 64 }), { maxLength: 4 }),
      afterDoorbell: fc.constant('drained' as const),
    },
    { requiredKeys: ['requester', 'ops'] },
  )
  .map((h) => ({ ...h }));
const withData = headArb.map((h) => {
  const n = h.ops.reduce((s, o) => s + (o.op === 'write' ? Math.min(o.len, 64) : 0), 0);
  // Data lengths need not match the ops here: L0 checks that, not the codec.
  return { head: h, data: new Uint8Array(n).fill(0xa5) };
});

const INPUT = ['BAD_FRAME', 'BAD_JSON', 'SCHEMA_INVALID'];

function receive(bytes: Uint8Array): 'accepted' | string {
  try {
    const r = decodeRequest(MemAccess, bytes);
    assert.ok(MemAccess.request.check(r.head), 'accepted a head the schema refuses');
    return 'accepted';
  } catch (err) {
    assert.ok(err instanceof ProtocolError, `threw ${String(err)}`);
    assert.ok(INPUT.includes(err.code) && err.kind === 'input', err.code);
    return err.code;
  }
}

describe('MemAccess binary heads (fast-check)', () => {
  it('a head as senders write it travels binary and decodes as its JSON would', () => {
    fc.assert(
      fc.property(withData, ({ head, data }) => {
        const bytes = encodeRequest(MemAccess, head, data);
        assert.ok(binaryFrameOf(bytes), 'sent as JSON');
        const json = decodeRequest(MemAccess, encodeFrame(head, data));
        const bin = decodeRequest(MemAccess, bytes);
        assert.deepEqual(bin.head, json.head);
        assert.deepEqual([...bin.data], [...data]);
        assert.ok(bytes.byteLength < encodeFrame(head, data).byteLength);
      }),
    );
  });

  it('a head the binary form cannot carry exactly goes as JSON, refused as before', () => {
    const odd = fc.constantFrom<(h: Head) => unknown>(
      (h) => ({ ...h, ops: h.ops.map((o) => ({ ...o, addr: o.addr.toUpperCase() + 'A' })) }),
      (h) => ({ ...h, ops: h.ops.map((o) => ({ ...o, addr: `0x0${o.addr.slice(2)}` })) }),
      (h) => ({ ...h, ops: h.ops.map((o) => ({ ...o, extra: 1 })) }),
      (h) => ({ ...h, ops: h.ops.map((o) => ({ ...o, len: 0 })) }),
      (h) => ({ ...h, ops: [] }),
      (h) => ({ ...h, ioIds: ['é'] }),
      (h) => ({ ...h, ioIds: ['x'.repeat(65)] }),
      (h) => ({ ...h, requester: { kind: 'cpu', domain: 0x7ff1 } }),
      (h) => ({ ...h, requester: { kind: 'xen', domain: 0 } }),
      (h) => ({ ...h, afterDoorbell: 'later' }),
      (h) => ({ ...h, more: true }),
    );
    fc.assert(
      fc.property(headArb, odd, (head, edit) => {
        const bad = edit(head);
        const bytes = encodeRequest(MemAccess, bad as Head);
        if (binaryFrameOf(bytes)) {
          // Only an upper-cased address that is still canonical after the edit could go binary.
          assert.deepEqual(decodeRequest(MemAccess, bytes).head, decodeFrame(bytes).head);
        }
        const want = MemAccess.request.check(JSON.parse(JSON.stringify(bad)))
          ? 'accepted'
          : 'SCHEMA_INVALID';
        assert.equal(receive(bytes), want);
      }),
    );
  });

  it('truncated, flipped and extended binary frames: a typed input error or a valid head', () => {
    const edit = fc.oneof(
      fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
      fc.record({
        kind: fc.constant('flip' as const),
        at: fc.nat(),
        mask: fc.integer({ min: 1, max: 255 }),
      }),
      fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: fc.nat() }),
      fc.record({
        kind: fc.constant('append' as const),
        bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }),
      }),
    );
    fc.assert(
      fc.property(
        withData,
        fc.array(edit, { minLength: 1, maxLength: 3 }),
        ({ head, data }, edits) => {
          let bytes = Uint8Array.from(encodeRequest(MemAccess, head, data));
          for (const e of edits) {
            if (e.kind === 'truncate') bytes = bytes.subarray(0, e.at % (bytes.length + 1));
            else if (e.kind === 'append') bytes = Uint8Array.from([...bytes, ...e.bytes]);
            else if (bytes.length > 0) {
              const at = e.at % bytes.length;
              if (e.kind === 'flip') bytes[at] = bytes[at]! ^ e.mask;
              else if (at + 4 <= bytes.length)
                new DataView(bytes.buffer, bytes.byteOffset).setUint32(at, e.value, true);
            }
          }
          receive(bytes);
        },
      ),
    );
  });

  it('replies: read lengths travel binary, a length past u32 as JSON, both decode the same', () => {
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.nat({ max: MAX_ACCESS_LEN }), fc.constant(2 ** 32)), {
          maxLength: 16,
        }),
        fc.uint8Array({ maxLength: 32 }),
        (readLens, data) => {
          const bytes = encodeReply(MemAccess, { readLens }, data);
          assert.equal(
            binaryFrameOf(bytes) !== null,
            readLens.every((n) => n < 2 ** 32),
          );
          const r = decodeReply(MemAccess, 'nestlab.t.l0.mem.access', bytes);
          assert.deepEqual(r.head, { readLens });
          assert.deepEqual([...r.data], [...data]);
          // Data given in parts (L0's loads) frames to the same bytes as joined.
          const cut = data.length >> 1;
          const parts = [data.subarray(0, cut), new Uint8Array(0), data.subarray(cut)];
          assert.deepEqual([...encodeReply(MemAccess, { readLens }, parts)], [...bytes]);
        },
      ),
    );
  });
});

describe('MemAccess binary heads (cases)', () => {
  const head: Head = {
    requester: { kind: 'cpu', domain: 0 },
    ops: [
      { op: 'write', addr: '0xffffffffffffffff', len: 1 },
      { op: 'read', addr: '0x0', len: 2 },
      { op: 'read', addr: '0x100000000', len: 3 },
    ],
  };
  it('carries the extreme addresses exactly', () => {
    const bytes = encodeRequest(MemAccess, head, new Uint8Array([7]));
    assert.ok(binaryFrameOf(bytes));
    assert.deepEqual(decodeRequest(MemAccess, bytes).head, head);
  });

  it('names the range a bad value breaks, as the schema would', () => {
    const bytes = encodeRequest(MemAccess, head, new Uint8Array([7]));
    // The first op's len field: 8-byte prefix, flags, domain, op count, then op + addr.
    new DataView(bytes.buffer).setUint32(8 + 1 + 2 + 2 + 9, 0, true);
    assert.throws(() => decodeRequest(MemAccess, bytes), {
      code: 'SCHEMA_INVALID',
      message: /\/ops\/0\/len/,
    });
  });

  it('refuses a binary head on a message that has none, and a request layout as a reply', () => {
    const bytes = encodeRequest(MemAccess, head, new Uint8Array([7]));
    assert.throws(() => decodeReply(MemAccess, 's', bytes), { code: 'BAD_FRAME' });
    const reply = encodeReply(MemAccess, { readLens: [1] });
    assert.throws(() => decodeRequest(MemAccess, reply), { code: 'BAD_FRAME' });
    assert.throws(() => decodeFrame(bytes), { code: 'BAD_FRAME' });
  });
});
