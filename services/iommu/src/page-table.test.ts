import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PageTables } from './page-table.js';

describe('PageTables', () => {
  it('maps consecutive pages per device and looks them up with permissions', () => {
    const t = new PageTables();
    assert.equal(t.map('0000:00:04.0', 0x100000, [7, 9, 3], true, false), 3);
    assert.deepEqual(t.lookup('0000:00:04.0', 0x100001), { mfn: 9, read: true, write: false });
    assert.equal(t.lookup('0000:00:05.0', 0x100001), undefined, 'other device, other domain');
    assert.equal(t.lookup('0000:00:04.0', 0x100003), undefined);
    assert.equal(t.mappedPages, 3);
  });

  it('refuses to map over a present page, all or nothing', () => {
    const t = new PageTables();
    t.map('0000:00:04.0', 10, [1], true, true);
    assert.throws(
      () => t.map('0000:00:04.0', 8, [5, 6, 7], true, true),
      (e: { code?: string }) => e.code === 'IOVA_IN_USE',
    );
    assert.equal(t.lookup('0000:00:04.0', 8), undefined);
    assert.equal(t.mappedPages, 1);
  });

  it('counts unmaps of absent pages instead of failing, and frees empty domains', () => {
    const t = new PageTables();
    t.map('0000:00:04.0', 510, [1, 2, 3, 4], true, true);
    assert.deepEqual(t.unmap('0000:00:04.0', 508, 8), { unmapped: 4, absent: 4 });
    assert.deepEqual(t.summary(), []);
    assert.deepEqual(t.unmap('0000:00:09.0', 0, 2), { unmapped: 0, absent: 2 });
  });

  it('holds many mappings at high IOVAs and machine frames beyond 2^32', () => {
    const t = new PageTables();
    const base = 2 ** 40;
    const mfns = Array.from({ length: 1024 }, (_, i) => 2 ** 36 + i);
    for (let k = 0; k < 256; k++) t.map('0000:00:04.0', base + k * 1024, mfns, true, true);
    assert.equal(t.mappedPages, 256 * 1024);
    assert.equal(t.lookup('0000:00:04.0', base + 255 * 1024 + 1023)?.mfn, 2 ** 36 + 1023);
    const top = 2 ** 52 - 1;
    t.map('0000:00:04.0', top, [2 ** 52 - 1], false, true);
    assert.deepEqual(t.lookup('0000:00:04.0', top), { mfn: 2 ** 52 - 1, read: false, write: true });
  });
});
