import { Type } from '@sinclair/typebox';
import { Count, Obj } from '../schema-kit.js';
import { requestMessage } from '../message.js';
import { SERVICE_TOKENS, type ServiceToken } from '../subjects.js';

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
