// Test helpers: kill a spawned service the hard way (SIGKILL, as the lab's
// crash-restart experiments do), and raw requests that carry a data payload.
import type { NatsConnection } from '@nats-io/nats-core';
import {
  Ping,
  decodeReply,
  encodeRequest,
  subjectOf,
  type MessageDef,
  type ReplyOf,
  type RequestOf,
  type ServiceToken,
} from '@nestlab/protocol';
import { call } from './nats-call.js';
import type { SpawnedService } from './spawn-service.js';

/** SIGKILLs the service found by its Ping pid and waits until the process is gone. */
export async function sigkill(
  nc: NatsConnection,
  stack: string,
  token: Exclude<ServiceToken, 'lab'>,
  svc: SpawnedService,
): Promise<void> {
  const { pid } = await call(nc, stack, Ping[token], { from: 'test' });
  process.kill(pid, 'SIGKILL');
  const how = await svc.stop();
  if (how !== 'SIGKILL') throw new Error(`expected death by SIGKILL, got ${String(how)}`);
}

/** A request with a data payload; returns the reply head and data. */
export async function callData<M extends MessageDef>(
  nc: NatsConnection,
  stack: string,
  def: M,
  head: RequestOf<M>,
  data?: Uint8Array,
): Promise<{ head: ReplyOf<M>; data: Uint8Array }> {
  const subject = subjectOf(def, stack);
  const reply = await nc.request(subject, encodeRequest(def, head, data), { timeout: 5000 });
  const decoded = decodeReply(def, subject, reply.data);
  return { head: decoded.head, data: decoded.data ?? new Uint8Array() };
}
