// Stable error codes carried in error replies. Clients test for `code`, never
// for message text; `kind` says whose fault it is (error-family.ts).
import { errorFamily, type CodedError, type ErrorKind } from './error-family.js';

export const PROTOCOL_ERROR_CODE_KIND = {
  /** A frame too short for its head, a head that is not UTF-8, data where none belongs. */
  BAD_FRAME: 'input',
  BAD_JSON: 'input',
  SCHEMA_INVALID: 'input',
  UNKNOWN_MESSAGE: 'input',
  BAD_SUBJECT: 'input',
  /** No reply in time: worth retrying. */
  TIMEOUT: 'transient',
  /** Nobody serves the subject (yet): worth retrying. */
  NO_RESPONDERS: 'transient',
  INTERNAL: 'internal',
  /** The receiver already has its limit of messages in progress. */
  OVERLOADED: 'transient',
} as const satisfies Record<string, ErrorKind>;

export type ProtocolErrorCode = keyof typeof PROTOCOL_ERROR_CODE_KIND;
export const PROTOCOL_ERROR_CODES = Object.keys(PROTOCOL_ERROR_CODE_KIND) as ProtocolErrorCode[];

export const ProtocolError = errorFamily('ProtocolError', PROTOCOL_ERROR_CODE_KIND);
export type ProtocolError = InstanceType<typeof ProtocolError>;

/** An error reply received from another service, rethrown on the caller's side. */
export class RemoteError extends Error implements CodedError {
  override readonly name = 'RemoteError';
  constructor(
    readonly code: string,
    message: string,
    readonly kind: ErrorKind,
    readonly subject: string,
  ) {
    super(`${subject}: ${code}: ${message}`);
  }
}
