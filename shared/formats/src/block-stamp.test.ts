import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { BLOCK_MAGIC, blockContent, describeBlock } from './block-stamp.js';
import { diskImagePath } from './disk-image.js';

describe('block stamps', () => {
  const stamp = { seed: 42, block: 7, generation: 3 };

  it('stamps a block so its bytes say which block, generation and seed they are', () => {
    const b = blockContent(stamp, 4096);
    assert.equal(new DataView(b.buffer).getUint32(0, true), BLOCK_MAGIC);
    assert.deepEqual(describeBlock(b), stamp);
    assert.deepEqual(blockContent(stamp, 4096), b, 'deterministic');
    assert.notDeepEqual(blockContent({ ...stamp, generation: 4 }, 4096), b);
    assert.equal(describeBlock(new Uint8Array(512)), 'zeros');
    const flipped = b.slice();
    flipped[1000]! ^= 1;
    assert.equal(describeBlock(flipped), 'garbage', 'the checksum catches a flipped bit');
  });
});

describe('disk image naming', () => {
  it('names the image after the stack and the device, in the data dir', () => {
    assert.equal(diskImagePath('/d', 's1', '0000:00:04.0'), '/d/s1-0000-00-04-0.img');
  });
});
