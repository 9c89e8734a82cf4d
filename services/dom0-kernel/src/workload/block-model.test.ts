import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { blockContent } from '@nestlab/formats';
import { BlockModel } from './engine.js';

describe('block verification', () => {
  const stamp = { seed: 42, block: 7, generation: 3 };

  it('expects zeros for never-written blocks and the last acknowledged write otherwise', () => {
    const m = new BlockModel(4096);
    assert.equal(m.check(7, new Uint8Array(4096)), true);
    assert.equal(m.check(7, blockContent(stamp, 4096)), false);
    const g1 = { seed: 42, block: 7, generation: m.nextGeneration(7) };
    m.ackWrite(g1);
    assert.equal(m.check(7, blockContent(g1, 4096)), true);
    assert.equal(m.check(7, new Uint8Array(4096)), false, 'zeros after a write are corruption');
    const other = blockContent({ seed: 42, block: 8, generation: 1 }, 4096);
    assert.equal(m.check(7, other), false, "another block's content is corruption");
    for (const at of [0, 12, 29, 100, 4095]) {
      const bad = blockContent(g1, 4096);
      bad[at]! ^= 0x40;
      assert.equal(m.check(7, bad), false, `a flipped bit at byte ${at} is corruption`);
    }
    const unaligned = new Uint8Array(4097);
    unaligned.set(blockContent(g1, 4096), 1);
    assert.equal(m.check(7, unaligned.subarray(1)), true, 'any alignment of the read buffer');
  });

  it('accepts old or new content after a write that failed', () => {
    const m = new BlockModel(512);
    const g1 = { seed: 1, block: 0, generation: m.nextGeneration(0) };
    m.ackWrite(g1);
    const g2 = { seed: 1, block: 0, generation: m.nextGeneration(0) };
    m.uncertainWrite(g2);
    assert.equal(m.check(0, blockContent(g1, 512)), true);
    assert.equal(m.check(0, blockContent(g2, 512)), true);
    assert.equal(m.check(0, new Uint8Array(512)), false);
  });
});
