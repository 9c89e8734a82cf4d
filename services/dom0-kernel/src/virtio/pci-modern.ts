// virtio-pci modern register access (Linux virtio_pci_modern_dev.c): common
// config fields at BAR + cap offset, one MMIO MemAccess per access, little
// endian. 64-bit fields are written as two 32-bit halves, low first
// (vp_iowrite64_twopart), as spec 4.1.3.1 allows.
import { addOffset, type MachineAddr } from '@nestlab/addr';
import {
  VIRTIO_PCI_COMMON_CFG,
  notifyOffset,
  type RegField,
  type VirtioPciCommonField,
} from '@nestlab/virtio';
import type { CpuMemory } from '../mm/cpu-memory.js';
import type { VirtioPciDevice } from '../pci/enumerate.js';
import type { VirtioRegs } from './regs.js';

export function encodeLe(value: number | bigint, width: 1 | 2 | 4 | 8): Uint8Array {
  const out = new Uint8Array(width);
  let v = BigInt(value);
  for (let i = 0; i < width; i++) {
    out[i] = Number(v & 0xffn);
    v >>= 8n;
  }
  return out;
}

export function decodeLe(bytes: Uint8Array): bigint {
  let v = 0n;
  for (let i = bytes.byteLength - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[i]!);
  return v;
}

/** One little-endian register read: one MMIO MemAccess (both transports' registers go this way). */
export async function readRegister(
  mem: CpuMemory,
  addr: MachineAddr,
  width: 1 | 2 | 4,
): Promise<number> {
  const b = mem.batch();
  const h = b.mmioRead(addr, width);
  return Number(decodeLe((await b.commit()).get(h)));
}

export async function writeRegister(
  mem: CpuMemory,
  addr: MachineAddr,
  width: 1 | 2 | 4,
  value: number,
): Promise<void> {
  await mem.batch().mmioWrite(addr, encodeLe(value, width)).commit();
}

export class ModernRegs implements VirtioRegs {
  readonly kind = 'pci';
  readonly notifyWidth = 2;

  constructor(
    private readonly mem: CpuMemory,
    readonly dev: VirtioPciDevice,
  ) {}

  private readAt(addr: MachineAddr, width: 1 | 2 | 4): Promise<number> {
    return readRegister(this.mem, addr, width);
  }

  private writeAt(addr: MachineAddr, width: 1 | 2 | 4, value: number): Promise<void> {
    return writeRegister(this.mem, addr, width, value);
  }

  private fieldAddr(f: RegField): MachineAddr {
    return addOffset(this.dev.common.addr, f.offset);
  }

  async read(name: VirtioPciCommonField): Promise<number> {
    const f = VIRTIO_PCI_COMMON_CFG[name];
    if (f.width === 8) {
      const lo = await this.readAt(this.fieldAddr(f), 4);
      const hi = await this.readAt(addOffset(this.fieldAddr(f), 4), 4);
      return hi * 2 ** 32 + lo;
    }
    return this.readAt(this.fieldAddr(f), f.width);
  }

  async write(name: VirtioPciCommonField, value: number | bigint): Promise<void> {
    const f = VIRTIO_PCI_COMMON_CFG[name];
    if (f.width === 8) {
      const v = BigInt(value);
      await this.writeAt(this.fieldAddr(f), 4, Number(v & 0xffff_ffffn));
      await this.writeAt(addOffset(this.fieldAddr(f), 4), 4, Number(v >> 32n));
      return;
    }
    await this.writeAt(this.fieldAddr(f), f.width, Number(value));
  }

  /** Device-specific config (virtio-blk: capacity at 0). */
  async readDeviceCfg(offset: number, width: 1 | 2 | 4): Promise<number | null> {
    if (this.dev.device === null || offset + width > this.dev.device.length) return null;
    return this.readAt(addOffset(this.dev.device.addr, offset), width);
  }

  /** Where to write the queue index to kick queue `notifyOff` (spec 4.1.4.4). */
  notifyAddr(queueNotifyOff: number): MachineAddr {
    const n = this.dev.notify;
    return addOffset(n.addr, notifyOffset(0, queueNotifyOff, n.multiplier));
  }
}
