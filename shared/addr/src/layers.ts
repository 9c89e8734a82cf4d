import type { Brand } from './brand.js';

/** What dom0 believes is physical memory (a PV guest's "physical" address). */
export type PseudoPhysAddr = Brand<bigint, 'PseudoPhysAddr'>;
/** Xen's physical memory; the same numbers are L0's guest-physical addresses. */
export type MachineAddr = Brand<bigint, 'MachineAddr'>;
/** The dma_addr_t a driver writes into a ring and a device emits (an IOVA behind an IOMMU). */
export type BusAddr = Brand<bigint, 'BusAddr'>;
/** An offset into L0's RAM backing. */
export type HostPhysAddr = Brand<bigint, 'HostPhysAddr'>;

/** Pseudo-physical frame number. Frames are numbers: 2^64 bytes / 4 KiB < 2^53. */
export type Pfn = Brand<number, 'Pfn'>;
/** Machine frame number. */
export type Mfn = Brand<number, 'Mfn'>;

export const LAYERS = ['pseudo_phys', 'machine', 'bus', 'host_phys'] as const;
export type Layer = (typeof LAYERS)[number];

export interface LayerAddr {
  pseudo_phys: PseudoPhysAddr;
  machine: MachineAddr;
  bus: BusAddr;
  host_phys: HostPhysAddr;
}
export type AnyAddr = LayerAddr[Layer];
