// virtio-mmio (spec 4.2) as a Transport: one register window at a
// base the platform describes (Linux `virtio_mmio.device=<size>@<base>:<irq>`),
// 32-bit control registers below 0x100, the device config above, and one
// interrupt line whose cause the driver reads in InterruptStatus and clears
// through InterruptACK. A QueueNotify write is the doorbell. Version 2 by
// default; version 1, the legacy interface a 2014 driver met, places queues
// by page number instead (mmio-legacy.ts).
import { toHex } from '@nestlab/addr';
import { Msi } from '@nestlab/protocol';
import {
  VIRTIO_MMIO as R,
  VIRTIO_MMIO_INT,
  VIRTIO_MMIO_MAGIC,
  VIRTIO_MMIO_VERSION_LEGACY,
  VIRTIO_MMIO_VERSION_MODERN,
  VIRTIO_PCI_VENDOR_ID,
  mmioRegisterAt,
} from '@nestlab/virtio';
import { L0Error } from '../errors.js';
import { setHalf } from './common-cfg.js';
import { MmioLegacyRegisters } from './mmio-legacy.js';
import type { Transport, TransportPort, TransportWindow } from './transport.js';
import type { VirtioDevice } from './virtio-device.js';

/** The window size QEMU's virtio-mmio devices decode (registers and config). */
export const VIRTIO_MMIO_WINDOW = 0x200;

export class VirtioMmioTransport implements Transport {
  readonly kind = 'mmio';
  interruptStatus = 0;
  deviceFeaturesSel = 0;
  driverFeaturesSel = 0;
  queueSel = 0;
  configGeneration = 0;
  /** The version 1 registers, or null for a version 2 device. */
  private readonly legacy: MmioLegacyRegisters | null;

  constructor(
    readonly dev: VirtioDevice,
    readonly base: bigint,
    readonly irq: number,
    private readonly port: TransportPort,
    readonly version: 1 | 2 = VIRTIO_MMIO_VERSION_MODERN,
  ) {
    this.legacy = version === VIRTIO_MMIO_VERSION_LEGACY ? new MmioLegacyRegisters(dev) : null;
    dev.interrupts = {
      queue: () => this.assert(VIRTIO_MMIO_INT.VRING),
      config: () => this.assert(VIRTIO_MMIO_INT.CONFIG),
    };
  }

  window(): TransportWindow {
    return { base: this.base, bytes: VIRTIO_MMIO_WINDOW };
  }

  /**
   * Asserts the interrupt line towards the next layer up: it reaches Xen as
   * the device's interrupt `irq`, routed like an MSI vector.
   */
  private assert(cause: number): void {
    const bdf = this.dev.bdf;
    this.interruptStatus |= cause;
    if (this.dev.disposed) return;
    this.port.metrics.msis.inc({ vector: `line-${this.irq}` });
    if (this.port.faults.msiLost(bdf, `interrupt line ${this.irq}`)) return;
    this.port.bus.publish(Msi, { bdf, vector: this.irq });
  }

  doorbell(q: number): Promise<void> {
    if (this.port.faults.doorbellLost(this.dev.bdf, q)) return Promise.resolve();
    return this.dev.notify(q);
  }

  /** Writing 0 to Status (spec 4.2.2.1), or a reset from outside. */
  reset(): void {
    this.dev.reset();
    this.interruptStatus = 0;
    this.deviceFeaturesSel = this.driverFeaturesSel = this.queueSel = 0;
    this.legacy?.reset();
  }

  read(offset: number, len: number): Uint8Array {
    if (offset >= R.CONFIG) {
      const out = new Uint8Array(len);
      const cfg = this.dev.model.config;
      const at = offset - R.CONFIG;
      if (at < cfg.byteLength) out.set(cfg.subarray(at, Math.min(cfg.byteLength, at + len)));
      return out;
    }
    // Control registers are read as aligned 32-bit words (spec 4.2.2.2); a
    // narrower read gets the matching bytes of the word.
    const word = this.register(offset & ~3);
    const bytes = new Uint8Array(4);
    new DataView(bytes.buffer).setUint32(0, word >>> 0, true);
    const out = new Uint8Array(len);
    out.set(bytes.subarray(offset & 3, Math.min(4, (offset & 3) + len)));
    return out;
  }

  private register(offset: number): number {
    const dev = this.dev;
    const q = dev.queues[this.queueSel];
    const name = mmioRegisterAt(offset);
    const legacy = this.legacy?.read(name, this.queueSel, this.deviceFeaturesSel);
    if (legacy !== undefined) return legacy;
    switch (name) {
      case 'MAGIC_VALUE':
        return VIRTIO_MMIO_MAGIC;
      case 'VERSION':
        return this.version;
      case 'DEVICE_ID':
        return dev.model.deviceId;
      case 'VENDOR_ID':
        return VIRTIO_PCI_VENDOR_ID;
      case 'DEVICE_FEATURES':
        return dev.status.offer.word(this.deviceFeaturesSel);
      // A QueueSel past the last queue reads QueueNumMax 0: "not available" (spec 4.2.2).
      case 'QUEUE_NUM_MAX':
        return q?.maxSize ?? 0;
      case 'QUEUE_NUM':
        return q?.size ?? 0;
      case 'QUEUE_READY':
        return q?.ready ? 1 : 0;
      case 'INTERRUPT_STATUS':
        return this.interruptStatus;
      case 'STATUS':
        return dev.status.status;
      case 'CONFIG_GENERATION':
        return this.configGeneration;
      default:
        return 0; // write-only registers, the legacy ones, gaps
    }
  }

  async write(offset: number, bytes: Uint8Array): Promise<void> {
    const len = bytes.byteLength;
    if (len !== 1 && len !== 2 && len !== 4 && len !== 8) {
      throw new L0Error(
        'MMIO_BAD_WIDTH',
        `register write of ${len} bytes at virtio-mmio offset 0x${offset.toString(16)}`,
      );
    }
    if (offset >= R.CONFIG) return this.ignored('config'); // virtio-blk config is read-only here
    // The driver MUST use 32-bit aligned accesses for control registers (spec 4.2.2.1).
    if (len !== 4 || offset % 4 !== 0) return this.ignored('width');
    const value = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
    if (this.isDoorbell(offset, len)) {
      // QueueNotify carries the queue index.
      await this.doorbell(value);
      return;
    }
    if (!this.apply(offset, value)) this.ignored(mmioRegisterAt(offset) ?? 'gap');
  }

  /** One control register write; false when it was ignored. */
  private apply(offset: number, value: number): boolean {
    const dev = this.dev;
    const q = dev.queues[this.queueSel];
    const name = mmioRegisterAt(offset);
    const legacy = this.legacy?.write(name, value, this.queueSel, this.driverFeaturesSel);
    if (legacy !== undefined) return legacy;
    switch (name) {
      case 'DEVICE_FEATURES_SEL':
        this.deviceFeaturesSel = value;
        return true;
      case 'DRIVER_FEATURES_SEL':
        this.driverFeaturesSel = value;
        return true;
      case 'DRIVER_FEATURES':
        return dev.status.writeDriverFeatures(this.driverFeaturesSel, value);
      case 'QUEUE_SEL':
        this.queueSel = value;
        return true;
      case 'QUEUE_NUM':
        return q?.configure('size', value) ?? false;
      case 'QUEUE_READY':
        // Only 1 starts a queue; a live queue ignores a second 1.
        if (!q || value !== 1 || q.ready) return false;
        dev.enableQueue(q);
        return true;
      case 'INTERRUPT_ACK':
        this.interruptStatus &= ~value;
        return true;
      case 'STATUS':
        if (value === 0) this.reset();
        else dev.status.write(value);
        return true;
      case 'QUEUE_DESC_LOW':
      case 'QUEUE_DESC_HIGH':
      case 'QUEUE_AVAIL_LOW':
      case 'QUEUE_AVAIL_HIGH':
      case 'QUEUE_USED_LOW':
      case 'QUEUE_USED_HIGH': {
        if (!q) return false;
        const key = name.startsWith('QUEUE_DESC')
          ? 'desc'
          : name.startsWith('QUEUE_AVAIL')
            ? 'driver'
            : 'device';
        // A live ring ignores the write (no moving it under the device).
        return q.configure(key, setHalf(q[key], name.endsWith('HIGH') ? 4 : 0, value));
      }
      default:
        return false; // read-only, legacy (version 1) and shared-memory registers
    }
  }

  isDoorbell(offset: number, len: number): boolean {
    return offset === R.QUEUE_NOTIFY && len === 4;
  }

  private ignored(register: string): void {
    this.port.metrics.mmioIgnored.inc({ region: `mmio:${register}` });
  }

  inspect(): Record<string, unknown> {
    return {
      transport: this.kind,
      mmio: toHex(this.base),
      version: this.version,
      ...(this.legacy ? { guestPageSize: this.legacy.guestPageSize } : {}),
      irq: this.irq,
      interruptStatus: this.interruptStatus,
    };
  }
}
