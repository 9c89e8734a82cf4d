import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { FeatureSet, VIRTIO_F, VIRTIO_F_PROPOSAL_2014 } from '@nestlab/virtio';
import { AppHarness } from '../testing/app-harness.js';
import { shuffledP2m } from '../testing/xen-double.js';
import { acceptFeatures } from '../virtio/init.js';
import { effectiveDmaPolicy } from './generation.js';

const { VERSION_1, ACCESS_PLATFORM, INDIRECT_DESC, EVENT_IDX } = VIRTIO_F;
const BIT25 = VIRTIO_F_PROPOSAL_2014.USE_BUS_MAPPING;
const PLAIN = FeatureSet.of(VERSION_1, INDIRECT_DESC, EVENT_IDX);
const WITH_BIT25 = PLAIN.with(BIT25);
const WANT_ALL = FeatureSet.of(VERSION_1, ACCESS_PLATFORM, INDIRECT_DESC, EVENT_IDX, BIT25);
const P2M = shuffledP2m(0x20000, 512, 0x40000);

describe('proposal-2014 (bit 25 USE_BUS_MAPPING): features and the DMA policy choice', () => {
  it('only proposal-2014 accepts bit 25; it does not know bit 33', () => {
    const offer = WITH_BIT25.with(ACCESS_PLATFORM);
    assert.deepEqual(acceptFeatures(offer, WANT_ALL, 'proposal-2014').list(), [25, 28, 29, 32]);
    assert.deepEqual(acceptFeatures(offer, WANT_ALL, 'pre-2016').list(), [28, 29, 32]);
    assert.deepEqual(acceptFeatures(offer, WANT_ALL, 'modern').list(), [28, 29, 32, 33]);
  });

  it('uses the configured DMA API only when bit 25 was negotiated, else physical addresses', () => {
    assert.equal(effectiveDmaPolicy('iommu', 'proposal-2014', WITH_BIT25), 'iommu');
    assert.equal(effectiveDmaPolicy('xen-swiotlb', 'proposal-2014', WITH_BIT25), 'xen-swiotlb');
    assert.equal(effectiveDmaPolicy('iommu', 'proposal-2014', PLAIN), 'legacy');
    assert.equal(effectiveDmaPolicy('xen-swiotlb', 'proposal-2014', PLAIN), 'legacy');
    // Other generations do what they were configured to do, bit 25 or not.
    assert.equal(effectiveDmaPolicy('xen-swiotlb', 'modern', PLAIN), 'xen-swiotlb');
    assert.equal(effectiveDmaPolicy('legacy', 'pre-2016', WITH_BIT25), 'legacy');
  });
});

describe('a proposal-2014 driver probing under Xen (register double, shuffled P2M)', () => {
  let app: AppHarness;
  before(async () => {
    app = await AppHarness.start({ hangMs: 60_000 });
  });
  after(async () => {
    await app?.close();
  });

  const probe = async (offer: FeatureSet) => {
    await app.scenario({ offer }, P2M);
    await app.configure({
      generation: 'proposal-2014',
      policy: 'xen-swiotlb',
      wanted: WANT_ALL,
      queueSize: 64,
    });
    const p = await app.probe();
    assert.equal(p.ok, true, JSON.stringify(p.error));
    return p;
  };

  it('a QEMU-like device without bit 25: the ring goes out at its pseudo-physical address', async () => {
    const p = await probe(PLAIN);
    assert.equal(FeatureSet.fromBits(BigInt(p.negotiated)).has(BIT25), false);
    assert.equal(p.ring!.bus, p.ring!.pseudo, 'no DMA API: bus = pseudo-physical');
  });

  it('a device offering bit 25: negotiated, and the ring is mapped through swiotlb-xen', async () => {
    const p = await probe(WITH_BIT25);
    assert.equal(FeatureSet.fromBits(BigInt(p.negotiated)).has(BIT25), true);
    assert.notEqual(p.ring!.bus, p.ring!.pseudo, 'DMA API: bus = machine through the P2M');
  });
});
