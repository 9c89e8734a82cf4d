/**
 * Stable error codes carried in error replies. Clients test for `code`, never
 * for message text. `kind` says whose fault it is: the sender's input ('guest'
 * or 'input'), a passing condition ('transient') or a bug ('internal').
 */
export const PROTOCOL_ERROR_CODES = [
  'BAD_FRAME',
  'BAD_JSON',
  'SCHEMA_INVALID',
  'UNKNOWN_MESSAGE',
  'BAD_SUBJECT',
  'TIMEOUT',
  'NO_RESPONDERS',
  'INTERNAL',
  'OVERLOADED',
] as const;
export type ProtocolErrorCode = (typeof PROTOCOL_ERROR_CODES)[number];

export const ERROR_KINDS = ['input', 'guest', 'transient', 'internal'] as const;
export type ErrorKind = (typeof ERROR_KINDS)[number];

/** Any typed error a handler throws that should reach the caller as-is. */
export interface CodedError {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly message: string;
}

export class ProtocolError extends Error implements CodedError {
  override readonly name = 'ProtocolError';
  constructor(
    readonly code: ProtocolErrorCode,
    message: string,
    readonly kind: ErrorKind = 'input',
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

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

export function isCodedError(err: unknown): err is CodedError {
  if (!(err instanceof Error)) return false;
  const e = err as Partial<CodedError>;
  return typeof e.code === 'string' && typeof e.kind === 'string' && ERROR_KINDS.includes(e.kind);
}
