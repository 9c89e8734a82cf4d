// Sweeps over many stacks: the work item `nestlab sweep` puts on the
// cluster's JetStream work queue (one per seed) and the result a worker
// stores back (one per item, keyed by sweep id and seed). JSON payloads,
// validated on receipt like every other message.
import { Type, type Static } from '@sinclair/typebox';
import { Count, Obj, U32, validator } from '../schema-kit.js';

const Token = Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$' });

export const SweepItemSchema = Obj({
  /** Derived from the sweep's arguments, so a restarted sweep finds its own results. */
  sweep: Token,
  kind: Type.Union([Type.Literal('scenario'), Type.Literal('experiment')]),
  id: Token,
  seed: U32,
  ios: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
});
export type SweepItem = Static<typeof SweepItemSchema>;
export const sweepItem = validator(SweepItemSchema);

export const SweepResultSchema = Obj({
  sweep: Token,
  seed: U32,
  pass: Type.Boolean(),
  /** The observed outcome (scenario) or the failed verdicts (experiment), in a few words. */
  verdict: Type.String({ maxLength: 500 }),
  worker: Type.String({ minLength: 1, maxLength: 128 }),
  stack: Token,
  /** How many times the queue delivered this item (above 1: a worker died or stalled on it). */
  deliveries: Count,
  elapsedMs: Count,
  error: Type.Optional(Obj({ code: Type.String(), message: Type.String({ maxLength: 2000 }) })),
});
export type SweepResult = Static<typeof SweepResultSchema>;
export const sweepResult = validator(SweepResultSchema);
