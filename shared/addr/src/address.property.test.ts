// Property tests of the address layer helpers and the table-free crossings:
// hex and frame round trips, monotonicity, page spans that tile a range
// exactly, and crossings whose recorded step always names the layers they
// were declared with (layers.typetest.ts proves the same at compile time).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import {
  ADDR_MAX,
  AddrError,
  LAYERS,
  PAGE_SIZE,
  addOffset,
  addrOf,
  busAddr,
  busAsMachineBypass,
  busAsMachineDirect,
  crossing,
  legacyPhysAsBus,
  machineAddr,
  machineAsBusIdentity,
  machineOfFrame,
  mfnOf,
  pageOffset,
  pageSpans,
  parseHex,
  pfnOf,
  pseudoPhysAddr,
  pseudoPhysOfFrame,
  toHex,
} from './index.js';
import type { Layer, Translation } from './index.js';

if (process.env['NESTLAB_FUZZ_RUNS'] === undefined) {
  fc.configureGlobal({ ...fc.readConfigureGlobal(), numRuns: 1000, includeErrorInReport: true });
}

const TWO64 = 1n << 64n;
const u64 = fc.oneof(
  fc.bigInt({ min: 0n, max: ADDR_MAX }),
  fc.constantFrom(0n, 1n, 0xfffn, 0x1000n, (1n << 53n) + 1n, ADDR_MAX - 0x1000n, ADDR_MAX),
);
const layer = fc.constantFrom(...LAYERS);
/** Any error other than AddrError with the given code fails the property. */
function expectAddrError(f: () => unknown, code: string): void {
  assert.throws(f, (e: unknown) => e instanceof AddrError && e.code === code && e.kind === 'input');
}

describe('address properties (fast-check)', () => {
  it('hex round-trips every 64-bit value in every layer; other text is ADDR_BAD_HEX', () => {
    fc.assert(
      fc.property(layer, u64, (l, v) => {
        assert.equal(parseHex(l, toHex(v)), v);
        assert.equal(parseHex(l, toHex(v).toUpperCase().replace('0X', '0x')), v);
      }),
    );
    const notHex = fc.string({ maxLength: 24 }).filter((t) => !/^0x[0-9a-fA-F]{1,16}$/.test(t));
    fc.assert(
      fc.property(layer, notHex, (l, t) => expectAddrError(() => parseHex(l, t), 'ADDR_BAD_HEX')),
    );
  });

  it('a layer value exists exactly for 0..2^64-1', () => {
    const any = fc.oneof(
      u64,
      fc.bigInt({ min: -TWO64, max: -1n }),
      fc.bigInt({ min: TWO64, max: TWO64 * 4n }),
    );
    fc.assert(
      fc.property(layer, any, (l, v) => {
        if (v >= 0n && v <= ADDR_MAX) assert.equal(addrOf(l, v), v);
        else expectAddrError(() => addrOf(l, v), 'ADDR_OUT_OF_RANGE');
      }),
    );
  });

  it('frame numbers round-trip and are monotonic', () => {
    fc.assert(
      fc.property(u64, u64, (a, b) => {
        const p = pseudoPhysAddr(a);
        assert.equal(pseudoPhysOfFrame(pfnOf(p), pageOffset(p)), p);
        const m = machineAddr(a);
        assert.equal(machineOfFrame(mfnOf(m), pageOffset(m)), m);
        if (a <= b) assert.ok(pfnOf(p) <= pfnOf(pseudoPhysAddr(b)));
        assert.equal(BigInt(pfnOf(p)) * BigInt(PAGE_SIZE) + BigInt(pageOffset(p)), a);
      }),
    );
  });

  it('addOffset adds within the layer, is monotonic, and refuses to wrap', () => {
    const off = fc.oneof(fc.bigInt({ min: -TWO64, max: TWO64 }), fc.integer().map(BigInt));
    fc.assert(
      fc.property(u64, off, off, (a, x, y) => {
        const sum = a + x;
        if (sum < 0n || sum > ADDR_MAX)
          return expectAddrError(() => addOffset(busAddr(a), x), 'ADDR_OUT_OF_RANGE');
        assert.equal(addOffset(busAddr(a), x), sum);
        const other = a + y;
        if (other >= 0n && other <= ADDR_MAX && x <= y)
          assert.ok(addOffset(busAddr(a), x) <= addOffset(busAddr(a), y));
      }),
    );
  });

  it('pageSpans tiles [addr, addr+len) exactly, one page per span, in order', () => {
    fc.assert(
      fc.property(
        u64,
        fc.oneof(fc.nat(3 * PAGE_SIZE), fc.constantFrom(0, 1, PAGE_SIZE, PAGE_SIZE + 1)),
        (a, len) => {
          if (len > 0 && a + BigInt(len) - 1n > ADDR_MAX) {
            return expectAddrError(() => pageSpans(busAddr(a), len), 'ADDR_OUT_OF_RANGE');
          }
          const spans = pageSpans(busAddr(a), len);
          let at = a;
          let offset = 0;
          for (const s of spans) {
            assert.equal(s.addr, at);
            assert.equal(s.offset, offset);
            assert.ok(s.len > 0);
            assert.equal(
              (s.addr + BigInt(s.len) - 1n) >> 12n,
              s.addr >> 12n,
              'a span crosses a page',
            );
            at += BigInt(s.len);
            offset += s.len;
          }
          assert.equal(offset, len);
          const pages = len === 0 ? 0 : Number(((a + BigInt(len) - 1n) >> 12n) - (a >> 12n)) + 1;
          assert.equal(spans.length, pages);
        },
      ),
    );
  });

  it('the named crossings keep the value, record their own layers, and are monotonic', () => {
    const named: [(v: bigint) => Translation<bigint>, Layer, Layer, string][] = [
      [(v) => legacyPhysAsBus(pseudoPhysAddr(v)), 'pseudo_phys', 'bus', 'legacyPhysAsBus'],
      [(v) => busAsMachineDirect(busAddr(v)), 'bus', 'machine', 'busAsMachineDirect'],
      [(v) => busAsMachineBypass(busAddr(v)), 'bus', 'machine', 'busAsMachineBypass'],
      [(v) => machineAsBusIdentity(machineAddr(v)), 'machine', 'bus', 'machineAsBusIdentity'],
    ];
    fc.assert(
      fc.property(fc.constantFrom(...named), u64, u64, ([f, from, to, fn], a, b) => {
        const r = f(a);
        assert.ok(r.ok);
        assert.equal(r.addr, a);
        assert.deepEqual(
          {
            fromLayer: r.step.fromLayer,
            toLayer: r.step.toLayer,
            fn: r.step.fn,
            from: r.step.from,
            to: r.step.to,
          },
          { fromLayer: from, toLayer: to, fn, from: toHex(a), to: toHex(a) },
        );
        const rb = f(b);
        assert.ok(rb.ok && a < b === r.addr < rb.addr);
      }),
    );
  });

  it('a declared crossing records success and failure in its own layers only', () => {
    const by = fc.constantFrom('p2m', 'iommu', 'memslot', 'identity', 'bypass', 'grant' as const);
    fc.assert(
      fc.property(layer, layer, by, u64, u64, fc.string(), (from, to, b, x, y, reason) => {
        const c = crossing({ fn: 'testCrossing', from, to, by: b });
        const ok = c.ok(addrOf(from, x), addrOf(to, y));
        assert.ok(ok.ok && ok.addr === y);
        assert.deepEqual(
          [ok.step.fromLayer, ok.step.toLayer, ok.step.ok, ok.step.to],
          [from, to, true, toHex(y)],
        );
        const bad = c.fail(addrOf(from, x), reason);
        assert.deepEqual(
          [bad.ok, bad.step.fromLayer, bad.step.toLayer, bad.step.to, bad.step.reason, bad.step.by],
          [false, from, to, null, reason, b],
        );
      }),
    );
  });
});
