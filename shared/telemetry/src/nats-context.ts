import {
  context,
  propagation,
  type Context,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/nats-core';

const setter: TextMapSetter<MsgHdrs> = {
  set: (carrier, key, value) => carrier.set(key, value),
};

const getter: TextMapGetter<MsgHdrs | undefined> = {
  keys: (carrier) => (carrier ? carrier.keys() : []),
  get: (carrier, key) => (carrier?.has(key) ? carrier.get(key) : undefined),
};

/** Writes W3C `traceparent`/`tracestate` for the given (default: active) context into NATS headers. */
export function injectTraceContext(
  hdrs: MsgHdrs = natsHeaders(),
  ctx: Context = context.active(),
): MsgHdrs {
  propagation.inject(ctx, hdrs, setter);
  return hdrs;
}

/** The remote parent carried by a message's headers, as a context to start spans in. */
export function extractTraceContext(
  hdrs: MsgHdrs | undefined,
  base: Context = context.active(),
): Context {
  return propagation.extract(base, hdrs, getter);
}
