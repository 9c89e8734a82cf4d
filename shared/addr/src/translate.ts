import { busAddr, machineAddr, pseudoPhysAddr } from './address.js';
import { crossing, type Translation } from './translation.js';
import type { BusAddr, MachineAddr, PseudoPhysAddr } from './layers.js';

// Crossings that need no table, defined once so every service names them alike.
// Crossings that need a table (P2M, IOMMU page tables, memslots) are declared
// with `crossing()` by the service that owns the table.

const legacy = crossing({ fn: 'legacyPhysAsBus', from: 'pseudo_phys', to: 'bus', by: 'identity' });
/**
 * THE escape hatch that reproduces the 2014 bug: a driver that ignores the DMA
 * API writes its own idea of a physical address into the ring as if it were a
 * bus address. Only the `legacy` DMA policy may call this.
 */
export function legacyPhysAsBus(addr: PseudoPhysAddr): Translation<BusAddr> {
  return legacy.ok(addr, busAddr(addr));
}

const direct = crossing({ fn: 'busAsMachineDirect', from: 'bus', to: 'machine', by: 'identity' });
/** No IOMMU in the path: the bus address is taken as a machine address. */
export function busAsMachineDirect(addr: BusAddr): Translation<MachineAddr> {
  return direct.ok(addr, machineAddr(addr));
}

const bypass = crossing({ fn: 'busAsMachineBypass', from: 'bus', to: 'machine', by: 'bypass' });
/**
 * An IOMMU exists but the device does not go through it (ACCESS_PLATFORM not
 * negotiated, or a platform exemption): the bus address is used as machine.
 */
export function busAsMachineBypass(addr: BusAddr): Translation<MachineAddr> {
  return bypass.ok(addr, machineAddr(addr));
}

const identityMap = crossing({
  fn: 'machineAsBusIdentity',
  from: 'machine',
  to: 'bus',
  by: 'identity',
});
/** A correct driver with no IOMMU: the bus address is the machine address. */
export function machineAsBusIdentity(addr: MachineAddr): Translation<BusAddr> {
  return identityMap.ok(addr, busAddr(addr));
}

const ioremap = crossing({
  fn: 'ioremapIdentity',
  from: 'machine',
  to: 'pseudo_phys',
  by: 'identity',
});
/**
 * A PV dom0 maps I/O memory (a device's BAR) one to one: Linux gives non-RAM
 * frames identity P2M entries, so the pseudo-physical address of a BAR page
 * is its machine address.
 */
export function ioremapIdentity(addr: MachineAddr): Translation<PseudoPhysAddr> {
  return ioremap.ok(addr, pseudoPhysAddr(addr));
}
