// PCI enumeration the way a kernel does it through config space: scan bus 0,
// find the modern virtio-blk function, walk its capability list (spec 4.1.4)
// and read the BARs the capabilities point into. Nothing about the device's
// register layout is assumed beyond what the capabilities say.
import { machineAddr, type MachineAddr } from '@nestlab/addr';
import { PciConfig, isCodedError } from '@nestlab/protocol';
import {
  PCI_CAP_ID_MSIX,
  PCI_CAP_ID_VNDR,
  PCI_CFG,
  PCI_COMMAND,
  PCI_MSIX,
  PCI_STATUS_CAP_LIST,
  VIRTIO_ID,
  VIRTIO_PCI_CAP,
  VIRTIO_PCI_CAP_LAYOUT as CAP,
  VIRTIO_PCI_COMMON_CFG_SIZE,
  VIRTIO_PCI_NOTIFY_CAP_MULT,
  VIRTIO_PCI_NOTIFY_CAP_SIZE,
  VIRTIO_PCI_VENDOR_ID,
  modernPciDeviceId,
  pciBarOffset,
} from '@nestlab/virtio';
import type { BusPort } from '../bus-port.js';
import { Dom0Error } from '../errors.js';

export interface VirtioCapRegion {
  readonly bar: number;
  readonly offset: number;
  readonly length: number;
  /** Machine address of the region (BAR base + offset): MMIO is identity-mapped for dom0. */
  readonly addr: MachineAddr;
}

export interface VirtioPciDevice {
  readonly bdf: string;
  readonly common: VirtioCapRegion;
  readonly notify: VirtioCapRegion & { readonly multiplier: number };
  readonly isr: VirtioCapRegion;
  readonly device: VirtioCapRegion | null;
  readonly msix: { readonly capOffset: number; readonly tableSize: number } | null;
  /** Device memory a shared-memory capability announces (a card's room for its rings), or null. */
  readonly shm: VirtioCapRegion | null;
}

const MAX_CAPS = 48; // (256 - 64) / 4: a longer list must loop.
export const bdfOf = (slot: number, fn = 0) =>
  `0000:00:${slot.toString(16).padStart(2, '0')}.${fn}`;

export class PciConfigSpace {
  constructor(
    private readonly bus: BusPort,
    readonly bdf: string,
  ) {}
  async read(offset: number, size: 1 | 2 | 4): Promise<number> {
    return (await this.bus.request(PciConfig, { bdf: this.bdf, op: 'read', offset, size })).head
      .value;
  }
  async write(offset: number, size: 1 | 2 | 4, value: number): Promise<void> {
    await this.bus.request(PciConfig, { bdf: this.bdf, op: 'write', offset, size, value });
  }
}

/** Scans bus 0, slots 0..31, function 0, for 1af4:1042. */
export async function findVirtioBlk(bus: BusPort): Promise<string> {
  const want = modernPciDeviceId(VIRTIO_ID.BLOCK);
  for (let slot = 0; slot < 32; slot++) {
    const bdf = bdfOf(slot);
    let id: number;
    try {
      id = await new PciConfigSpace(bus, bdf).read(PCI_CFG.VENDOR_ID, 4);
    } catch (err) {
      // An empty slot may answer with an error instead of all-ones; a dead L0 may not.
      if (isCodedError(err) && (err.kind === 'guest' || err.kind === 'input')) continue;
      throw err;
    }
    if ((id & 0xffff) === VIRTIO_PCI_VENDOR_ID && id >>> 16 === want) return bdf;
  }
  throw new Dom0Error('NO_DEVICE', `no virtio-blk (1af4:${want.toString(16)}) on PCI bus 0`);
}

async function barBase(cfg: PciConfigSpace, bar: number): Promise<MachineAddr> {
  const low = await cfg.read(pciBarOffset(bar), 4);
  if (low & 1)
    throw new Dom0Error('BAD_CAPABILITY', `BAR${bar} is an I/O BAR; virtio caps need memory`);
  let base = BigInt(low & ~0xf) & 0xffff_ffffn;
  if (((low >> 1) & 3) === 2) {
    if (bar === 5) throw new Dom0Error('BAD_CAPABILITY', 'BAR5 cannot be a 64-bit BAR');
    base |= BigInt(await cfg.read(pciBarOffset(bar + 1), 4)) << 32n;
  }
  if (base === 0n) throw new Dom0Error('BAD_CAPABILITY', `BAR${bar} is not placed (reads 0)`);
  return machineAddr(base);
}

/** Walks the capability list of `bdf` (spec 4.1.4) and enables memory, bus mastering and MSI-X. */
export async function probeVirtioPci(bus: BusPort, bdf: string): Promise<VirtioPciDevice> {
  const cfg = new PciConfigSpace(bus, bdf);
  const status = await cfg.read(PCI_CFG.STATUS, 2);
  if (!(status & PCI_STATUS_CAP_LIST)) {
    throw new Dom0Error('BAD_CAPABILITY', `${bdf} has no capability list`);
  }
  const found = new Map<number, { bar: number; offset: number; length: number; at: number }>();
  let msix: { capOffset: number; tableSize: number } | null = null;
  let at = (await cfg.read(PCI_CFG.CAPABILITY_LIST, 1)) & 0xfc;
  const seen = new Set<number>();
  while (at !== 0) {
    if (at < 0x40 || seen.has(at) || seen.size >= MAX_CAPS) {
      throw new Dom0Error(
        'BAD_CAPABILITY',
        `${bdf} capability list loops or points at 0x${at.toString(16)}`,
      );
    }
    seen.add(at);
    const id = await cfg.read(at + CAP.cap_vndr.offset, 1);
    const next = (await cfg.read(at + CAP.cap_next.offset, 1)) & 0xfc;
    if (id === PCI_CAP_ID_VNDR) {
      const type = await cfg.read(at + CAP.cfg_type.offset, 1);
      // The first capability of each type wins (spec 4.1.4: "the driver SHOULD use the first").
      if (!found.has(type)) {
        found.set(type, {
          bar: await cfg.read(at + CAP.bar.offset, 1),
          offset: await cfg.read(at + CAP.offset.offset, 4),
          length: await cfg.read(at + CAP.length.offset, 4),
          at,
        });
      }
    } else if (id === PCI_CAP_ID_MSIX) {
      const flags = await cfg.read(at + PCI_MSIX.FLAGS, 2);
      msix = { capOffset: at, tableSize: (flags & PCI_MSIX.FLAGS_QSIZE) + 1 };
    }
    at = next;
  }

  const bases = new Map<number, MachineAddr>();
  const region = async (type: number, name: string, minLen: number): Promise<VirtioCapRegion> => {
    const c = found.get(type);
    if (c === undefined)
      throw new Dom0Error('BAD_CAPABILITY', `${bdf} has no virtio ${name} capability`);
    if (c.bar > 5) throw new Dom0Error('BAD_CAPABILITY', `${name} capability names BAR${c.bar}`);
    if (c.length < minLen) {
      throw new Dom0Error(
        'BAD_CAPABILITY',
        `${name} capability is ${c.length} bytes, needs ${minLen}`,
      );
    }
    let base = bases.get(c.bar);
    if (base === undefined) {
      base = await barBase(cfg, c.bar);
      bases.set(c.bar, base);
    }
    return {
      bar: c.bar,
      offset: c.offset,
      length: c.length,
      addr: machineAddr(base + BigInt(c.offset)),
    };
  };
  const common = await region(VIRTIO_PCI_CAP.COMMON_CFG, 'common', VIRTIO_PCI_COMMON_CFG_SIZE - 4);
  const notify = await region(VIRTIO_PCI_CAP.NOTIFY_CFG, 'notify', 2);
  const capLen = await cfg.read(found.get(VIRTIO_PCI_CAP.NOTIFY_CFG)!.at + CAP.cap_len.offset, 1);
  if (capLen < VIRTIO_PCI_NOTIFY_CAP_SIZE) {
    throw new Dom0Error('BAD_CAPABILITY', `notify capability is ${capLen} bytes, needs 20`);
  }
  const multiplier = await cfg.read(
    found.get(VIRTIO_PCI_CAP.NOTIFY_CFG)!.at + VIRTIO_PCI_NOTIFY_CAP_MULT.offset,
    4,
  );
  const isr = await region(VIRTIO_PCI_CAP.ISR_CFG, 'ISR', 1);
  const device = found.has(VIRTIO_PCI_CAP.DEVICE_CFG)
    ? await region(VIRTIO_PCI_CAP.DEVICE_CFG, 'device', 8)
    : null;
  const shm = found.has(VIRTIO_PCI_CAP.SHARED_MEMORY_CFG)
    ? await region(VIRTIO_PCI_CAP.SHARED_MEMORY_CFG, 'shared memory', 4096)
    : null;

  // pci_enable_device + pci_set_master, then MSI-X on (pci_enable_msix). An
  // emulation that refuses these writes is tolerated: the lab's L0 may not model them.
  await tolerate(async () => {
    const cmd = await cfg.read(PCI_CFG.COMMAND, 2);
    await cfg.write(PCI_CFG.COMMAND, 2, cmd | PCI_COMMAND.MEMORY | PCI_COMMAND.MASTER);
  });
  if (msix !== null) {
    const m = msix;
    await tolerate(async () => {
      const flags = await cfg.read(m.capOffset + PCI_MSIX.FLAGS, 2);
      await cfg.write(m.capOffset + PCI_MSIX.FLAGS, 2, flags | PCI_MSIX.FLAGS_ENABLE);
    });
  }
  return { bdf, common, notify: { ...notify, multiplier }, isr, device, msix, shm };
}

async function tolerate(fn: () => Promise<void>): Promise<void> {
  try {
    await fn();
  } catch (err) {
    if (isCodedError(err) && (err.kind === 'guest' || err.kind === 'input')) return;
    throw err;
  }
}
