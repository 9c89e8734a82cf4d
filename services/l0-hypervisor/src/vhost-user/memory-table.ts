// Guest RAM as the vhost-user front-end shares it (SET_MEM_TABLE): regions of
// guest-physical space, each backed by a file descriptor (QEMU's memfd) at an
// mmap offset and mapped in QEMU's process at a user address. The backend
// never maps them: every access is a pread/pwrite on the fd, so each one is a
// call we can log. QEMU's user address is the host side of its memslot (KVM's
// userspace_addr), which is what the lab's host_phys layer stands for.
import { closeSync, readSync, writeSync } from 'node:fs';
import { busAddr, crossing, hostPhysAddr, toHex } from '@nestlab/addr';
import type { BusAddr, HostPhysAddr, MachineAddr, Translation } from '@nestlab/addr';
import { VhostUserError } from './errors.js';
import type { MemRegion } from './protocol.js';

interface Region extends MemRegion {
  readonly fd: number;
}

const memTableLookup = crossing({
  fn: 'vhostUserMemTable',
  from: 'machine',
  to: 'host_phys',
  by: 'memslot',
});
/** A vring address (QEMU's user address) back to the guest-physical address the driver wrote. */
const ringAddrLookup = crossing({
  fn: 'vhostUserRingAddr',
  from: 'host_phys',
  to: 'bus',
  by: 'memslot',
});

export class VhostMemoryTable {
  private readonly regions: readonly Region[];

  /** Takes ownership of the fds (closed by close()). */
  constructor(regions: readonly MemRegion[], fds: readonly number[]) {
    this.regions = regions
      .map((r, i) => ({ ...r, fd: fds[i] ?? -1 }))
      .sort((a, b) => (a.guestPhys < b.guestPhys ? -1 : 1));
  }

  close(): void {
    for (const r of this.regions) {
      try {
        closeSync(r.fd);
      } catch {
        // already closed
      }
    }
  }

  /** Machine (guest-physical) → QEMU user address, for [addr, addr+len) inside one region. */
  translate(addr: MachineAddr, len = 1): Translation<HostPhysAddr> {
    const end = addr + BigInt(len);
    const r = this.regions.find((x) => addr >= x.guestPhys && end <= x.guestPhys + x.bytes);
    if (!r) return memTableLookup.fail(addr, `no memory region holds ${toHex(addr)}+${len}`);
    return memTableLookup.ok(addr, hostPhysAddr(r.userAddr + (addr - r.guestPhys)));
  }

  covers(addr: bigint, len: number): boolean {
    let at = addr;
    const end = addr + BigInt(len);
    while (at < end) {
      const r = this.regions.find((x) => at >= x.guestPhys && at < x.guestPhys + x.bytes);
      if (!r) return false;
      at = r.guestPhys + r.bytes;
    }
    return true;
  }

  /** SET_VRING_ADDR's user address → the bus address the device model keeps for the ring. */
  ringAddr(user: bigint): Translation<BusAddr> {
    const from = hostPhysAddr(user);
    const r = this.regions.find((x) => user >= x.userAddr && user < x.userAddr + x.bytes);
    if (!r) return ringAddrLookup.fail(from, `no memory region maps user address ${toHex(user)}`);
    return ringAddrLookup.ok(from, busAddr(r.guestPhys + (user - r.userAddr)));
  }

  /** A user address back to guest-physical (what QEMU's IOTLB answers point at); null when unmapped. */
  userToGuest(user: bigint): bigint | null {
    const r = this.regions.find((x) => user >= x.userAddr && user < x.userAddr + x.bytes);
    return r ? r.guestPhys + (user - r.userAddr) : null;
  }

  /** The fd and file offset behind a user address run of `len` bytes. */
  private at(host: HostPhysAddr, len: number): { fd: number; pos: number } {
    const r = this.regions.find(
      (x) => host >= x.userAddr && host + BigInt(len) <= x.userAddr + x.bytes,
    );
    if (!r) throw new VhostUserError('UNMAPPED_ADDRESS', `user address ${toHex(host)}+${len}`);
    return { fd: r.fd, pos: Number(r.mmapOffset + (host - r.userAddr)) };
  }

  /** The DMA engine's RAM: pwrite at the region's offset. */
  write(host: HostPhysAddr, bytes: Uint8Array): void {
    const { fd, pos } = this.at(host, bytes.byteLength);
    io('pwrite', () => writeSync(fd, bytes, 0, bytes.byteLength, pos), bytes.byteLength);
  }

  /** The DMA engine's RAM: pread into out[at..]. */
  readInto(host: HostPhysAddr, len: number, out: Uint8Array, at: number): void {
    const { fd, pos } = this.at(host, len);
    io('pread', () => readSync(fd, out, at, len, pos), len);
  }

  inspect(): Record<string, unknown>[] {
    return this.regions.map((r) => ({
      guestPhys: toHex(r.guestPhys),
      bytes: Number(r.bytes),
      userAddr: toHex(r.userAddr),
      mmapOffset: toHex(r.mmapOffset),
    }));
  }
}

function io(what: string, fn: () => number, len: number): void {
  let n: number;
  try {
    n = fn();
  } catch (cause) {
    throw new VhostUserError('MEMORY_IO', `${what} of ${len} bytes: ${String(cause)}`, { cause });
  }
  if (n !== len) throw new VhostUserError('MEMORY_IO', `${what}: ${n} of ${len} bytes`);
}
