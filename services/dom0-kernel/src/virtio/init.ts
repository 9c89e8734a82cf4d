// Device initialization up to FEATURES_OK (spec 3.1.1 "Driver Requirements:
// Device Initialization"; Linux virtio_dev_probe / virtio_features_ok).
import type { DriverGeneration } from '@nestlab/protocol';
import {
  FeatureSet,
  VIRTIO_BLK_F,
  VIRTIO_F,
  VIRTIO_F_PROPOSAL_2014,
  VIRTIO_STATUS,
} from '@nestlab/virtio';
import { UNKNOWN_TO } from '../dma/generation.js';
import { Dom0Error } from '../errors.js';
import type { VirtioRegs } from './regs.js';

/** Feature bits this driver implements; it never accepts a bit outside this set. */
export const DRIVER_SUPPORTED = FeatureSet.of(
  VIRTIO_F.INDIRECT_DESC,
  VIRTIO_F.EVENT_IDX,
  VIRTIO_F.VERSION_1,
  VIRTIO_F.ACCESS_PLATFORM,
  VIRTIO_F_PROPOSAL_2014.USE_BUS_MAPPING,
  VIRTIO_BLK_F.SIZE_MAX,
  VIRTIO_BLK_F.SEG_MAX,
  VIRTIO_BLK_F.BLK_SIZE,
  VIRTIO_BLK_F.FLUSH,
);

/**
 * What the driver writes back: offered ∩ wanted ∩ implemented, less what its
 * generation never heard of: a pre-2016 driver predates bit 33 (added in 2017:
 * docs/DOMAIN.md, "What changed when"), and only proposal-2014 knows bit 25
 * (`dma/generation.ts`). VERSION_1 is always accepted: the modern transport
 * requires it.
 */
export function acceptFeatures(
  offered: FeatureSet,
  wanted: FeatureSet,
  generation: DriverGeneration,
): FeatureSet {
  const accepted = offered.intersect(wanted.with(VIRTIO_F.VERSION_1)).intersect(DRIVER_SUPPORTED);
  return accepted.without(...UNKNOWN_TO[generation].list());
}

/** Progress of one init run, kept even when a step fails (the probe reply shows it). */
export interface InitProgress {
  status: number;
  offered: FeatureSet;
  negotiated: FeatureSet;
}

const RESET_POLLS = 50;

async function setStatus(regs: VirtioRegs, p: InitProgress, bits: number): Promise<void> {
  p.status |= bits;
  await regs.write('device_status', p.status);
}

/** reset → ACKNOWLEDGE → DRIVER → features → FEATURES_OK, checked by re-reading status. */
export async function negotiate(
  regs: VirtioRegs,
  wanted: FeatureSet,
  generation: DriverGeneration,
  p: InitProgress,
): Promise<void> {
  // vp_reset: write 0, then wait until the device reads back 0.
  await regs.write('device_status', 0);
  p.status = 0;
  for (let i = 0; ; i++) {
    const s = await regs.read('device_status');
    if (s === 0) break;
    if (i >= RESET_POLLS)
      throw new Dom0Error('RESET_TIMEOUT', `device status stays 0x${s.toString(16)} after reset`);
    await new Promise((r) => setTimeout(r, 2));
  }
  await setStatus(regs, p, VIRTIO_STATUS.ACKNOWLEDGE);
  await setStatus(regs, p, VIRTIO_STATUS.DRIVER);

  await regs.write('device_feature_select', 0);
  const low = await regs.read('device_feature');
  await regs.write('device_feature_select', 1);
  const high = await regs.read('device_feature');
  p.offered = FeatureSet.fromWords(low, high);
  if (regs.legacy) return negotiateLegacy(regs, wanted, generation, p);
  if (!p.offered.has(VIRTIO_F.VERSION_1)) {
    await setStatus(regs, p, VIRTIO_STATUS.FAILED);
    throw new Dom0Error(
      'NO_VERSION_1',
      `modern device does not offer VERSION_1 (offered ${p.offered})`,
    );
  }

  const accepted = acceptFeatures(p.offered, wanted, generation);
  await regs.write('driver_feature_select', 0);
  await regs.write('driver_feature', accepted.word(0));
  await regs.write('driver_feature_select', 1);
  await regs.write('driver_feature', accepted.word(1));
  p.negotiated = accepted;

  await setStatus(regs, p, VIRTIO_STATUS.FEATURES_OK);
  const back = await regs.read('device_status');
  if (!(back & VIRTIO_STATUS.FEATURES_OK)) {
    p.status = back;
    await setStatus(regs, p, VIRTIO_STATUS.FAILED);
    const needsAp =
      p.offered.has(VIRTIO_F.ACCESS_PLATFORM) && !accepted.has(VIRTIO_F.ACCESS_PLATFORM);
    throw new Dom0Error(
      'FEATURES_REJECTED',
      needsAp && UNKNOWN_TO[generation].has(VIRTIO_F.ACCESS_PLATFORM)
        ? `device refused FEATURES_OK: it requires ACCESS_PLATFORM (bit 33), which this ${generation} driver does not know`
        : needsAp
          ? `device refused FEATURES_OK: it requires ACCESS_PLATFORM (bit 33), which the driver did not accept (wanted ${wanted.toHex()})`
          : `device refused FEATURES_OK for features ${accepted}`,
    );
  }
}

/**
 * A legacy interface (spec 3.1.2 "Legacy Interface: Device Initialization"):
 * one word of features, in use as soon as written; no FEATURES_OK to set or
 * re-read. VERSION_1 and bit 33 lie beyond the word and cannot be agreed.
 */
async function negotiateLegacy(
  regs: VirtioRegs,
  wanted: FeatureSet,
  generation: DriverGeneration,
  p: InitProgress,
): Promise<void> {
  const accepted = acceptFeatures(FeatureSet.fromWords(p.offered.word(0), 0), wanted, generation);
  await regs.write('driver_feature_select', 0);
  await regs.write('driver_feature', accepted.word(0));
  p.negotiated = accepted;
}

/** The last step (spec 3.1.1 step 8), after the queues are live. */
export async function driverOk(regs: VirtioRegs, p: InitProgress): Promise<void> {
  await setStatus(regs, p, VIRTIO_STATUS.DRIVER_OK);
}
