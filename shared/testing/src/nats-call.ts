// Test helpers: a request, with or without a data payload, over a raw NATS
// connection, encoded and decoded with the protocol's codec, as another
// service would send it.
import assert from 'node:assert/strict';
import type { NatsConnection } from '@nats-io/nats-core';
import {
  RemoteError,
  decodeReply,
  encodeRequest,
  subjectOf,
  type MessageDef,
  type ReplyOf,
  type RequestOf,
} from '@nestlab/protocol';

export async function call<M extends MessageDef>(
  nc: NatsConnection,
  stack: string,
  def: M,
  head: RequestOf<M>,
): Promise<ReplyOf<M>> {
  return (await callData(nc, stack, def, head)).head;
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

/** Sends raw bytes and returns the error reply, failing the test on success. */
export async function callRawError(
  nc: NatsConnection,
  stack: string,
  def: MessageDef,
  bytes: Uint8Array,
): Promise<RemoteError> {
  const subject = subjectOf(def, stack);
  const reply = await nc.request(subject, bytes, { timeout: 5000 });
  try {
    decodeReply(def, subject, reply.data);
  } catch (err) {
    assert.ok(err instanceof RemoteError, String(err));
    return err;
  }
  assert.fail(`${def.name} succeeded, expected an error reply`);
}

/** The error reply of a request that must fail. */
export async function callError<M extends MessageDef>(
  nc: NatsConnection,
  stack: string,
  def: M,
  head: RequestOf<M>,
): Promise<RemoteError> {
  return callRawError(nc, stack, def, encodeRequest(def, head));
}

export async function metricsText(adminUrl: string): Promise<string> {
  return (await fetch(`${adminUrl}/metrics`)).text();
}
