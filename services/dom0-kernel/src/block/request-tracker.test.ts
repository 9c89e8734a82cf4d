import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RequestTracker } from './request-tracker.js';

describe('RequestTracker', () => {
  it('fails an I/O with TIMEOUT exactly once at its deadline and counts the late completion', async () => {
    const t = new RequestTracker<number>();
    const started = Date.now();
    const { outcome, signal } = t.start('a', 30);
    const o = await outcome;
    assert.equal(o.ok, false);
    assert.equal(!o.ok && o.code, 'TIMEOUT');
    assert.ok(Date.now() - started >= 25);
    assert.equal(signal.aborted, true, 'the submit path is told to stop');
    assert.equal(t.inFlight, 0);
    assert.equal(t.complete('a', 1), false);
    assert.equal(t.fail('a', 'X', 'again'), false);
    assert.equal(t.late, 1);
    assert.equal(t.duplicate, 0);
  });

  it('fails each I/O at its own deadline, whatever order the deadlines come in', async () => {
    const t = new RequestTracker<number>();
    const started = performance.now();
    const ended = new Map<string, number>();
    const watch = (id: string, ms: number) =>
      t.start(id, ms).outcome.then((o) => {
        ended.set(id, performance.now() - started);
        return o;
      });
    const late = watch('late', 80);
    const early = watch('early', 20);
    const done = watch('done', 10);
    assert.equal(t.complete('done', 1), true, 'the earliest deadline completes first');
    assert.deepEqual(await done, { ok: true, value: 1 });
    assert.equal((await early).ok, false);
    assert.equal(t.inFlight, 1, 'the later deadline still runs');
    assert.ok(ended.get('early')! >= 15);
    const o = await late;
    assert.equal(!o.ok && o.code, 'TIMEOUT');
    assert.ok(ended.get('late')! >= 75);
    assert.equal(t.inFlight, 0);
  });

  it('completes once and ignores a duplicate completion', async () => {
    const t = new RequestTracker<number>();
    const { outcome } = t.start('b', 1000);
    assert.equal(t.complete('b', 7), true);
    assert.equal(t.complete('b', 8), false);
    assert.deepEqual(await outcome, { ok: true, value: 7 });
    assert.equal(t.duplicate, 1);
    assert.equal(t.late, 0);
    assert.throws(() => t.start('b', 10), /already in use/);
  });

  it('fails everything in flight on failAll and clears the timers', async () => {
    const t = new RequestTracker<number>();
    const outs = ['x', 'y', 'z'].map((id) => t.start(id, 60_000).outcome);
    assert.equal(t.failAll('DEVICE_NEEDS_RESET', 'device broke'), 3);
    for (const o of await Promise.all(outs)) {
      assert.deepEqual(o, { ok: false, code: 'DEVICE_NEEDS_RESET', message: 'device broke' });
    }
    assert.equal(t.inFlight, 0);
  });
});
