import { busAddr } from '@nestlab/addr';
import { VIRTIO_MSI_NO_VECTOR, checkSplitQueue, isValidQueueSize, fail } from '@nestlab/virtio';
import type { SplitQueue, VirtioResult } from '@nestlab/virtio';

/** One virtqueue as the driver configured it through common cfg, plus the device's indexes. */
export class VirtQueue {
  size: number;
  enabled = false;
  desc = 0n;
  driver = 0n;
  device = 0n;
  msixVector: number = VIRTIO_MSI_NO_VECTOR;
  /** The device's last_avail_idx (free-running u16). */
  lastAvail = 0;
  /** The device's used.idx shadow (free-running u16). */
  usedIdx = 0;

  constructor(
    readonly index: number,
    readonly sizeMax: number,
  ) {
    this.size = sizeMax;
  }

  reset(): void {
    this.size = this.sizeMax;
    this.enabled = false;
    this.desc = this.driver = this.device = 0n;
    this.msixVector = VIRTIO_MSI_NO_VECTOR;
    this.lastAvail = 0;
    this.usedIdx = 0;
  }

  /** The queue in the walker's terms, checked (size, alignment, no wrap) before it is enabled. */
  split(): VirtioResult<SplitQueue> {
    if (!isValidQueueSize(this.size) || this.size > this.sizeMax) {
      return fail(
        'QUEUE_SIZE_INVALID',
        `queue ${this.index}: size ${this.size} is not a power of two up to ${this.sizeMax}`,
      );
    }
    return checkSplitQueue({
      size: this.size,
      desc: busAddr(this.desc),
      avail: busAddr(this.driver),
      used: busAddr(this.device),
    });
  }
}
