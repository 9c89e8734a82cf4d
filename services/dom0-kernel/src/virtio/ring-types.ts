// What the block layer hands the ring driver and gets back, and the ring's
// options. Split from split-ring-driver.ts so the pieces stay small.
import type { BusAddr, MachineAddr } from '@nestlab/addr';
import type { SpanContext, Tracer } from '@opentelemetry/api';
import type { CoherentRegion } from '../dma/policy.js';
import type { CpuLoad, CpuStore } from '../mm/cpu-memory.js';

export interface RingBuffer {
  bus: BusAddr;
  len: number;
  writable: boolean;
}

/** One request's chain and what the CPU does around it. */
export interface ChainRequest<T> {
  readonly token: T;
  readonly buffers: readonly RingBuffer[];
  /** The request's own stores (header, data): they go out before the ring stores. */
  readonly stores: readonly CpuStore[];
  /** Loads the driver makes once the chain is used (status byte, read data). */
  readonly loads: readonly CpuLoad[];
  /** The I/O's root span: the harvest's links, and the device's trace for this chain. */
  readonly io?: SpanContext;
}

export interface RingOptions {
  size: number;
  ring: CoherentRegion;
  /** Room for one 3-entry indirect table per descriptor, when INDIRECT_DESC was negotiated. */
  indirectPool: CoherentRegion | null;
  eventIdx: boolean;
  notify: MachineAddr;
  /** Doorbell width: 2 (virtio-pci notify region) or 4 (virtio-mmio QueueNotify). */
  notifyWidth?: 2 | 4;
  queueIndex: number;
  /** Names this queue's chains for L0 (`<device token>.q<queue>`), so it traces each in its I/O. */
  chainKeyPrefix?: string;
  /** For the harvest's span in the oldest in-flight I/O's trace. */
  tracer?: Tracer;
  /** Device misbehaviour the ring caught and survived (counted by the caller, never thrown). */
  onDeviceError?: (code: DeviceErrorCode, detail: string) => void;
}

/** What a used-ring read can catch a device doing; DEVICE_BROKEN is thrown, the others reported. */
export type DeviceErrorCode = 'USED_ID_NOT_POSTED' | 'USED_LEN_TOO_LONG' | 'DEVICE_BROKEN';

export interface Harvested<T> {
  token: T;
  len: number;
  /** The chain's completion loads, in the order it asked for them. */
  loads: Uint8Array[];
}

export interface PostResult {
  head: number;
  kicked: boolean;
  /** Chains that went out in the same message. */
  batched: number;
}

/** A chain the device may hold: posted, not yet seen in the used ring. */
export interface InFlight<T> {
  readonly req: ChainRequest<T>;
  readonly descs: number[];
  /** Its batch went out: the device may complete it any time now. */
  sent: boolean;
}

export const INDIRECT_ENTRIES = 3;
/** The largest batch an idle ring polls for right after its doorbell. */
export const POLL_MAX_CHAINS = 4;
export const u16 = (n: number) => n & 0xffff;
