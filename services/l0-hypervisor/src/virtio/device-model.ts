// What a virtio device type (blk today) adds to the generic device core: its
// identity, its configuration space, and how one descriptor chain is served.
// The queue processor knows nothing else about it (docs/ARCHITECTURE.md).
import type { BusAddr } from '@nestlab/addr';
import type { DescChain, FeatureSet, VirtioError } from '@nestlab/virtio';
import type { Attributes } from '@opentelemetry/api';

/** The device's DMA for request buffers; null / false when the access faulted. */
export interface BufferIo {
  read(addr: BusAddr, len: number): Promise<Uint8Array | null>;
  write(addr: BusAddr, bytes: Uint8Array): Promise<boolean>;
}

export type ServeOutcome =
  /** Served (well or with an error status the driver reads): `written` is the used element's len. */
  | { readonly kind: 'done'; readonly written: number; readonly attributes: Attributes }
  /** The chain cannot even be answered: the device goes NEEDS_RESET (QEMU virtio_error). */
  | { readonly kind: 'broken'; readonly error: VirtioError };

export interface ServeContext {
  /** The features the driver accepted. */
  readonly negotiated: FeatureSet;
  /** Settles when the chains taken from the ring before this one have been served. */
  readonly before: Promise<unknown>;
}

/** Requests answered, by outcome, for DeviceState. */
export interface RequestCounts {
  done: number;
  ioerr: number;
  unsupp: number;
}

export interface DeviceModel {
  /** VIRTIO_ID_* (spec 5). */
  readonly deviceId: number;
  /** PCI class code a virtio-pci transport reports. */
  readonly pciClass: number;
  /** The device-specific configuration space (spec 4.1.4.6). */
  readonly config: Uint8Array;
  readonly requests: RequestCounts;
  /** Serves one chain; never throws (a failure is an outcome). */
  serve(chain: DescChain, io: BufferIo, ctx: ServeContext): Promise<ServeOutcome>;
  /** A served chain was published in the used ring: count it. */
  completed(outcome: ServeOutcome & { kind: 'done' }): void;
  /** What /state shows of the backend. */
  inspect(): Record<string, unknown>;
  /** Power-off: caches written back, files closed. */
  close(): Promise<void>;
}
