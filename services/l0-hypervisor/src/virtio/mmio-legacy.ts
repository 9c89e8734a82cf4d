// The registers of a virtio-mmio version 1 device (spec 4.2.4 "Legacy
// interface"), beside the version 2 ones mmio-transport.ts serves. A legacy
// driver (Linux vm_setup_vq for version 1) writes GuestPageSize once at probe,
// then per queue: QueueSel, reads QueuePFN (0: not in use) and QueueNumMax,
// writes QueueNum, QueueAlign and QueuePFN. The QueuePFN write places the
// ring and makes the queue live (there is no QueueReady); 0 releases it.
// Features are one 32-bit window each way and take effect as written: there
// is no FEATURES_OK step.
import {
  VIRTIO_MMIO_LEGACY_DEFAULT_ALIGN,
  VIRTIO_MMIO_MODERN_ONLY,
  mmioLegacyRingAreas,
  type VirtioMmioRegister,
} from '@nestlab/virtio';
import type { VirtioDevice } from './virtio-device.js';

/** Version 1 queue placement state; what it does not answer, the version 2 code does. */
export class MmioLegacyRegisters {
  /** Bytes per guest page; kept across a device reset (Linux writes it once, in vm_probe). */
  guestPageSize = 0;
  private readonly align: number[];
  private readonly pfn: number[];

  constructor(private readonly dev: VirtioDevice) {
    dev.status.legacy = true;
    this.align = dev.queues.map(() => VIRTIO_MMIO_LEGACY_DEFAULT_ALIGN);
    this.pfn = dev.queues.map(() => 0);
  }

  /** Status 0: queues unplaced, alignment back to its default. */
  reset(): void {
    this.align.fill(VIRTIO_MMIO_LEGACY_DEFAULT_ALIGN);
    this.pfn.fill(0);
  }

  /** A register read as version 1 answers it, or undefined for one version 2 answers alike. */
  read(
    name: VirtioMmioRegister | undefined,
    queueSel: number,
    featuresSel: number,
  ): number | undefined {
    if (name === undefined) return undefined;
    if (VIRTIO_MMIO_MODERN_ONLY.has(name)) return 0;
    switch (name) {
      // One 32-bit window of features: the legacy interface has no more (QEMU answers 0 past it).
      case 'DEVICE_FEATURES':
        return featuresSel === 0 ? this.dev.status.offer.word(0) : 0;
      // Non-zero: the queue is in use (spec 4.2.4, step 2 of the queue setup).
      case 'QUEUE_PFN':
        return this.pfn[queueSel] ?? 0;
      default:
        return undefined;
    }
  }

  /** A control register write as version 1 takes it: true/false (taken/ignored), undefined for the shared ones. */
  write(
    name: VirtioMmioRegister | undefined,
    value: number,
    queueSel: number,
    featuresSel: number,
  ): boolean | undefined {
    if (name === undefined) return undefined;
    if (VIRTIO_MMIO_MODERN_ONLY.has(name)) return false;
    const q = this.dev.queues[queueSel];
    switch (name) {
      case 'DRIVER_FEATURES':
        return featuresSel === 0 && this.dev.status.writeLegacyFeatures(value);
      case 'GUEST_PAGE_SIZE':
        this.guestPageSize = value;
        return true;
      case 'QUEUE_ALIGN':
        if (!q || q.ready) return false;
        this.align[queueSel] = value;
        return true;
      case 'QUEUE_PFN':
        return q ? this.place(q.index, value) : false;
      default:
        return undefined;
    }
  }

  /** QueuePFN: 0 releases the queue; a page places its ring there and starts it, checked as QueueReady would. */
  private place(index: number, pfn: number): boolean {
    const q = this.dev.queues[index]!;
    if (pfn === 0) {
      q.reset();
      this.pfn[index] = 0;
      return true;
    }
    if (q.ready) return false; // no moving a live ring under the device
    this.pfn[index] = pfn;
    const areas = mmioLegacyRingAreas({
      size: q.size,
      pfn,
      guestPageSize: this.guestPageSize,
      queueAlign: this.align[index]!,
    });
    if (!areas.ok) {
      this.dev.fail(areas.error);
      return true;
    }
    q.configure('desc', areas.value.desc);
    q.configure('driver', areas.value.avail);
    q.configure('device', areas.value.used);
    this.dev.enableQueue(q);
    return true;
  }
}
