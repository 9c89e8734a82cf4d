// The vhost-user backend's error family: what the front-end (QEMU) sent
// wrong, what the machine refused, and our own faults. A bad message closes
// the connection with its code logged; it never takes the process down.
import { errorFamily } from '@nestlab/protocol';

export const VHOST_USER_ERROR_KIND = {
  /** A header whose version, flags or size no message has. */
  BAD_HEADER: 'input',
  /** A request code this backend does not implement. */
  UNSUPPORTED_REQUEST: 'input',
  /** A payload of the wrong size or with a field out of range. */
  BAD_PAYLOAD: 'input',
  /** A message came with fewer file descriptors than it needs. */
  BAD_FDS: 'input',
  /** A ring address that no memory region maps. */
  UNMAPPED_ADDRESS: 'guest',
  /** An IOTLB miss the front-end never answered (no back-end channel, or no UPDATE in time). */
  IOTLB_MISS_UNANSWERED: 'guest',
  /** usocket (the native fd-passing addon) is not installed or did not build. */
  ADDON_MISSING: 'internal',
  /** pread/pwrite on a guest memory fd failed. */
  MEMORY_IO: 'transient',
  INTERNAL: 'internal',
} as const;

export const VhostUserError = errorFamily('VhostUserError', VHOST_USER_ERROR_KIND);
export type VhostUserError = InstanceType<typeof VhostUserError>;
