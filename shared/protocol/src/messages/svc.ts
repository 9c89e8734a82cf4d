import { Type } from '@sinclair/typebox';
import { Count, Obj } from '../schema-kit.js';
import { requestMessage } from '../message.js';
import { SERVICE_TOKENS, type ServiceToken } from '../subjects.js';
import { ClockMs } from './common.js';

const PingRequest = Obj({ from: Type.String({ minLength: 1, maxLength: 64 }) });
const PingReply = Obj({
  service: Type.Union(SERVICE_TOKENS.map((s) => Type.Literal(s))),
  stack: Type.String(),
  pid: Count,
  uptimeMs: Count,
  ready: Type.Boolean(),
});

function ping(service: ServiceToken) {
  return requestMessage({
    name: `${service}.svc.ping`,
    service,
    object: 'svc',
    verb: 'ping',
    request: PingRequest,
    reply: PingReply,
  });
}

/** Liveness over NATS, one per service: answers with who and where it is. */
export const Ping = {
  l0: ping('l0'),
  xen: ping('xen'),
  dom0: ping('dom0'),
  iommu: ping('iommu'),
  lab: ping('lab'),
} as const;

/**
 * Who runs a job on this stack's fleet now. A lab (CLI or console) answers
 * while it runs one, and asks before it starts its own, so two runs never
 * configure one fleet under each other (the second is refused, naming the first).
 */
export const RunOwner = requestMessage({
  name: 'lab.run.owner',
  service: 'lab',
  object: 'run',
  verb: 'owner',
  request: Obj({ from: Type.String({ minLength: 1, maxLength: 64 }) }),
  reply: Obj({
    pid: Count,
    what: Type.String({ minLength: 1, maxLength: 200 }),
    sinceMs: ClockMs,
  }),
});
