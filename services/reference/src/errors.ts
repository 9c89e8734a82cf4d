/** Why a reference run could not produce a result (not: the stack misbehaved — that is a result). */
export const REFERENCE_ERROR_CODES = [
  'SETUP_NEEDED',
  'UNSUPPORTED_SCENARIO',
  'QEMU_START_FAILED',
  'QEMU_TIMEOUT',
  'QEMU_EXITED',
  'QMP_FAILED',
  'INITRAMFS_FAILED',
] as const;
export type ReferenceErrorCode = (typeof REFERENCE_ERROR_CODES)[number];

/** input: the caller must change something; environment: this machine lacks something; transient: retry may help. */
export type ReferenceErrorKind = 'input' | 'environment' | 'transient';

export class ReferenceError extends Error {
  override readonly name = 'ReferenceError';
  constructor(
    readonly code: ReferenceErrorCode,
    readonly kind: ReferenceErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
