import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FeatureSet, VIRTIO_BLK_F, VIRTIO_F } from './index.js';

describe('FeatureSet', () => {
  const offered = FeatureSet.of(
    VIRTIO_F.VERSION_1,
    VIRTIO_F.ACCESS_PLATFORM,
    VIRTIO_F.INDIRECT_DESC,
    VIRTIO_BLK_F.SEG_MAX,
    VIRTIO_BLK_F.FLUSH,
  );

  it('has / with / without / intersect', () => {
    assert.equal(offered.has(VIRTIO_F.ACCESS_PLATFORM), true);
    assert.equal(offered.has(VIRTIO_F.EVENT_IDX), false);
    const accepted = offered.without(VIRTIO_F.ACCESS_PLATFORM).with(VIRTIO_F.EVENT_IDX);
    assert.equal(accepted.has(VIRTIO_F.ACCESS_PLATFORM), false);
    assert.equal(accepted.isSubsetOf(offered), false);
    const negotiated = offered.intersect(accepted);
    assert.equal(negotiated.has(VIRTIO_F.EVENT_IDX), false);
    assert.equal(negotiated.isSubsetOf(offered), true);
  });

  it('lists names with the blk table for bits below 24', () => {
    assert.deepEqual(offered.names(), [
      'SEG_MAX',
      'FLUSH',
      'INDIRECT_DESC',
      'VERSION_1',
      'ACCESS_PLATFORM',
    ]);
    assert.deepEqual(FeatureSet.of(3, 50).names(), ['bit3', 'bit50']);
  });

  it('round-trips hex and 32-bit words', () => {
    assert.equal(offered.toHex(), '0x310000204');
    assert.ok(FeatureSet.parseHex('0x310000204').equals(offered));
    assert.equal(offered.word(0), 0x10000204);
    assert.equal(offered.word(1), 0x3);
    assert.equal(offered.word(2), 0);
    assert.ok(FeatureSet.fromWords(0x10000204, 3).equals(offered));
    assert.ok(FeatureSet.fromBits(0xffff_ffff_ffff_ffffn).has(63));
  });

  it('rejects bits and text that cannot be a 64-bit feature set', () => {
    assert.throws(() => FeatureSet.of(64), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => FeatureSet.parseHex('310000204'), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => FeatureSet.parseHex('0x10000000000000000'), { code: 'INVALID_ARGUMENT' });
    assert.throws(() => FeatureSet.fromBits(1n << 64n), { code: 'INVALID_ARGUMENT' });
  });
});
