// A type-0 PCI configuration header with a capability list, modelled like
// QEMU's PCIDevice: config bytes plus a per-byte write mask, so read-only
// bits stay put and BAR sizing (write all ones, read back) works as on hardware.
import {
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_VNDR,
  PCI_CFG,
  PCI_COMMAND,
  PCI_MSIX,
  PCI_STATUS_CAP_LIST,
  VIRTIO_PCI_CAP,
  VIRTIO_PCI_CAP_SIZE,
  VIRTIO_PCI_NOTIFY_CAP_SIZE,
  pciBarOffset,
} from '@nestlab/virtio';
import {
  BAR_REGION,
  MSIX_TABLE_SIZE,
  NOTIFY_OFF_MULTIPLIER,
  RING_BAR_INDEX,
  RING_SHM_ID,
  VIRTIO_BAR_INDEX,
  VIRTIO_BAR_SIZE,
} from './bar-layout.js';

export const PCI_CONFIG_SIZE = 256;
/** PCIe extended config space is 4 KiB; we have no extended caps, so it reads 0. */
export const PCIE_CONFIG_SIZE = 4096;
/** BAR low bits: memory, 64-bit (type 0b10), prefetchable. */
const BAR_FLAGS_64_PREFETCH = 0x0c;
const PCI_COMMAND_INTX_DISABLE = 0x400;
/** struct virtio_pci_cap64 (spec 4.1.4.9 shared memory): a cap plus offset_hi and length_hi. */
const SHM_CAP_AT = 0x90;
const SHM_CAP_LEN = 24;

/** A BAR of device memory (its own base and power-of-two size). */
export interface MemoryBar {
  readonly base: bigint;
  readonly bytes: number;
}

export interface PciIdentity {
  vendorId: number;
  deviceId: number;
  revision: number;
  /** base class << 16 | sub class << 8 | prog-if */
  classCode: number;
  subsystemVendorId: number;
  subsystemId: number;
}

export class PciConfigSpace {
  private readonly bytes = new Uint8Array(PCI_CONFIG_SIZE);
  private readonly wmask = new Uint8Array(PCI_CONFIG_SIZE);
  private readonly view = new DataView(this.bytes.buffer);

  constructor(
    id: PciIdentity,
    barBase: bigint,
    private readonly ringBar: MemoryBar | null = null,
  ) {
    const v = this.view;
    v.setUint16(PCI_CFG.VENDOR_ID, id.vendorId, true);
    v.setUint16(PCI_CFG.DEVICE_ID, id.deviceId, true);
    // Firmware enabled memory decoding when it placed the BAR.
    v.setUint16(PCI_CFG.COMMAND, PCI_COMMAND.MEMORY, true);
    this.mask16(
      PCI_CFG.COMMAND,
      PCI_COMMAND.MEMORY | PCI_COMMAND.MASTER | PCI_COMMAND_INTX_DISABLE,
    );
    v.setUint16(PCI_CFG.STATUS, PCI_STATUS_CAP_LIST, true);
    v.setUint8(PCI_CFG.REVISION_ID, id.revision);
    v.setUint8(PCI_CFG.CLASS_PROG, id.classCode & 0xff);
    v.setUint8(PCI_CFG.CLASS_DEVICE, (id.classCode >> 8) & 0xff);
    v.setUint8(PCI_CFG.CLASS_BASE, (id.classCode >> 16) & 0xff);
    v.setUint16(PCI_CFG.SUBSYSTEM_VENDOR_ID, id.subsystemVendorId, true);
    v.setUint16(PCI_CFG.SUBSYSTEM_ID, id.subsystemId, true);
    v.setUint8(PCI_CFG.INTERRUPT_LINE, 0xff);
    this.wmask[PCI_CFG.INTERRUPT_LINE] = 0xff;
    v.setUint8(PCI_CFG.INTERRUPT_PIN, 1);

    const lo = pciBarOffset(VIRTIO_BAR_INDEX);
    v.setUint32(lo, Number(barBase & 0xffff_ffffn) | BAR_FLAGS_64_PREFETCH, true);
    v.setUint32(lo + 4, Number(barBase >> 32n), true);
    this.mask32(lo, ~(VIRTIO_BAR_SIZE - 1) >>> 0);
    this.mask32(lo + 4, 0xffff_ffff);
    if (ringBar) {
      const r = pciBarOffset(RING_BAR_INDEX);
      v.setUint32(r, Number(ringBar.base & 0xffff_ffffn) | BAR_FLAGS_64_PREFETCH, true);
      v.setUint32(r + 4, Number(ringBar.base >> 32n), true);
      this.mask32(r, ~(ringBar.bytes - 1) >>> 0);
      this.mask32(r + 4, 0xffff_ffff);
    }

    this.buildCaps();
  }

  // Capability list (spec 4.1.4): COMMON, ISR, DEVICE, NOTIFY (vendor caps), then MSI-X.
  private buildCaps(): void {
    const v = this.view;
    const caps: [number, number, number, number][] = [
      [0x40, VIRTIO_PCI_CAP.COMMON_CFG, BAR_REGION.common.offset, BAR_REGION.common.length],
      [0x50, VIRTIO_PCI_CAP.ISR_CFG, BAR_REGION.isr.offset, BAR_REGION.isr.length],
      [0x60, VIRTIO_PCI_CAP.DEVICE_CFG, BAR_REGION.device.offset, BAR_REGION.device.length],
      [0x70, VIRTIO_PCI_CAP.NOTIFY_CFG, BAR_REGION.notify.offset, BAR_REGION.notify.length],
    ];
    const msix = 0x84;
    v.setUint8(PCI_CFG.CAPABILITY_LIST, 0x40);
    caps.forEach(([at, type, offset, length], i) => {
      const notify = type === VIRTIO_PCI_CAP.NOTIFY_CFG;
      v.setUint8(at, PCI_CAP_ID_VNDR);
      v.setUint8(at + 1, caps[i + 1]?.[0] ?? msix);
      v.setUint8(at + 2, notify ? VIRTIO_PCI_NOTIFY_CAP_SIZE : VIRTIO_PCI_CAP_SIZE);
      v.setUint8(at + 3, type);
      v.setUint8(at + 4, VIRTIO_BAR_INDEX);
      v.setUint32(at + 8, offset, true);
      v.setUint32(at + 12, length, true);
      if (notify) v.setUint32(at + 16, NOTIFY_OFF_MULTIPLIER, true);
    });
    v.setUint8(msix, PCI_CAP_ID_MSIX);
    v.setUint8(msix + 1, this.ringBar ? SHM_CAP_AT : 0);
    if (this.ringBar) {
      const at = SHM_CAP_AT;
      v.setUint8(at, PCI_CAP_ID_VNDR);
      v.setUint8(at + 1, 0);
      v.setUint8(at + 2, SHM_CAP_LEN);
      v.setUint8(at + 3, VIRTIO_PCI_CAP.SHARED_MEMORY_CFG);
      v.setUint8(at + 4, RING_BAR_INDEX);
      v.setUint8(at + 5, RING_SHM_ID);
      v.setUint32(at + 8, 0, true);
      v.setUint32(at + 12, this.ringBar.bytes, true);
    }
    // Table size is encoded N-1; enable and function-mask bits are writable.
    v.setUint16(msix + PCI_MSIX.FLAGS, MSIX_TABLE_SIZE - 1, true);
    this.mask16(msix + PCI_MSIX.FLAGS, PCI_MSIX.FLAGS_ENABLE | 0x4000);
    v.setUint32(msix + PCI_MSIX.TABLE, BAR_REGION.msixTable.offset | VIRTIO_BAR_INDEX, true);
    v.setUint32(msix + PCI_MSIX.PBA, BAR_REGION.msixPba.offset | VIRTIO_BAR_INDEX, true);
  }

  private mask16(at: number, m: number): void {
    this.wmask[at] = m & 0xff;
    this.wmask[at + 1] = (m >> 8) & 0xff;
  }

  private mask32(at: number, m: number): void {
    for (let i = 0; i < 4; i++) this.wmask[at + i] = (m >>> (8 * i)) & 0xff;
  }

  /** Little-endian read of `size` bytes; bytes past the header (extended space) read 0. */
  read(offset: number, size: 1 | 2 | 4): number {
    let value = 0;
    for (let i = 0; i < size; i++) {
      const b = offset + i < PCI_CONFIG_SIZE ? (this.bytes[offset + i] ?? 0) : 0;
      value |= b << (8 * i);
    }
    return value >>> 0;
  }

  /** Only bits set in the write mask change (QEMU pci_default_write_config). */
  write(offset: number, size: 1 | 2 | 4, value: number): void {
    for (let i = 0; i < size; i++) {
      const at = offset + i;
      if (at >= PCI_CONFIG_SIZE) break;
      const m = this.wmask[at] ?? 0;
      const b = (value >>> (8 * i)) & 0xff;
      this.bytes[at] = ((this.bytes[at] ?? 0) & ~m) | (b & m);
    }
  }

  /** Where BAR 4 (or `index`) currently decodes, or null when memory decoding is off. */
  barBase(index = VIRTIO_BAR_INDEX): bigint | null {
    if ((this.view.getUint16(PCI_CFG.COMMAND, true) & PCI_COMMAND.MEMORY) === 0) return null;
    const lo = pciBarOffset(index);
    const low = BigInt((this.view.getUint32(lo, true) & ~0xf) >>> 0);
    return (BigInt(this.view.getUint32(lo + 4, true)) << 32n) | low;
  }
}
