// virtio-mmio register access (Linux virtio_mmio.c): the device is found
// through the platform description (`virtio_mmio.device=<size>@<base>:<irq>`),
// not by enumeration; every control register is one aligned 32-bit access,
// little endian; 64-bit queue addresses are a low and a high register. A
// version 1 (legacy) device is told the page size at probe and gets each
// queue as a page number (QueuePFN), as the 2014 driver did it.
import { PAGE_SIZE, addOffset, addrOf, toHex, type BusAddr, type MachineAddr } from '@nestlab/addr';
import {
  MMIO_FOR_COMMON_FIELD,
  VIRTIO_ID,
  VIRTIO_MMIO,
  VIRTIO_MMIO_MAGIC,
  VIRTIO_MMIO_VERSION_LEGACY,
  VIRTIO_MMIO_VERSION_MODERN,
  mmioLegacyPfnOf,
  type MmioMappedField,
  type VirtioMmioRegister,
  type VirtioPciCommonField,
} from '@nestlab/virtio';
import { Dom0Error } from '../errors.js';
import type { CpuMemory } from '../mm/cpu-memory.js';
import { readRegister, writeRegister } from './pci-modern.js';
import type { VirtioRegs } from './regs.js';

/** One `virtio_mmio.device=` entry, parsed. */
export interface MmioWindow {
  readonly base: MachineAddr;
  readonly bytes: number;
  readonly irq: number;
}

const UNIT = { '': 1, K: 1024, M: 1024 * 1024 } as const;

/** Parses `<size>@<base>:<irq>` as Linux's vm_cmdline_set does. */
export function parseMmioDevice(text: string): MmioWindow {
  const m = /^(0x[0-9a-fA-F]+|[0-9]+)([KM]?)@(0x[0-9a-fA-F]{1,16}):([0-9]{1,4})$/.exec(text);
  if (!m)
    throw new Dom0Error('BAD_PLATFORM', `virtio_mmio.device=${text} is not <size>@<base>:<irq>`);
  const bytes = Number(m[1]) * UNIT[m[2] as keyof typeof UNIT];
  if (bytes <= VIRTIO_MMIO.CONFIG)
    throw new Dom0Error(
      'BAD_PLATFORM',
      `virtio_mmio.device=${text}: a window of ${bytes} bytes has no config space`,
    );
  return { base: addrOf('machine', BigInt(m[3]!)), bytes, irq: Number(m[4]) };
}

export class MmioRegs implements VirtioRegs {
  readonly kind = 'mmio';
  readonly notifyWidth = 4;
  /** The Version register as probe() read it. */
  version: 1 | 2 = VIRTIO_MMIO_VERSION_MODERN;

  constructor(
    private readonly mem: CpuMemory,
    readonly window: MmioWindow,
  ) {}

  private addr(reg: VirtioMmioRegister): MachineAddr {
    return addOffset(this.window.base, VIRTIO_MMIO[reg]);
  }

  readRegister(reg: VirtioMmioRegister): Promise<number> {
    return readRegister(this.mem, this.addr(reg), 4);
  }

  writeRegister(reg: VirtioMmioRegister, value: number): Promise<void> {
    return writeRegister(this.mem, this.addr(reg), 4, value >>> 0);
  }

  get legacy(): boolean {
    return this.version === VIRTIO_MMIO_VERSION_LEGACY;
  }

  /** vm_probe: MagicValue, Version 1 or 2 and a virtio-blk DeviceID, or a typed refusal. */
  async probe(): Promise<void> {
    const at = `virtio-mmio window at 0x${this.window.base.toString(16)}`;
    const magic = await this.readRegister('MAGIC_VALUE');
    if (magic !== VIRTIO_MMIO_MAGIC)
      throw new Dom0Error('NO_DEVICE', `${at}: MagicValue 0x${magic.toString(16)}`);
    const version = await this.readRegister('VERSION');
    if (version !== VIRTIO_MMIO_VERSION_MODERN && version !== VIRTIO_MMIO_VERSION_LEGACY)
      throw new Dom0Error(
        'MMIO_VERSION_UNSUPPORTED',
        `${at}: Version ${version}, this driver speaks 1 (legacy) and 2`,
      );
    this.version = version;
    const id = await this.readRegister('DEVICE_ID');
    if (id !== VIRTIO_ID.BLOCK)
      throw new Dom0Error('NO_DEVICE', `${at}: DeviceID ${id} is not virtio-blk`);
    // The page QueuePFN counts in, told once (vm_probe for version 1).
    if (this.legacy) await this.writeRegister('GUEST_PAGE_SIZE', PAGE_SIZE);
  }

  /** vm_setup_vq, version 1: QueueAlign, then the ring's page number; the QueuePFN write starts the queue. */
  async placeLegacyRing(desc: BusAddr, align: number): Promise<void> {
    const pfn = mmioLegacyPfnOf(desc, PAGE_SIZE);
    if (pfn === null)
      throw new Dom0Error(
        'QUEUE_UNAVAILABLE',
        `legacy virtio-mmio cannot take a ring at ${toHex(desc)}: QueuePFN is a 32-bit number of ${PAGE_SIZE}-byte pages`,
      );
    await this.writeRegister('QUEUE_ALIGN', align);
    await this.writeRegister('QUEUE_PFN', pfn);
  }

  /** vm_interrupt: which causes are pending, acknowledged before they are handled. */
  async takeInterrupt(): Promise<number> {
    const status = await this.readRegister('INTERRUPT_STATUS');
    if (status !== 0) await this.writeRegister('INTERRUPT_ACK', status);
    return status;
  }

  async read(name: VirtioPciCommonField): Promise<number> {
    // One QueueNotify for every queue: the notify offset is always 0.
    if (name === 'queue_notify_off') return 0;
    const reg = mapped(name).read;
    if (reg === null) throw new Dom0Error('BAD_PLATFORM', `virtio-mmio has no readable ${name}`);
    return this.readRegister(reg);
  }

  async write(name: VirtioPciCommonField, value: number | bigint): Promise<void> {
    const m = mapped(name);
    if (m.write === null)
      throw new Dom0Error('BAD_PLATFORM', `virtio-mmio has no writable ${name}`);
    const v = BigInt(value);
    await this.writeRegister(m.write, Number(v & 0xffff_ffffn));
    if ('high' in m) await this.writeRegister(m.high, Number(v >> 32n));
  }

  async readDeviceCfg(offset: number, width: 1 | 2 | 4): Promise<number | null> {
    if (VIRTIO_MMIO.CONFIG + offset + width > this.window.bytes) return null;
    return readRegister(this.mem, addOffset(this.window.base, VIRTIO_MMIO.CONFIG + offset), width);
  }

  notifyAddr(): MachineAddr {
    return this.addr('QUEUE_NOTIFY');
  }
}

function mapped(name: VirtioPciCommonField) {
  if (!(name in MMIO_FOR_COMMON_FIELD))
    throw new Dom0Error('BAD_PLATFORM', `virtio-mmio has no ${name} (an MSI-X field)`);
  return MMIO_FOR_COMMON_FIELD[name as MmioMappedField];
}
