import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FrameTable } from './frame-table.js';

describe('FrameTable', () => {
  it('keeps owners as merged runs and answers per frame', () => {
    const ft = new FrameTable(1000, 'free');
    ft.set(100, 50, 'dom0');
    ft.set(150, 50, 'dom0');
    ft.set(0, 10, 'xen');
    assert.equal(ft.runCount, 4);
    assert.deepEqual(ft.runsOf('dom0'), [{ first: 100, count: 100 }]);
    assert.equal(ft.ownerOf(99), 'free');
    assert.equal(ft.ownerOf(100), 'dom0');
    assert.equal(ft.ownerOf(199), 'dom0');
    assert.equal(ft.ownerOf(5), 'xen');
    assert.deepEqual(ft.summary(), { xen: 10, free: 890, dom0: 100 });
  });

  it("says 'none' beyond its end and for nonsense frame numbers", () => {
    const ft = new FrameTable(10, 'free');
    assert.equal(ft.ownerOf(10), 'none');
    assert.equal(ft.ownerOf(-1), 'none');
    assert.equal(ft.ownerOf(2 ** 60), 'none');
    assert.equal(ft.ownerOf(1.5), 'none');
  });

  it('splits a run in the middle and re-merges when the hole is refilled', () => {
    const ft = new FrameTable(100, 'free');
    ft.set(40, 1, 'dom0');
    assert.equal(ft.runCount, 3);
    ft.set(40, 1, 'free');
    assert.equal(ft.runCount, 1);
    ft.set(90, 50, 'xen');
    assert.deepEqual(ft.runsOf('xen'), [{ first: 90, count: 10 }]);
  });

  it('finds the lowest aligned free run, or none', () => {
    const ft = new FrameTable(64, 'xen');
    ft.set(3, 5, 'free');
    ft.set(20, 20, 'free');
    assert.equal(ft.findFree(4), 3);
    assert.equal(ft.findFree(4, 4), 4);
    assert.equal(ft.findFree(8, 8), 24);
    assert.equal(ft.findFree(21), undefined);
    assert.equal(ft.allOwnedBy(20, 20, 'free'), true);
    assert.equal(ft.allOwnedBy(19, 2, 'free'), false);
  });
});
