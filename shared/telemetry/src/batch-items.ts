// A message that serves several I/Os (a batch of ring posts, one used-ring
// read for many completions) travels in the trace of one of them; the others
// are links on its spans, and each item's own context rides in one header so
// the receiver can put the work it does for that item (a device request for
// one descriptor chain) back into the item's own trace.
import {
  TraceFlags,
  createContextKey,
  isSpanContextValid,
  type Context,
  type Link,
  type SpanContext,
} from '@opentelemetry/api';
import type { MsgHdrs } from '@nats-io/nats-core';

export const BATCH_ITEMS_HEADER = 'nestlab-items';

/** One I/O a batch message serves: a receiver-meaningful key and that I/O's span. */
export interface BatchItem {
  readonly key: string;
  readonly span: SpanContext;
}

const ITEMS = createContextKey('nestlab.batch-items');
const KEY = /^[A-Za-z0-9_.:/-]{1,64}$/;
const ID = /^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$/;
/** A header is a line; keep it well inside what servers and proxies accept. */
const MAX_HEADER_BYTES = 16 * 1024;

const traceparent = (s: SpanContext) =>
  `00-${s.traceId}-${s.spanId}-${s.traceFlags & TraceFlags.SAMPLED ? '01' : '00'}`;

/** Writes `key=traceparent` pairs of the recorded items; unrecorded ones have no trace to join. */
export function injectBatchItems(hdrs: MsgHdrs, items: readonly BatchItem[]): void {
  let value = '';
  for (const it of items) {
    if (!(it.span.traceFlags & TraceFlags.SAMPLED) || !KEY.test(it.key)) continue;
    const pair = `${it.key}=${traceparent(it.span)}`;
    if (value.length + pair.length + 1 > MAX_HEADER_BYTES) break;
    value = value === '' ? pair : `${value};${pair}`;
  }
  if (value !== '') hdrs.set(BATCH_ITEMS_HEADER, value);
}

/** The items of an incoming message; malformed pairs are skipped (a header is advice, not data). */
export function extractBatchItems(hdrs: MsgHdrs | undefined): Map<string, SpanContext> | null {
  const value = hdrs?.has(BATCH_ITEMS_HEADER) ? hdrs.get(BATCH_ITEMS_HEADER) : '';
  if (!value) return null;
  const out = new Map<string, SpanContext>();
  for (const pair of value.split(';')) {
    const eq = pair.indexOf('=');
    const key = pair.slice(0, eq);
    const m = ID.exec(pair.slice(eq + 1));
    if (eq < 1 || !m || !KEY.test(key)) continue;
    const span: SpanContext = {
      traceId: m[1]!,
      spanId: m[2]!,
      traceFlags: parseInt(m[3]!, 16),
      isRemote: true,
    };
    if (isSpanContextValid(span)) out.set(key, span);
  }
  return out.size > 0 ? out : null;
}

export const withBatchItems = (ctx: Context, items: ReadonlyMap<string, SpanContext>): Context =>
  ctx.setValue(ITEMS, items);

/** The items of the message being handled (in its handler's async context). */
export function batchItemsOf(ctx: Context): ReadonlyMap<string, SpanContext> | undefined {
  return ctx.getValue(ITEMS) as ReadonlyMap<string, SpanContext> | undefined;
}

export const linksOf = (spans: Iterable<SpanContext>): Link[] =>
  [...spans].map((context) => ({ context }));
