import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  ADDR_MAX,
  AddrError,
  FRAME_MAX,
  addOffset,
  busAsMachineBypass,
  legacyPhysAsBus,
  machineOfFrame,
  mfn,
  mfnOf,
  pageSpans,
  parseHex,
  pseudoPhysAddr,
  toHex,
} from './index.js';

describe('address values', () => {
  it('accepts the 64-bit boundaries and rejects one past them', () => {
    assert.equal(pseudoPhysAddr(0n), 0n);
    assert.equal(pseudoPhysAddr(ADDR_MAX), ADDR_MAX);
    assert.throws(() => pseudoPhysAddr(ADDR_MAX + 1n), { code: 'ADDR_OUT_OF_RANGE' });
    assert.throws(() => pseudoPhysAddr(-1n), AddrError);
  });

  it('keeps the top frame exact in a number', () => {
    const top = machineOfFrame(mfn(FRAME_MAX), 0xfff);
    assert.equal(top, ADDR_MAX);
    assert.equal(mfnOf(top), FRAME_MAX);
    assert.throws(() => mfn(FRAME_MAX + 1), { code: 'FRAME_OUT_OF_RANGE' });
    assert.throws(() => mfn(1.5), { code: 'FRAME_OUT_OF_RANGE' });
  });

  it('round-trips hex at the edges and rejects malformed text', () => {
    for (const v of [0n, 1n, 0x764d4000n, ADDR_MAX]) {
      assert.equal(parseHex('machine', toHex(v)), v);
    }
    for (const bad of ['', '0x', '764d4000', '0x1g', '0x10000000000000000', ' 0x1']) {
      assert.throws(() => parseHex('bus', bad), { code: 'ADDR_BAD_HEX' });
    }
  });

  it('refuses to wrap past 2^64', () => {
    assert.throws(() => addOffset(pseudoPhysAddr(ADDR_MAX), 1), { code: 'ADDR_OUT_OF_RANGE' });
  });

  it('splits a range at page boundaries', () => {
    const spans = pageSpans(pseudoPhysAddr(0x1ff0n), 0x1020);
    assert.deepEqual(
      spans.map((s) => [toHex(s.addr), s.len, s.offset]),
      [
        ['0x1ff0', 0x10, 0],
        ['0x2000', 0x1000, 0x10],
        ['0x3000', 0x10, 0x1010],
      ],
    );
  });
});

describe('named crossings', () => {
  it('records the legacy escape hatch as a step from pseudo-physical to bus', () => {
    const t = legacyPhysAsBus(pseudoPhysAddr(0x3a600000n));
    assert.ok(t.ok);
    assert.equal(t.addr, 0x3a600000n);
    assert.deepEqual(t.step, {
      from: '0x3a600000',
      to: '0x3a600000',
      fromLayer: 'pseudo_phys',
      toLayer: 'bus',
      by: 'identity',
      ok: true,
      fn: 'legacyPhysAsBus',
    });
  });

  it('marks a bypassed access with by=bypass', () => {
    const t = legacyPhysAsBus(pseudoPhysAddr(0x1000n));
    assert.ok(t.ok);
    const m = busAsMachineBypass(t.addr);
    assert.ok(m.ok);
    assert.equal(m.step.by, 'bypass');
    assert.equal(m.step.toLayer, 'machine');
  });
});
