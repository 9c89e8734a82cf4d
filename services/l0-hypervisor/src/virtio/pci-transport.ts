// virtio-pci modern (spec 4.1) as a Transport: the PCI function's config
// space, BAR 4 with the regions its capabilities point at (bar-layout.ts),
// the transport registers of common cfg, the ISR, and MSI-X vectors. A write
// to the notify region is a doorbell for the queue it names.
import { toHex } from '@nestlab/addr';
import { Msi } from '@nestlab/protocol';
import {
  VIRTIO_MSI_NO_VECTOR,
  VIRTIO_PCI_ISR,
  VIRTIO_PCI_VENDOR_ID,
  modernPciDeviceId,
} from '@nestlab/virtio';
import { L0Error } from '../errors.js';
import {
  BAR_REGION,
  NOTIFY_OFF_MULTIPLIER,
  RING_BAR_INDEX,
  VIRTIO_BAR_SIZE,
} from '../pci/bar-layout.js';
import { PciConfigSpace, type MemoryBar } from '../pci/config-space.js';
import { readCommonCfg, writeCommonCfg, type CommonCfgRegisters } from './common-cfg.js';
import type { Transport, TransportPort, TransportWindow } from './transport.js';
import type { VirtioDevice } from './virtio-device.js';

type Region = keyof typeof BAR_REGION;

function regionAt(offset: number): { name: Region; within: number } | undefined {
  for (const [name, r] of Object.entries(BAR_REGION) as [
    Region,
    { offset: number; length: number },
  ][]) {
    if (offset >= r.offset && offset < r.offset + r.length)
      return { name, within: offset - r.offset };
  }
  return undefined;
}

function slice(src: Uint8Array, at: number, len: number): Uint8Array {
  const out = new Uint8Array(len);
  if (at < src.byteLength) out.set(src.subarray(at, Math.min(src.byteLength, at + len)));
  return out;
}

export class VirtioPciTransport implements Transport, CommonCfgRegisters {
  readonly kind = 'pci';
  readonly pci: PciConfigSpace;
  isr = 0;
  configMsixVector: number = VIRTIO_MSI_NO_VECTOR;
  /** queue_msix_vector of each queue. */
  readonly queueVectors: number[];
  deviceFeatureSelect = 0;
  driverFeatureSelect = 0;
  queueSelect = 0;
  configGeneration = 0;

  /** The card's own memory behind BAR 2 (rings placed there by the driver), or null. */
  readonly ringMemory: Uint8Array | null;

  constructor(
    readonly dev: VirtioDevice,
    barBase: bigint,
    private readonly port: TransportPort,
    ringBar: MemoryBar | null = null,
  ) {
    const id = dev.model.deviceId;
    this.pci = new PciConfigSpace(
      {
        vendorId: VIRTIO_PCI_VENDOR_ID,
        deviceId: modernPciDeviceId(id),
        revision: 1, // spec 4.1.2.1: non-transitional devices have revision >= 1
        classCode: dev.model.pciClass,
        subsystemVendorId: VIRTIO_PCI_VENDOR_ID,
        subsystemId: id,
      },
      barBase,
      ringBar,
    );
    this.ringMemory = ringBar ? new Uint8Array(ringBar.bytes) : null;
    // The device reaches its own memory without DMA (DeviceRingMemory asks here first).
    dev.ownMemory = (addr, len) => {
      const w = this.memoryWindow();
      if (w === null || addr < w.base || addr + BigInt(len) > w.base + BigInt(w.bytes)) return null;
      const at = Number(addr - w.base);
      return this.ringMemory!.subarray(at, at + len);
    };
    this.queueVectors = dev.queues.map(() => VIRTIO_MSI_NO_VECTOR);
    dev.interrupts = {
      // Used-buffer interrupt: ISR queue bit, then MSI on the queue's vector.
      queue: (q) => {
        this.isr |= VIRTIO_PCI_ISR.QUEUE;
        this.msi(this.queueVectors[q.index] ?? VIRTIO_MSI_NO_VECTOR);
      },
      config: () => {
        this.isr |= VIRTIO_PCI_ISR.CONFIG;
        this.msi(this.configMsixVector);
      },
    };
  }

  window(): TransportWindow | null {
    const base = this.pci.barBase();
    return base === null ? null : { base, bytes: VIRTIO_BAR_SIZE };
  }

  /** Where the ring memory BAR decodes, or null (none, or decoding off). */
  memoryWindow(): TransportWindow | null {
    if (this.ringMemory === null) return null;
    const base = this.pci.barBase(RING_BAR_INDEX);
    return base === null ? null : { base, bytes: this.ringMemory.byteLength };
  }

  /** Sends the MSI to the next layer up (Xen routes it to an event channel). */
  private msi(vector: number): void {
    const bdf = this.dev.bdf;
    if (vector === VIRTIO_MSI_NO_VECTOR || this.dev.disposed) return;
    this.port.metrics.msis.inc({ vector: String(vector) });
    if (this.port.faults.msiLost(bdf, `MSI vector ${vector}`)) return;
    this.port.bus.publish(Msi, { bdf, vector });
  }

  doorbell(q: number): Promise<void> {
    if (this.port.faults.doorbellLost(this.dev.bdf, q)) return Promise.resolve();
    return this.dev.notify(q);
  }

  /** Writing 0 to device_status (spec 4.1.4.3.1), or a function-level reset. */
  reset(): void {
    this.dev.reset();
    this.isr = 0;
    this.configMsixVector = VIRTIO_MSI_NO_VECTOR;
    this.queueVectors.fill(VIRTIO_MSI_NO_VECTOR);
    this.deviceFeatureSelect = this.driverFeatureSelect = this.queueSelect = 0;
  }

  read(offset: number, len: number): Uint8Array {
    const r = regionAt(offset);
    switch (r?.name) {
      case 'common':
        return slice(readCommonCfg(this), r.within, len);
      case 'isr': {
        // Reading the ISR clears it (spec 4.1.4.5.1).
        const out = slice(Uint8Array.of(this.isr), r.within, len);
        if (r.within === 0) this.isr = 0;
        return out;
      }
      case 'device':
        return slice(this.dev.model.config, r.within, len);
      default:
        return new Uint8Array(len); // notify, MSI-X table/PBA (not emulated), gaps
    }
  }

  async write(offset: number, bytes: Uint8Array): Promise<void> {
    const len = bytes.byteLength;
    if (len !== 1 && len !== 2 && len !== 4 && len !== 8) {
      throw new L0Error(
        'MMIO_BAD_WIDTH',
        `register write of ${len} bytes at BAR offset 0x${offset.toString(16)}`,
      );
    }
    const r = regionAt(offset);
    if (r?.name === 'common') {
      if (!writeCommonCfg(this, r.within, bytes)) this.ignored('common');
      return;
    }
    if (r && this.isDoorbell(offset, len)) {
      // The address names the queue (queue_notify_off = index); the value is not needed.
      await this.doorbell(r.within / NOTIFY_OFF_MULTIPLIER);
      return;
    }
    this.ignored(r?.name ?? 'gap');
  }

  isDoorbell(offset: number, len: number): boolean {
    const r = regionAt(offset);
    return (
      r?.name === 'notify' && r.within % NOTIFY_OFF_MULTIPLIER === 0 && (len === 2 || len === 4)
    );
  }

  private ignored(region: string): void {
    this.port.metrics.mmioIgnored.inc({ region });
  }

  inspect(): Record<string, unknown> {
    return {
      transport: this.kind,
      bar: toHex(this.pci.barBase() ?? 0n),
      isr: this.isr,
      configMsixVector: this.configMsixVector,
      queueVectors: [...this.queueVectors],
    };
  }
}
