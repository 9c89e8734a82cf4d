// One shape for every package's typed errors: a class per family, one code
// union, a fixed kind per code (the Bus turns a throw into an error reply
// carrying both), and a typed predicate instead of comparing code strings.

export const ERROR_KINDS = ['input', 'guest', 'transient', 'internal'] as const;
/**
 * Whose fault an error is: the sender's input ('guest' or 'input'), a passing
 * condition ('transient') or a bug ('internal').
 */
export type ErrorKind = (typeof ERROR_KINDS)[number];

/** Any typed error a handler throws that should reach the caller as-is. */
export interface CodedError {
  readonly code: string;
  readonly kind: ErrorKind;
  readonly message: string;
}

export function isCodedError(err: unknown): err is CodedError {
  if (!(err instanceof Error)) return false;
  const e = err as Partial<CodedError>;
  return typeof e.code === 'string' && typeof e.kind === 'string' && ERROR_KINDS.includes(e.kind);
}

export interface FamilyErrorOptions {
  cause?: unknown;
  /** Overrides the code's kind (a peer's transient failure that is our bug, say). */
  kind?: ErrorKind;
}

/** An error of one family: its code is one of the family's. */
export interface FamilyError<C extends string> extends Error {
  readonly code: C;
  readonly kind: ErrorKind;
}

export interface ErrorFamily<C extends string> {
  new (code: C, message: string, options?: FamilyErrorOptions): FamilyError<C>;
  /** The kind of each code, as declared. */
  readonly kinds: Readonly<Record<C, ErrorKind>>;
  /** `err` is of this family, and (when codes are given) carries one of them. */
  is<K extends C = C>(err: unknown, ...codes: K[]): err is FamilyError<K>;
}

/**
 * Makes a package's error class. `name` is the class name logs show;
 * `kinds` lists every code with its kind, documented where it is declared:
 *
 *     export const XenError = errorFamily('XenError', { NOT_CONFIGURED: 'input', … });
 *     export type XenError = InstanceType<typeof XenError>;
 *     if (XenError.is(err, 'NOT_CONFIGURED')) …
 */
export function errorFamily<const K extends Record<string, ErrorKind>>(
  name: string,
  kinds: K,
): ErrorFamily<keyof K & string> {
  type C = keyof K & string;
  class Family extends Error implements FamilyError<C> {
    static readonly kinds: Readonly<Record<C, ErrorKind>> = kinds;
    readonly kind: ErrorKind;
    constructor(
      readonly code: C,
      message: string,
      options: FamilyErrorOptions = {},
    ) {
      super(message, options.cause === undefined ? undefined : { cause: options.cause });
      this.kind = options.kind ?? (kinds[code] as ErrorKind);
    }
    override get name(): string {
      return name;
    }
    static is<S extends C = C>(err: unknown, ...codes: S[]): err is FamilyError<S> {
      return (
        err instanceof Family && (codes.length === 0 || (codes as string[]).includes(err.code))
      );
    }
  }
  return Family;
}

/**
 * `err` carries one of `codes`, whatever its family: a peer's error reply
 * (RemoteError) or a transport failure (ProtocolError TIMEOUT, NO_RESPONDERS).
 */
export function hasCode<C extends string>(
  err: unknown,
  ...codes: C[]
): err is Error & CodedError & { readonly code: C } {
  return isCodedError(err) && (codes as string[]).includes(err.code);
}

/** The request never reached a peer or got no answer in time: worth retrying. */
export const isUnreachable = (err: unknown) => hasCode(err, 'NO_RESPONDERS', 'TIMEOUT');
