// The device side of the init sequence (spec 3.1 "Device Initialization") and
// feature negotiation (spec 2.2), with QEMU's virtio_validate_features rule
// for iommu_platform=on devices (docs/DOMAIN.md, "Features").
import { FeatureSet, VIRTIO_F, VIRTIO_STATUS } from '@nestlab/virtio';

export interface BrokenReason {
  readonly code: string;
  readonly message: string;
}

export class DeviceStatus {
  status = 0;
  /** What the driver wrote through driver_feature_select / driver_feature. */
  driverFeatures = FeatureSet.EMPTY;
  /** Valid once FEATURES_OK was accepted; empty otherwise. */
  negotiated = FeatureSet.EMPTY;
  broken: BrokenReason | null = null;
  /** Why the last FEATURES_OK was refused, for /state and the report. */
  refusal: string | null = null;
  /**
   * A legacy (virtio 0.9) interface: no FEATURES_OK step; the features
   * written are the features in use (QEMU virtio_set_features on the write).
   */
  legacy = false;

  constructor(
    readonly offer: FeatureSet,
    readonly requireAccessPlatform: boolean,
  ) {}

  reset(): void {
    this.status = 0;
    this.driverFeatures = FeatureSet.EMPTY;
    this.negotiated = FeatureSet.EMPTY;
    this.broken = null;
    this.refusal = null;
  }

  /** driver_feature write for one 32-bit half; ignored once FEATURES_OK is set (spec 2.2.2). */
  writeDriverFeatures(select: number, word: number): boolean {
    if (this.status & VIRTIO_STATUS.FEATURES_OK || (select !== 0 && select !== 1)) return false;
    const low = select === 0 ? word : this.driverFeatures.word(0);
    const high = select === 1 ? word : this.driverFeatures.word(1);
    this.driverFeatures = FeatureSet.fromWords(low, high);
    return true;
  }

  /** A legacy driver's feature word: what the device offered of it is in use at once. */
  writeLegacyFeatures(word: number): boolean {
    if (!this.legacy) return false;
    this.driverFeatures = FeatureSet.fromWords(word, 0);
    this.negotiated = this.driverFeatures.intersect(FeatureSet.fromWords(this.offer.word(0), 0));
    return true;
  }

  /**
   * device_status write (not 0: the caller resets for 0). NEEDS_RESET belongs
   * to the device: the driver can neither set nor clear it. FEATURES_OK is
   * kept only when the driver's features pass validation; the driver sees the
   * refusal by re-reading status (spec 3.1.1 step 6).
   */
  write(value: number): void {
    let next =
      (value & 0xff & ~VIRTIO_STATUS.NEEDS_RESET) | (this.status & VIRTIO_STATUS.NEEDS_RESET);
    const settingFeaturesOk =
      (next & VIRTIO_STATUS.FEATURES_OK) !== 0 && (this.status & VIRTIO_STATUS.FEATURES_OK) === 0;
    if (settingFeaturesOk) {
      const refusal = this.validate(this.driverFeatures);
      if (refusal) {
        this.refusal = refusal;
        next &= ~VIRTIO_STATUS.FEATURES_OK;
      } else {
        this.refusal = null;
        this.negotiated = this.driverFeatures;
      }
    }
    this.status = next;
  }

  /** Null when acceptable, else why not. */
  validate(driver: FeatureSet): string | null {
    if (!driver.isSubsetOf(this.offer)) {
      const extra = FeatureSet.fromBits(driver.bits & ~this.offer.bits);
      return `driver accepted features the device did not offer: ${extra.toString()}`;
    }
    // QEMU virtio_validate_features: only a VERSION_1 driver is refused.
    if (
      this.requireAccessPlatform &&
      driver.has(VIRTIO_F.VERSION_1) &&
      !driver.has(VIRTIO_F.ACCESS_PLATFORM)
    ) {
      return 'device requires ACCESS_PLATFORM (iommu_platform=on) and the VERSION_1 driver did not accept it';
    }
    return null;
  }

  /** QEMU virtio_error: the device stops and asks for a reset. */
  markBroken(reason: BrokenReason): boolean {
    if (this.broken) return false;
    this.broken = reason;
    this.status |= VIRTIO_STATUS.NEEDS_RESET;
    return true;
  }

  /** Queues run only after DRIVER_OK, with negotiated features, and not once broken or failed. */
  get running(): boolean {
    return (
      (this.status & VIRTIO_STATUS.DRIVER_OK) !== 0 &&
      (this.legacy || (this.status & VIRTIO_STATUS.FEATURES_OK) !== 0) &&
      (this.status & (VIRTIO_STATUS.NEEDS_RESET | VIRTIO_STATUS.FAILED)) === 0
    );
  }

  has(bit: number): boolean {
    return this.negotiated.has(bit);
  }
}
