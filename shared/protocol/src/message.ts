import type { Static, TSchema } from '@sinclair/typebox';
import { assertToken, type ServiceToken } from './subjects.js';
import { validator, type Validator } from './schema-kit.js';

/**
 * One message kind: where it goes, what its head must look like, and whether
 * it is request/reply (must not be lost) or an event (fire-and-forget, like a
 * doorbell or an MSI on real hardware). `object` may hold `{param}` tokens that
 * are filled per message and become `*` when subscribing.
 */
export interface MessageDef<Req extends TSchema = TSchema, Rep extends TSchema = TSchema> {
  readonly name: string;
  readonly service: ServiceToken;
  readonly object: string;
  readonly verb: string;
  readonly request: Validator<Req>;
  /** Null for events: nobody replies. */
  readonly reply: Validator<Rep> | null;
  /** Whether the frame carries raw bytes after the head. */
  readonly data: 'none' | 'optional' | 'required';
  /**
   * A timing rule the serving side's Bus enforces: events its handler
   * published are flushed to the NATS server (routed to their subscribers)
   * before the reply goes out, because the reply promises they happened,
   * e.g. the IOTLB invalidation an unmap owes (docs/ARCHITECTURE.md, timing contract 3).
   */
  readonly flushBeforeReply?: boolean;
}

export type RequestOf<M> = M extends MessageDef<infer R, TSchema> ? Static<R> : never;
export type ReplyOf<M> = M extends MessageDef<TSchema, infer R> ? Static<R> : never;

export function requestMessage<Req extends TSchema, Rep extends TSchema>(spec: {
  name: string;
  service: ServiceToken;
  object: string;
  verb: string;
  request: Req;
  reply: Rep;
  data?: MessageDef['data'];
  flushBeforeReply?: boolean;
}): MessageDef<Req, Rep> {
  return {
    ...spec,
    request: validator(spec.request),
    reply: validator(spec.reply),
    data: spec.data ?? 'none',
  };
}

export function eventMessage<Req extends TSchema>(spec: {
  name: string;
  service: ServiceToken;
  object: string;
  verb: string;
  request: Req;
  data?: MessageDef['data'];
}): MessageDef<Req> & { readonly reply: null } {
  return { ...spec, request: validator(spec.request), reply: null, data: spec.data ?? 'none' };
}

const PARAM = /\{(\w+)\}/g;

/** The concrete subject of one message. */
export function subjectOf(
  def: MessageDef,
  stack: string,
  params: Record<string, string> = {},
): string {
  const object = def.object.replace(PARAM, (_m, name: string) => {
    const v = params[name];
    if (v === undefined) throw new Error(`${def.name}: missing subject parameter ${name}`);
    return assertToken(name, v);
  });
  return `nestlab.${assertToken('stack', stack)}.${def.service}.${object}.${def.verb}`;
}

/** The subject to subscribe to: parameters become single-token wildcards. */
export function subscriptionOf(def: MessageDef, stack: string): string {
  return `nestlab.${assertToken('stack', stack)}.${def.service}.${def.object.replace(PARAM, '*')}.${def.verb}`;
}

/**
 * The subject with its variable tokens left as `{name}` (the stack always,
 * device or id parameters where the object has them): what OTel calls the
 * destination template, the same for every message of a kind.
 */
export const subjectTemplateOf = (def: MessageDef): string =>
  `nestlab.{stack}.${def.service}.${def.object}.${def.verb}`;
