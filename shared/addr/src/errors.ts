export const ADDR_ERROR_CODES = [
  'ADDR_OUT_OF_RANGE',
  'ADDR_BAD_HEX',
  'FRAME_OUT_OF_RANGE',
] as const;
export type AddrErrorCode = (typeof ADDR_ERROR_CODES)[number];

/** Raised for values that cannot be an address at all; always caused by the caller's input. */
export class AddrError extends Error {
  override readonly name = 'AddrError';
  /** Bad addresses always come from the caller's input (see @nestlab/protocol CodedError). */
  readonly kind = 'input' as const;
  constructor(
    readonly code: AddrErrorCode,
    message: string,
  ) {
    super(message);
  }
}
