import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TurnBatch, afterTurn } from './turn.js';

const nextTurn = () => new Promise<void>((r) => setImmediate(r));

describe('TurnBatch', () => {
  it('flushes everything added in one turn once, in order, after the sync code and its microtasks', async () => {
    const flushed: number[][] = [];
    const seen: string[] = [];
    const b = new TurnBatch<number>(
      (items) => void flushed.push(items),
      (err) => assert.fail(String(err)),
    );
    b.add(1);
    b.add(2);
    void Promise.resolve().then(() => {
      b.add(3);
      seen.push('microtask');
    });
    seen.push('sync');
    assert.deepEqual(flushed, [], 'nothing before the turn ends');
    assert.equal(b.pending, 2);
    await nextTurn();
    assert.deepEqual(flushed, [[1, 2, 3]]);
    assert.deepEqual(seen, ['sync', 'microtask']);
    await nextTurn();
    assert.deepEqual(flushed, [[1, 2, 3]], 'no empty flush');
  });

  it('sends items added during a flush to the next one; async flushes never overlap', async () => {
    const flushed: number[][] = [];
    let running = 0;
    let overlapped = false;
    const b = new TurnBatch<number>(
      async (items) => {
        overlapped ||= running > 0;
        running++;
        flushed.push(items);
        if (items[0] === 1) b.add(10);
        await new Promise((r) => setTimeout(r, 20));
        running--;
      },
      (err) => assert.fail(String(err)),
    );
    b.add(1);
    await nextTurn();
    b.add(2); // while the first flush awaits
    await b.drain();
    await new Promise((r) => setTimeout(r, 60));
    await b.drain();
    assert.deepEqual(flushed, [[1], [10, 2]]);
    assert.equal(overlapped, false);
  });

  it('reports a failing flush to onError and keeps working', async () => {
    const errors: unknown[] = [];
    const flushed: string[][] = [];
    const b = new TurnBatch<string>(
      (items) => {
        if (items.includes('bad')) throw new Error('flush failed');
        flushed.push(items);
      },
      (err) => errors.push(err),
    );
    b.add('bad');
    await b.drain();
    b.add('good');
    await nextTurn();
    await b.drain();
    assert.equal((errors[0] as Error).message, 'flush failed');
    assert.deepEqual(flushed, [['good']]);
  });
});

describe('afterTurn', () => {
  it('runs after the current turn, and reports throws and rejections', async () => {
    const order: string[] = [];
    const errors: string[] = [];
    afterTurn(
      () => order.push('after'),
      (e) => errors.push(String(e)),
    );
    afterTurn(
      () => {
        throw new Error('sync');
      },
      (e) => errors.push((e as Error).message),
    );
    afterTurn(
      () => Promise.reject(new Error('async')),
      (e) => errors.push((e as Error).message),
    );
    order.push('now');
    await nextTurn();
    await nextTurn();
    assert.deepEqual(order, ['now', 'after']);
    assert.deepEqual(errors.sort(), ['async', 'sync']);
  });
});
