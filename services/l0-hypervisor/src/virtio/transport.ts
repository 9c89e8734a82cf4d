// A virtio transport (spec 4): how a driver reaches one device's registers
// and how the device's notifications reach the driver. virtio-pci modern
// today (pci-transport.ts); virtio-mmio would be a second implementation of
// the same interface, with the same device core and device model behind it.
import type { DeviceQueue } from '@nestlab/virtio';

export interface Transport {
  readonly kind: 'pci';
  /** A register read in the transport's window (the BAR for PCI); any width. */
  read(offset: number, len: number): Uint8Array;
  /** A register write; a queue notification resolves once the queue has drained. */
  write(offset: number, bytes: Uint8Array): Promise<void>;
  /** Whether a write of `len` bytes at `offset` is a queue notification (a doorbell). */
  isDoorbell(offset: number, len: number): boolean;
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
