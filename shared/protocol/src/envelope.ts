import { Type, type Static } from '@sinclair/typebox';
import { Obj } from './schema-kit.js';
import { ERROR_KINDS } from './error-family.js';

export const ErrorBody = Obj({
  code: Type.String({ minLength: 1, maxLength: 64 }),
  message: Type.String({ maxLength: 4096 }),
  kind: Type.Union(ERROR_KINDS.map((k) => Type.Literal(k))),
});
export type ErrorBody = Static<typeof ErrorBody>;

/** Every reply head is either `{ok:true, body}` or `{ok:false, error}`. */
export const ReplyHead = Type.Union([
  Obj({ ok: Type.Literal(true), body: Type.Unknown() }),
  Obj({ ok: Type.Literal(false), error: ErrorBody }),
]);
export type ReplyHead = Static<typeof ReplyHead>;
