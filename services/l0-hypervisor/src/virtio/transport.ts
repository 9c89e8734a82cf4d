// A virtio transport (spec 4): how a driver reaches one device's registers
// and how the device's notifications reach the driver: virtio-pci modern
// (pci-transport.ts) and virtio-mmio (mmio-transport.ts), with the same device
// core and device model behind both.
import type { Bus } from '@nestlab/service-kit';
import type { DeviceQueue } from '@nestlab/virtio';
import type { L0Metrics } from '../metrics.js';

/** Where a transport's registers sit in machine address space. */
export interface TransportWindow {
  readonly base: bigint;
  readonly bytes: number;
}

export interface Transport {
  readonly kind: 'pci' | 'mmio';
  /** The register window, or null while it does not decode (a PCI BAR not yet enabled). */
  window(): TransportWindow | null;
  /** A register read in the transport's window (the BAR for PCI); any width. */
  read(offset: number, len: number): Uint8Array;
  /** A register write; a queue notification resolves once the queue has drained. */
  write(offset: number, bytes: Uint8Array): Promise<void>;
  /** Whether a write of `len` bytes at `offset` is a queue notification (a doorbell). */
  isDoorbell(offset: number, len: number): boolean;
  /** A doorbell for queue `q` as the device receives it; resolves once the queue has drained. */
  doorbell(q: number): Promise<void>;
  /** Function-level reset: the transport's registers and the device back to power-on. */
  reset(): void;
  /** What /state shows of the transport. */
  inspect(): Record<string, unknown>;
}

/** How the device signals the driver; the transport decides what that is (an MSI for PCI). */
export interface DeviceInterrupts {
  /** Used-buffer notification for queue `q`. */
  queue(q: DeviceQueue): void;
  /** Configuration-change notification (also how NEEDS_RESET is signalled, spec 2.1.2). */
  config(): void;
}

/**
 * What a transport reaches beyond its device: its interrupts leave L0 as
 * `Msi` (`xen.irq.msi`) on the Bus, published by the transport itself.
 */
export interface TransportPort {
  readonly bus: Pick<Bus, 'publish'>;
  readonly metrics: L0Metrics;
  readonly faults: NotifyFaults;
}

/** The lose-msi and lose-doorbell domain faults (armed through faults/l0-faults.ts). */
export interface NotifyFaults {
  /** True when this interrupt must be lost; the fault is reported. */
  msiLost(bdf: string, what: string): boolean;
  /** True when this doorbell must be ignored; the fault is reported. */
  doorbellLost(bdf: string, queue: number): boolean;
}
