// The package's error family (shared/protocol errorFamily): a stable code, and
// whose fault it is, so service-kit's Bus turns a throw into a typed error reply.
import { errorFamily, type ErrorKind } from '@nestlab/protocol';

export const L0_ERROR_CODE_KIND = {
  /** A domain's CPU touched a machine frame Xen did not grant it (CpuFrames). */
  ACCESS_DENIED: 'guest',
  /** The machine address hits neither RAM (a memslot) nor a device BAR. */
  MEMORY_UNREACHABLE: 'guest',
  /** An MMIO write whose width no register has (1, 2, 4 or 8 bytes). */
  MMIO_BAD_WIDTH: 'guest',
  /** A device DMA access was refused (IOMMU fault, no memory behind the address). */
  DMA_FAULT: 'guest',
  /** No device at that PCI address or subject token. */
  NO_SUCH_DEVICE: 'input',
  /** The bytes after the head do not match what the ops or the access ask for. */
  DATA_LENGTH_MISMATCH: 'input',
  /** A MemAccess with ops after a doorbell that does not declare afterDoorbell: 'drained'. */
  ORDER_UNDECLARED: 'input',
  /** An L0Configure / CpuFrames request that cannot describe a machine. */
  CONFIG_INVALID: 'input',
  /** The disk image could not be opened, read or written. */
  DISK_IO: 'transient',
  INTERNAL: 'internal',
} as const satisfies Record<string, ErrorKind>;

export type L0ErrorCode = keyof typeof L0_ERROR_CODE_KIND;

export const L0Error = errorFamily('L0Error', L0_ERROR_CODE_KIND);
export type L0Error = InstanceType<typeof L0Error>;
