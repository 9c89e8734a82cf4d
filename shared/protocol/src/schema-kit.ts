import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { ProtocolError } from './errors.js';

/** A 64-bit address as it travels: 0x followed by 1 to 16 hex digits. */
export const HexAddr = Type.String({ pattern: '^0x[0-9a-fA-F]{1,16}$' });
export const U8 = Type.Integer({ minimum: 0, maximum: 0xff });
export const U16 = Type.Integer({ minimum: 0, maximum: 0xffff });
export const U32 = Type.Integer({ minimum: 0, maximum: 0xffffffff });
export const FrameNumber = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });
export const Count = Type.Integer({ minimum: 0, maximum: Number.MAX_SAFE_INTEGER });

/** Objects on the wire reject unknown fields: a typo is an error, not a silent default. */
export const Obj = <P extends Parameters<typeof Type.Object>[0]>(props: P) =>
  Type.Object(props, { additionalProperties: false });

export interface Validator<S extends TSchema> {
  readonly schema: S;
  check(value: unknown): value is Static<S>;
  /** Returns the value typed, or throws SCHEMA_INVALID naming the first bad field. */
  parse(value: unknown, what: string): Static<S>;
  /** Every mismatch, with its JSON-pointer path, for error messages that point at a line. */
  errorsOf(value: unknown): Iterable<{ path: string; message: string; schema: unknown }>;
}

/** Compiles a schema once, at module load; never per message. */
export function validator<S extends TSchema>(schema: S): Validator<S> {
  const compiled: TypeCheck<S> = TypeCompiler.Compile(schema);
  return {
    schema,
    check: (v): v is Static<S> => compiled.Check(v),
    errorsOf: (v) => compiled.Errors(v),
    parse(value, what) {
      if (compiled.Check(value)) return value;
      const first = compiled.Errors(value).First();
      const where = first?.path || '(root)';
      throw new ProtocolError(
        'SCHEMA_INVALID',
        `${what}: ${where}: ${first?.message ?? 'does not match the schema'}`,
      );
    },
  };
}
