// What the driver core needs of a transport's registers, named by the
// virtio-pci common cfg fields: ModernRegs (virtio-pci) and MmioRegs
// (virtio-mmio) implement it, so init, the virtqueue and recovery are shared.
import type { BusAddr, MachineAddr } from '@nestlab/addr';
import type { VirtioPciCommonField } from '@nestlab/virtio';

export interface VirtioRegs {
  readonly kind: 'pci' | 'mmio';
  /** Bytes of a doorbell write: 2 (the queue index in a notify region) or 4 (QueueNotify). */
  readonly notifyWidth: 2 | 4;
  /**
   * A legacy (virtio 0.9) interface, virtio-mmio version 1: no VERSION_1 and
   * no FEATURES_OK step, one feature word, and the queue placed by
   * placeLegacyRing instead of three addresses and queue_enable.
   */
  readonly legacy?: boolean;
  /** Legacy only: QueueAlign and QueuePFN for the selected queue's ring at `desc` (the legacy layout). */
  placeLegacyRing?(desc: BusAddr, align: number): Promise<void>;
  read(name: VirtioPciCommonField): Promise<number>;
  write(name: VirtioPciCommonField, value: number | bigint): Promise<void>;
  /** Device-specific config (virtio-blk: capacity at 0); null when the device has none there. */
  readDeviceCfg(offset: number, width: 1 | 2 | 4): Promise<number | null>;
  /** Where a doorbell for the queue with this notify offset goes. */
  notifyAddr(queueNotifyOff: number): MachineAddr;
}
