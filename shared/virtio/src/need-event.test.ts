import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { vringNeedEvent } from './index.js';

describe('vringNeedEvent', () => {
  it('notifies when the event index lies in [old, new)', () => {
    assert.equal(vringNeedEvent(5, 6, 5), true); // the entry the other side waits for was used
    assert.equal(vringNeedEvent(5, 10, 0), true); // inside a batch
    assert.equal(vringNeedEvent(9, 10, 9), true); // the lower bound is inclusive
    assert.equal(vringNeedEvent(10, 10, 9), false); // the upper bound is exclusive
    assert.equal(vringNeedEvent(11, 10, 0), false); // not reached yet
    assert.equal(vringNeedEvent(3, 3, 3), false); // nothing moved
  });

  it('stays correct when the indexes wrap at 65536', () => {
    assert.equal(vringNeedEvent(0xffff, 0x0001, 0xfffe), true);
    assert.equal(vringNeedEvent(0xffff, 0x0001, 0xffff), true);
    assert.equal(vringNeedEvent(0x0000, 0x0001, 0xffff), true);
    assert.equal(vringNeedEvent(0x0001, 0x0001, 0xffff), false);
    assert.equal(vringNeedEvent(0x0002, 0x0001, 0xffff), false);
    assert.equal(vringNeedEvent(0xfffe, 0x0001, 0xffff), false);
  });

  it('treats a move of 65536 as no move (u16 new - old = 0)', () => {
    assert.equal(vringNeedEvent(100, 7, 7), false);
  });
});
