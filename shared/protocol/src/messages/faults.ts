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

/**
 * Domain faults: hazards of the virtualization stack itself, armed on the
 * service that owns the state. Each kind belongs to one service; the others
 * refuse it with FAULT_KIND_UNSUPPORTED.
 *  l0:    device-reset (reset the virtio device now, mid-queue), lose-msi
 *         (drop the next `count` interrupts), lose-doorbell (ignore the next
 *         `count` queue notifies)
 *  iommu: stale-iotlb (the next `count` invalidations are lost, or late by
 *         `delayMs`), unmap-in-flight (unmap the newest live mapping now)
 *  xen:   p2m-change (move the frame behind the newest DMA-mapped page to a
 *         new machine frame, balloon-like), lose-evtchn (the next `count`
 *         event-channel notifications Xen would send for a delivered
 *         interrupt are not sent; counted per interrupt, so reproducible)
 */
export const DOMAIN_FAULT_KINDS = [
  'device-reset',
  'lose-msi',
  'lose-doorbell',
  'stale-iotlb',
  'unmap-in-flight',
  'p2m-change',
  'lose-evtchn',
] as const;
export type DomainFaultKind = (typeof DOMAIN_FAULT_KINDS)[number];

export const DomainFaultRequest = Obj({
  kind: Type.Union(DOMAIN_FAULT_KINDS.map((k) => Type.Literal(k))),
  /** How many events the fault hits (default 1). */
  count: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000 })),
  /** Let this many matching events pass first (default 0). */
  after: Type.Optional(Count),
  /** For late rather than lost events (stale-iotlb). */
  delayMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 60_000 })),
});
export type DomainFaultRequest = Static<typeof DomainFaultRequest>;

/** One domain fault that fired: what it hit, in words a log reader understands. */
export const DomainFaultEvent = Obj({
  kind: Type.String(),
  /** 0-based: which hit of this arming. */
  n: Count,
  atMs: Count,
  detail: Type.String({ maxLength: 512 }),
});
export type DomainFaultEvent = Static<typeof DomainFaultEvent>;

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
      reply: Obj({
        plan: FaultPlan,
        injected: Type.Array(InjectedFault),
        dropped: Count,
        /** Domain faults that fired since start (newest last, bounded). */
        domain: Type.Array(DomainFaultEvent),
      }),
    }),
    inject: requestMessage({
      name: `${service}.faults.inject`,
      service,
      object: 'faults',
      verb: 'inject',
      request: DomainFaultRequest,
      /** `armed`: events the fault will still hit (0 when it fired at once). */
      reply: Obj({ armed: Count }),
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
