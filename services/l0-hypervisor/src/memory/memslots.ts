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

/**
 * KVM-style memslots: slot 0 = [0, min(ram, 3 GiB)) at host-phys 0, the hole
 * [3 GiB, 4 GiB) for BARs, slot 1 = [4 GiB, 4 GiB + (ram - 3 GiB)) at host-phys 3 GiB.
 */
export class Memslots {
  readonly slots: readonly Memslot[];

  constructor(readonly ramBytes: bigint) {
    if (ramBytes <= 0n || ramBytes % BigInt(PAGE_SIZE) !== 0n) {
      throw new L0Error(
        'CONFIG_INVALID',
        `ramBytes ${ramBytes} is not a positive multiple of 4096`,
      );
    }
    const low = ramBytes < PCI_HOLE_START ? ramBytes : PCI_HOLE_START;
    const slots: Memslot[] = [{ machine: machineAddr(0n), hostPhys: hostPhysAddr(0n), bytes: low }];
    if (ramBytes > PCI_HOLE_START) {
      slots.push({
        machine: machineAddr(PCI_HOLE_END),
        hostPhys: hostPhysAddr(PCI_HOLE_START),
        bytes: ramBytes - PCI_HOLE_START,
      });
    }
    this.slots = slots;
  }

  /** machine → host-phys for [addr, addr+len), which must lie inside one slot. */
  translate(addr: MachineAddr, len = 1): Translation<HostPhysAddr> {
    for (const s of this.slots) {
      if (addr >= s.machine && addr + BigInt(len) <= s.machine + s.bytes) {
        return memslotLookup.ok(addr, hostPhysAddr(s.hostPhys + (addr - s.machine)));
      }
    }
    return memslotLookup.fail(addr, `no memslot holds ${toHex(addr)}+${len}`);
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
