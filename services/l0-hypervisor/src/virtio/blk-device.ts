// The emulated virtio-blk PCI function: transport registers, status machine,
// queues, interrupts and the disk behind them. One object per configured device.
import { toHex } from '@nestlab/addr';
import type { DeviceSetup, IommuAttachment, ReplyOf, DeviceState } from '@nestlab/protocol';
import { deviceToken } from '@nestlab/protocol';
import {
  FeatureSet,
  VIRTIO_F,
  VIRTIO_ID,
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_ISR,
  VIRTIO_PCI_VENDOR_ID,
  modernPciDeviceId,
} from '@nestlab/virtio';
import { DeviceQueue } from '@nestlab/virtio';
import type { RamBackingCheck, VirtioError } from '@nestlab/virtio';
import { blkConfigBytes } from '../blk/blk-config.js';
import type { DiskBackend } from '../blk/disk-backend.js';
import type { DmaDevice } from '../dma/dma-engine.js';
import type { L0Metrics } from '../metrics.js';
import { PciConfigSpace } from '../pci/config-space.js';
import { DeviceStatus } from './device-status.js';

/** PCI_CLASS_STORAGE_SCSI, as QEMU's virtio-blk-pci reports (virtio_blk_pci_class_init). */
const PCI_CLASS_STORAGE_SCSI = 0x010000;

export interface DeviceHooks {
  readonly metrics: L0Metrics;
  /** Publishes an MSI to the next layer up (xen.irq.msi). */
  raiseMsi(bdf: string, vector: number): void;
  /** Whether RAM backs a ring area as this device addresses it (checked at queue_enable). */
  ramBacked(dev: VirtioBlkDevice): RamBackingCheck;
}

export class VirtioBlkDevice implements DmaDevice {
  readonly token: string;
  readonly iommu: IommuAttachment;
  readonly pci: PciConfigSpace;
  readonly status: DeviceStatus;
  readonly queues: DeviceQueue[];
  /** queue_msix_vector of each queue (virtio-pci). */
  readonly queueVectors: number[];
  readonly blkConfig: Uint8Array;
  isr = 0;
  configMsixVector: number = VIRTIO_MSI_NO_VECTOR;
  deviceFeatureSelect = 0;
  driverFeatureSelect = 0;
  queueSelect = 0;
  configGeneration = 0;
  /** Bumped on every reset: work started before it must not write back. */
  epoch = 0;
  disposed = false;
  readonly requests = { done: 0, ioerr: 0, unsupp: 0 };

  constructor(
    readonly bdf: string,
    setup: DeviceSetup,
    readonly barBase: bigint,
    readonly disk: DiskBackend,
    private readonly hooks: DeviceHooks,
  ) {
    this.token = deviceToken(bdf);
    this.iommu = setup.iommu;
    this.pci = new PciConfigSpace(
      {
        vendorId: VIRTIO_PCI_VENDOR_ID,
        deviceId: modernPciDeviceId(VIRTIO_ID.BLOCK),
        revision: 1, // spec 4.1.2.1: non-transitional devices have revision >= 1
        classCode: PCI_CLASS_STORAGE_SCSI,
        subsystemVendorId: VIRTIO_PCI_VENDOR_ID,
        subsystemId: VIRTIO_ID.BLOCK,
      },
      barBase,
    );
    this.status = new DeviceStatus(FeatureSet.parseHex(setup.offer), setup.requireAccessPlatform);
    this.queues = [new DeviceQueue(0, setup.queueSizeMax)];
    this.queueVectors = this.queues.map(() => VIRTIO_MSI_NO_VECTOR);
    this.blkConfig = blkConfigBytes(setup.diskBytes, setup.queueSizeMax);
  }

  accessPlatform(): boolean {
    return this.status.has(VIRTIO_F.ACCESS_PLATFORM);
  }

  get serial(): string {
    return `nestlab-${this.bdf.slice(5)}`;
  }

  /** Writing 0 to device_status (spec 4.1.4.3.1): everything back to power-on. */
  reset(): void {
    this.epoch++;
    this.status.reset();
    for (const q of this.queues) q.reset();
    this.queueVectors.fill(VIRTIO_MSI_NO_VECTOR);
    this.isr = 0;
    this.configMsixVector = VIRTIO_MSI_NO_VECTOR;
    this.deviceFeatureSelect = this.driverFeatureSelect = this.queueSelect = 0;
  }

  /** Used-buffer interrupt: ISR queue bit, then MSI on the queue's vector. */
  raiseQueue(q: DeviceQueue): void {
    this.isr |= VIRTIO_PCI_ISR.QUEUE;
    this.msi(this.queueVectors[q.index] ?? VIRTIO_MSI_NO_VECTOR);
  }

  /** Config-change interrupt (also how NEEDS_RESET is signalled, spec 2.1.2). */
  raiseConfig(): void {
    this.isr |= VIRTIO_PCI_ISR.CONFIG;
    this.msi(this.configMsixVector);
  }

  private msi(vector: number): void {
    if (vector === VIRTIO_MSI_NO_VECTOR || this.disposed) return;
    this.hooks.metrics.msis.inc({ vector: String(vector) });
    this.hooks.raiseMsi(this.bdf, vector);
  }

  /** A hostile or broken ring: NEEDS_RESET, the reason kept, a config interrupt (QEMU virtio_error). */
  /** queue_enable: the queue's checks, the RAM backing of its areas among them. */
  enableQueue(q: DeviceQueue): void {
    const r = q.enable(this.hooks.ramBacked(this));
    if (!r.ok) this.fail(r.error);
  }

  fail(error: VirtioError | { code: string; message: string }): void {
    if (!this.status.markBroken({ code: error.code, message: error.message })) return;
    this.hooks.metrics.ringErrors.inc({ code: error.code });
    this.raiseConfig();
  }

  get brokenReason(): string | null {
    const b = this.status.broken;
    return b ? `${b.code}: ${b.message}` : null;
  }

  state(): ReplyOf<typeof DeviceState> {
    return {
      status: this.status.status,
      offered: this.status.offer.toHex(),
      negotiated: this.status.negotiated.toHex(),
      queues: this.queues.map((q) => ({
        index: q.index,
        size: q.size,
        enabled: q.ready,
        desc: toHex(q.desc),
        driver: toHex(q.driver),
        device: toHex(q.device),
        lastAvail: q.nextAvail,
        used: q.nextUsed,
      })),
      brokenReason: this.brokenReason,
      requests: { ...this.requests },
    };
  }

  /** /state view: the reply plus names and where things are. */
  inspect() {
    return {
      bdf: this.bdf,
      iommu: this.iommu,
      bar: toHex(this.pci.barBase() ?? 0n),
      ...this.state(),
      offeredNames: this.status.offer.names(),
      negotiatedNames: this.status.negotiated.names(),
      driverFeatures: this.status.driverFeatures.toHex(),
      featuresRefusal: this.status.refusal,
      isr: this.isr,
      configMsixVector: this.configMsixVector,
      queueVectors: [...this.queueVectors],
      disk: { path: this.disk.path, bytes: this.disk.bytes },
    };
  }
}
