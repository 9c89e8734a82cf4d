import type { Outcome } from '@nestlab/formats';
import type { DmaPolicy, DriverGeneration, IommuAttachment, IommuMode } from '@nestlab/protocol';

export { OUTCOMES, type Outcome } from '@nestlab/formats';

/**
 * The 2014 thread's options, in the order the console shows them: what goes
 * wrong (the bug and fixes that leave it half in place), what the thread
 * proposed (bit 25, virtio-mmio, per-bus exemptions), and what Linux and the
 * spec finally did (the Xen special case, bit 33, the ppc64 quirk).
 */
export const GROUPS = [
  { id: 'the-bug', title: 'The bug: the driver’s addresses are not what the device reaches' },
  { id: 'the-proposals', title: 'The proposals argued in the thread' },
  { id: 'the-final-fixes', title: 'The final fixes (Linux 4.6/4.8, virtio 1.1 bit 33)' },
] as const;
export type GroupId = (typeof GROUPS)[number]['id'];
/** A user's file that names no group. */
export const UNGROUPED = { id: 'other', title: 'Other scenarios' } as const;

/** Where the lab puts the one virtio-blk device: slot 4 of root bus 0000:00 (dom0 scans bus 0). */
export const DEVICE_BDF = '0000:00:04.0';
/** The segment:bus part of a BDF. */
export const busOf = (bdf: string): string => bdf.slice(0, 7);

/** One row of the seed's matrix: which stack, which driver, what must happen. */
export interface Scenario {
  readonly id: string;
  readonly title: string;
  readonly expected: Outcome;
  /** Why this outcome, in the 2014 thread's terms. */
  readonly explanation: string;
  readonly transport: 'pci' | 'mmio';
  /** virtio-mmio's register layout version (2 unless the file says 1); unused on PCI. */
  readonly mmioVersion: 1 | 2;
  readonly domain: 'plain-guest' | 'pv-dom0' | 'pv-domu';
  readonly events: readonly { balloon: { pinning: boolean } }[];
  readonly stack: {
    /** false: a plain guest straight on L0 (no Xen, identity P2M). */
    readonly xen: boolean;
    readonly machineBytes: number;
    readonly dom0Bytes: number;
  };
  readonly device: {
    /** Feature bit numbers the device offers. */
    readonly offer: readonly number[];
    readonly requireAccessPlatform: boolean;
    readonly iommu: IommuAttachment;
    readonly queueSize: number;
    /** Bytes of device memory for rings (a card's BAR); 0: none. */
    readonly ringMemoryBytes: number;
  };
  readonly iommu: {
    readonly mode: IommuMode;
    /** A per-bus virtio exemption's buses (segment:bus); empty when the platform has none. */
    readonly virtioExemptBuses: readonly string[];
  };
  readonly driver: {
    readonly generation: DriverGeneration;
    readonly policy: DmaPolicy;
    readonly wanted: readonly number[];
    readonly rings: 'ram' | 'device-memory';
  };
  readonly workload: {
    readonly ios: number;
    readonly iodepth: number;
    readonly bs: number;
    readonly rw: 'read' | 'write' | 'randread' | 'randwrite' | 'randrw';
    readonly verify: boolean;
    readonly deadlineMs: number;
  };
  /** Figures the outcome alone does not pin down. */
  readonly checks: {
    readonly allTranslated: boolean;
    readonly allBypassed: boolean;
    /** After the workload, make the device touch a bus address no mapping covers (isolation probe). */
    readonly rogueProbe: boolean;
    readonly nothingTouched: boolean;
  };
}
