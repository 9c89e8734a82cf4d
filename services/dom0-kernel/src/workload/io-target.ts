// What a job submits its I/Os to: the block device of the driver, or a
// plain in-memory disk in tests.
import type { BlkIo } from '../block/blk-request.js';
import type { IoResult } from '../block/block-device.js';

export interface IoTarget {
  submit(io: BlkIo, deadlineMs: number): Promise<IoResult>;
  /**
   * VIRTIO_BLK_F_FLUSH was negotiated. Without it the device is write-through
   * (spec 5.2.6.2: a device that does not offer FLUSH must not cache writes):
   * a completed write is durable at once, and no FLUSH is ever sent.
   */
  readonly canFlush?: boolean;
  /**
   * The device instance now: bumped by every reset/re-init the driver performs.
   * Results carry the epoch they completed in. Absent: the device is never reset.
   */
  epoch?(): number;
}
