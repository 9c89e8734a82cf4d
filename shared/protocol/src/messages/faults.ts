import { Type, type Static } from '@sinclair/typebox';
import { Count, Obj } from '../schema-kit.js';
import { requestMessage } from '../message.js';
import type { ServiceToken } from '../subjects.js';

/** A NATS subject pattern: tokens, `*` for one token, `>` for the rest. */
const SubjectPattern = Type.String({
  pattern: '^([A-Za-z0-9_-]+|\\*)(\\.([A-Za-z0-9_-]+|\\*))*(\\.>)?$|^>$',
  maxLength: 256,
});

/**
 * One transport fault, applied where a service receives messages. Which
 * matching messages it hits is decided by a PRNG seeded from the plan's seed
 * and the rule id, consumed once per matching message: the same seed and the
 * same message order inject the same faults at the same logical points.
 */
export const FaultRule = Obj({
  id: Type.String({ pattern: '^[a-z0-9][a-z0-9-]{0,63}$' }),
  subject: SubjectPattern,
  action: Type.Union(
    ['drop', 'delay', 'duplicate', 'reorder', 'corrupt'].map((a) => Type.Literal(a)),
  ),
  /** Chance that a matching message is hit (default 1). */
  probability: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
  /** Let this many matching messages pass first. */
  after: Type.Optional(Count),
  /** Stop after this many injections. */
  limit: Type.Optional(Count),
  delayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
  jitterMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
  /** Bytes of the payload to flip (corrupt). */
  bytes: Type.Optional(Type.Integer({ minimum: 1, maximum: 64 })),
});
export type FaultRule = Static<typeof FaultRule>;

export const FaultPlan = Obj({
  seed: Type.Integer({ minimum: 0, maximum: 0xffffffff }),
  rules: Type.Array(FaultRule, { maxItems: 64 }),
});
export type FaultPlan = Static<typeof FaultPlan>;

export const InjectedFault = Obj({
  rule: Type.String(),
  action: Type.String(),
  subject: Type.String(),
  /** Which matching message (0-based) of this rule was hit. */
  n: Count,
});
export type InjectedFault = Static<typeof InjectedFault>;

function control(service: ServiceToken) {
  return {
    set: requestMessage({
      name: `${service}.faults.set`,
      service,
      object: 'faults',
      verb: 'set',
      request: FaultPlan,
      reply: Obj({ rules: Count }),
    }),
    list: requestMessage({
      name: `${service}.faults.list`,
      service,
      object: 'faults',
      verb: 'list',
      request: Obj({}),
      reply: Obj({ plan: FaultPlan, injected: Type.Array(InjectedFault), dropped: Count }),
    }),
  };
}

/** Runtime fault control, one pair per service; these subjects are never faulted themselves. */
export const FaultControl = {
  l0: control('l0'),
  xen: control('xen'),
  dom0: control('dom0'),
  iommu: control('iommu'),
} as const;
