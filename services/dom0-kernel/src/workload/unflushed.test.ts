import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnflushedWrites } from './unflushed.js';

const w = (id: string, epoch: number) => ({ id, epoch });

describe('UnflushedWrites', () => {
  it('takes only the writes of older epochs, and nothing while all are current', () => {
    const u = new UnflushedWrites<{ id: string; epoch: number }>();
    u.push(w('a', 0));
    u.push(w('b', 1));
    u.push(w('c', 1));
    assert.deepEqual(u.takeOlderThan(0), []);
    assert.deepEqual(
      u.takeOlderThan(1).map((x) => x.id),
      ['a'],
    );
    assert.deepEqual(u.takeOlderThan(1), [], 'the oldest epoch moved on with them');
    assert.equal(u.size, 2);
    assert.deepEqual(
      u.takeOlderThan(2).map((x) => x.id),
      ['b', 'c'],
    );
  });

  it('a FLUSH takes all; what it did not cover goes back in front, older epochs included', () => {
    const u = new UnflushedWrites<{ id: string; epoch: number }>();
    u.push(w('a', 3));
    const covered = u.takeAll();
    u.push(w('b', 3));
    assert.deepEqual(u.takeOlderThan(3), []);
    u.restore([w('x', 2), ...covered]);
    assert.deepEqual(
      u.takeOlderThan(3).map((x) => x.id),
      ['x'],
    );
    assert.deepEqual(
      u.takeAll().map((x) => x.id),
      ['a', 'b'],
    );
  });
});
