// What each driver generation knows of the feature bits, and whether it uses
// the DMA API at all (docs/DOMAIN.md, "What changed when"). The proposal-2014
// generation is the thread's bit 25 (docs/DOMAIN.md, "The problem"): the DMA
// API only when the device says it sits behind the bus's translation, else
// physical addresses as the legacy driver.
import type { DmaPolicy, DriverGeneration } from '@nestlab/protocol';
import { FeatureSet, VIRTIO_F, VIRTIO_F_PROPOSAL_2014 } from '@nestlab/virtio';

const AP = VIRTIO_F.ACCESS_PLATFORM;
const BUS_MAPPING = VIRTIO_F_PROPOSAL_2014.USE_BUS_MAPPING;

/** Bits a generation has never heard of: it accepts none of them, whatever it was told to want. */
export const UNKNOWN_TO: Readonly<Record<DriverGeneration, FeatureSet>> = {
  'pre-2016': FeatureSet.of(AP, BUS_MAPPING),
  // Bit 25 was never standardized: later drivers do not know it either.
  modern: FeatureSet.of(BUS_MAPPING),
  'proposal-2014': FeatureSet.of(AP),
};

/**
 * The DMA policy the driver actually uses. proposal-2014 maps through the
 * configured policy only when bit 25 was negotiated; without it the buffers'
 * physical addresses go into the ring (`legacy`). Other generations use what
 * they were configured with.
 */
export function effectiveDmaPolicy(
  configured: DmaPolicy,
  generation: DriverGeneration,
  negotiated: FeatureSet,
): DmaPolicy {
  if (generation !== 'proposal-2014') return configured;
  return negotiated.has(BUS_MAPPING) ? configured : 'legacy';
}
