import { PAGE_SIZE, crossing, hostPhysAddr, machineAddr, toHex } from '@nestlab/addr';
import type { HostPhysAddr, MachineAddr, Translation } from '@nestlab/addr';
import { L0Error } from '../errors.js';

/** Where the PCI hole starts: RAM above it is relocated past 4 GiB (like QEMU's pc machine). */
export const PCI_HOLE_START = 0xc000_0000n;
export const PCI_HOLE_END = 0x1_0000_0000n;

export interface Memslot {
  readonly machine: MachineAddr;
  readonly hostPhys: HostPhysAddr;
  readonly bytes: bigint;
}

const memslotLookup = crossing({
  fn: 'memslotLookup',
  from: 'machine',
  to: 'host_phys',
  by: 'memslot',
});

/** One RAM range of a memory map, in machine address space. */
export interface RamRangeSpec {
  readonly machine: bigint;
  readonly bytes: bigint;
}

/**
 * QEMU pc-style layout for `ramBytes` of RAM: [0, min(ram, 3 GiB)), the hole
 * [3 GiB, 4 GiB) for BARs, and the rest from 4 GiB.
 */
export function pcMemoryMap(ramBytes: bigint): RamRangeSpec[] {
  const low = ramBytes < PCI_HOLE_START ? ramBytes : PCI_HOLE_START;
  const ranges: RamRangeSpec[] = [{ machine: 0n, bytes: low }];
  if (ramBytes > PCI_HOLE_START) {
    ranges.push({ machine: PCI_HOLE_END, bytes: ramBytes - PCI_HOLE_START });
  }
  return ranges;
}

const PAGE = BigInt(PAGE_SIZE);

/**
 * KVM-style memslots: one per RAM range of the memory map, backed by
 * host-phys memory laid out back to back in map order. Built from an
 * explicit map, or from a RAM size (pcMemoryMap) as a shorthand.
 */
export class Memslots {
  readonly slots: readonly Memslot[];
  readonly ramBytes: bigint;

  constructor(layout: bigint | readonly RamRangeSpec[]) {
    if (typeof layout === 'bigint' && (layout <= 0n || layout % PAGE !== 0n)) {
      throw new L0Error('CONFIG_INVALID', `ramBytes ${layout} is not a positive multiple of 4096`);
    }
    const ranges = typeof layout === 'bigint' ? pcMemoryMap(layout) : layout;
    const slots: Memslot[] = [];
    let host = 0n;
    let prevEnd = -1n;
    for (const [i, r] of ranges.entries()) {
      const bad = (why: string) =>
        new L0Error('CONFIG_INVALID', `memory map range ${i} at ${toHex(r.machine)}: ${why}`);
      if (r.machine % PAGE !== 0n || r.bytes <= 0n || r.bytes % PAGE !== 0n)
        throw bad('start and size must be positive multiples of 4096');
      if (r.machine < prevEnd) throw bad('ranges must ascend without overlapping');
      if (r.machine + r.bytes > 1n << 64n) throw bad('range wraps 2^64');
      slots.push({ machine: machineAddr(r.machine), hostPhys: hostPhysAddr(host), bytes: r.bytes });
      host += r.bytes;
      prevEnd = r.machine + r.bytes;
    }
    if (slots.length === 0) throw new L0Error('CONFIG_INVALID', 'the memory map has no RAM');
    this.slots = slots;
    this.ramBytes = host;
  }

  /** machine → host-phys for [addr, addr+len), which must lie inside one slot. */
  translate(addr: MachineAddr, len = 1): Translation<HostPhysAddr> {
    const host = this.hostOf(addr, len);
    return host === null
      ? memslotLookup.fail(addr, `no memslot holds ${toHex(addr)}+${len}`)
      : memslotLookup.ok(addr, host);
  }

  /**
   * The same lookup without the recorded step, for the DMA engine's per-access
   * path: it logs and traces the access's own bus → machine → host-phys
   * record, so a step per access (two hex strings) would be made and dropped.
   */
  hostOf(addr: MachineAddr, len = 1): HostPhysAddr | null {
    for (const s of this.slots) {
      if (addr >= s.machine && addr + BigInt(len) <= s.machine + s.bytes)
        return hostPhysAddr(s.hostPhys + (addr - s.machine));
    }
    return null;
  }

  /** Whether every byte of [addr, addr+len) is RAM (slots that meet end to end count as one). */
  covers(addr: bigint, len: number): boolean {
    let at = addr;
    const end = addr + BigInt(len);
    for (;;) {
      if (at >= end) return true;
      const s = this.slots.find((x) => at >= x.machine && at < x.machine + x.bytes);
      if (!s) return false;
      at = s.machine + s.bytes;
    }
  }

  /** Whether any byte of [addr, addr+len) is RAM. */
  overlapsRam(addr: bigint, len: number): boolean {
    const end = addr + BigInt(len);
    return this.slots.some((s) => addr < s.machine + s.bytes && s.machine < end);
  }
}
