// The package's error family (shared/protocol errorFamily): every code has a
// fixed kind so the Bus turns a throw into a typed error reply and the block
// layer can count it.
import { errorFamily, isCodedError, type ErrorKind } from '@nestlab/protocol';

export const DOM0_ERROR_CODE_KIND = {
  /** No virtio-blk (1af4:1042) function on bus 0. */
  NO_DEVICE: 'guest',
  /** A virtio-mmio platform description that does not parse, or a register virtio-mmio lacks. */
  BAD_PLATFORM: 'input',
  /** A virtio-mmio device whose Version register is neither 1 (legacy) nor 2 (Linux vm_probe: -ENXIO). */
  MMIO_VERSION_UNSUPPORTED: 'guest',
  /** The capability list is malformed or lacks a required virtio capability. */
  BAD_CAPABILITY: 'guest',
  /** The device never read back status 0 after reset. */
  RESET_TIMEOUT: 'guest',
  /** A modern device that does not offer VERSION_1 (Linux vp_modern_finalize_features). */
  NO_VERSION_1: 'guest',
  /** The device cleared FEATURES_OK after the driver wrote its features (spec 3.1.1). */
  FEATURES_REJECTED: 'guest',
  /** queue_size reads 0: the queue does not exist. */
  QUEUE_UNAVAILABLE: 'guest',
  /** The device set NEEDS_RESET; in-flight I/O is failed. */
  DEVICE_NEEDS_RESET: 'guest',
  /** virtio-blk status IOERR / UNSUPP / an unknown status byte. */
  BLK_IOERR: 'guest',
  BLK_UNSUPP: 'guest',
  BLK_BAD_STATUS: 'guest',
  /** An I/O did not complete by its deadline. */
  TIMEOUT: 'transient',
  /** Driver state was reset (Dom0Configure / re-probe) under an in-flight I/O. */
  DRIVER_RESET: 'transient',
  /** dom0 ran out of pseudo-physical pages, IOVA space or bounce slots. */
  NO_MEMORY: 'transient',
  /** A pfn dom0 wanted to use is not in its P2M copy. */
  P2M_MISSING: 'internal',
  /** A request that cannot be served in the driver's state (not probed, a job running). */
  NOT_READY: 'input',
  /** A workload that cannot run (span smaller than one block, beyond the disk). */
  BAD_WORKLOAD: 'input',
  /** A reply from another service that does not make sense (wrong lengths, counts). */
  BAD_REPLY: 'internal',
  /** The device completed a used id that names no chain in flight (never posted, or done). */
  USED_ID_NOT_POSTED: 'guest',
  /** The device claimed to write more bytes (used.len) than the chain's writable buffers hold. */
  USED_LEN_TOO_LONG: 'guest',
  /** The used ring is beyond repair (used.idx jumped past the queue size): everything in flight fails. */
  DEVICE_BROKEN: 'guest',
  /** A workload asked for a history longer than a report may carry. */
  HISTORY_TOO_LONG: 'input',
} as const satisfies Record<string, ErrorKind>;

export type Dom0ErrorCode = keyof typeof DOM0_ERROR_CODE_KIND;

export const Dom0Error = errorFamily('Dom0Error', DOM0_ERROR_CODE_KIND);
export type Dom0Error = InstanceType<typeof Dom0Error>;

/** The code and message of anything thrown; unknown throws count as INTERNAL. */
export function errorInfo(err: unknown): { code: string; message: string; kind: ErrorKind } {
  if (isCodedError(err)) return { code: err.code, message: err.message, kind: err.kind };
  return {
    code: 'INTERNAL',
    message: err instanceof Error ? err.message : String(err),
    kind: 'internal',
  };
}
