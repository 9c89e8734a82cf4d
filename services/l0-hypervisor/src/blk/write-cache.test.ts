import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CACHE_BLOCK, WriteCache } from './write-cache.js';

const noLoad = () => {
  throw new Error('a whole-block write loads nothing');
};

describe('WriteCache.covers', () => {
  it('is true only when every block of the range is cached', () => {
    const cache = new WriteCache(1 << 20);
    assert.equal(cache.covers(0, CACHE_BLOCK), false, 'empty cache');
    cache.put(CACHE_BLOCK, new Uint8Array(2 * CACHE_BLOCK), noLoad);
    assert.equal(cache.covers(CACHE_BLOCK, 2 * CACHE_BLOCK), true);
    assert.equal(cache.covers(CACHE_BLOCK + 512, 512), true, 'a sector inside a cached block');
    assert.equal(cache.covers(CACHE_BLOCK, 3 * CACHE_BLOCK), false, 'runs into block 3');
    assert.equal(cache.covers(CACHE_BLOCK - 512, 1024), false, 'starts in block 0');
    assert.equal(cache.covers(CACHE_BLOCK, 0), false, 'an empty range reads nothing anyway');
    cache.takeAll();
    assert.equal(cache.covers(CACHE_BLOCK, CACHE_BLOCK), false, 'written back');
  });
});
