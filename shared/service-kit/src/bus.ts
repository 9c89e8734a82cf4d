import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  trace,
  type Attributes,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import {
  errors as natsErrors,
  headers as natsHeaders,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/nats-core';
import {
  ProtocolError,
  decodeReply,
  decodeRequest,
  encodeErrorReply,
  encodeReply,
  encodeRequest,
  subjectOf,
  subjectTemplateOf,
  subscriptionOf,
  toCodedError,
  type FrameData,
  type MessageDef,
  type ReplyOf,
  type RequestOf,
} from '@nestlab/protocol';
import {
  ATTR,
  MESSAGING,
  MESSAGING_OPERATION,
  MESSAGING_SYSTEM_NATS,
  SERVER,
  droppedChild,
  extractBatchItems,
  extractTraceContext,
  injectBatchItems,
  injectTraceContext,
  linksOf,
  messagingSpanName,
  withBatchItems,
  type BatchItem,
} from '@nestlab/telemetry';
import type { Logger } from 'pino';
import type { MetricsRegistry } from './metrics.js';
import { FaultInjector, HeldMessage, applyFault, type Inbound } from './faults/index.js';
import { ReplyInbox } from './reply-inbox.js';

// Fault control itself is never faulted, or an experiment could not be stopped.
const CONTROL = /\.faults\.(set|list)$/;

export interface Incoming<M extends MessageDef> {
  readonly head: RequestOf<M>;
  readonly data: Uint8Array;
  readonly subject: string;
}

export type Handler<M extends MessageDef> = (
  msg: Incoming<M>,
) => Promise<Outgoing<M>> | Outgoing<M>;
export type Outgoing<M extends MessageDef> = M['reply'] extends null
  ? void
  : { body: ReplyOf<M>; data?: FrameData };

export interface SendOptions {
  params?: Record<string, string>;
  /** Bytes, or parts copied in order straight into the frame (no join first). */
  data?: FrameData;
  timeoutMs?: number;
  /**
   * A message that serves several I/Os: it travels in `parent` (default: the
   * active context), its span links to every item, and each item's context
   * rides along so the receiver can work in that item's own trace.
   */
  batch?: { parent?: Context; items: readonly BatchItem[] };
}

/**
 * The one place services touch NATS: every message is decoded, validated and
 * traced here, and every failure becomes a typed error reply or a counted,
 * logged drop. A handler's throw never reaches the process.
 * Requests go out through one shared reply inbox (reply-inbox.ts).
 */
export class Bus {
  private readonly subs: Subscription[] = [];
  /** Transport faults injected on receipt; empty unless an experiment sets a plan. */
  readonly faults = new FaultInjector();
  private readonly held = new HeldMessage();
  private readonly received;
  private readonly rejected;
  private readonly shed;
  private readonly sent;
  private readonly replied;
  private readonly failures;
  private readonly replies: ReplyInbox;
  private readonly subjects = new Map<MessageDef, string>();

  constructor(
    readonly nc: NatsConnection,
    readonly stack: string,
    private readonly tracer: Tracer,
    private readonly log: Logger,
    metrics: MetricsRegistry,
    /** Where replies come back (protocol's inboxPrefix for this seat); default `_INBOX`. */
    inboxPrefix?: string,
  ) {
    this.received = metrics.counter(
      'nestlab_bus_messages_received_total',
      'Messages received, by message kind',
      ['kind'],
    );
    this.rejected = metrics.counter(
      'nestlab_bus_messages_rejected_total',
      'Messages refused as malformed, by kind and code',
      ['kind', 'code'],
    );
    this.shed = metrics.counter(
      'nestlab_bus_messages_shed_total',
      'Messages refused because maxInFlight handlers were already running, by kind',
      ['kind'],
    );
    this.sent = metrics.counter(
      'nestlab_bus_messages_sent_total',
      'Requests and events sent, by message kind',
      ['kind'],
    );
    this.replied = metrics.counter(
      'nestlab_bus_replies_sent_total',
      'Replies sent (ok or error), by message kind',
      ['kind'],
    );
    this.failures = metrics.counter(
      'nestlab_bus_requests_failed_total',
      'Outgoing requests that failed, by kind and code',
      ['kind', 'code'],
    );
    this.replies = new ReplyInbox(nc, log, inboxPrefix);
  }

  /**
   * Handlers running at once, across every kind this bus serves. Beyond the
   * limit a request is answered OVERLOADED (transient: retry later) and an
   * event is shed and counted, so a flood cannot grow memory without bound.
   */
  maxInFlight = 4096;
  private inFlight = 0;
  private readonly beforeSendHooks: (() => void)[] = [];

  /**
   * Runs `fn` (synchronously) before every message this bus sends: state a
   * service keeps back (L0's guest RAM on its way to a file) is out before
   * anyone can act on a message that depends on it.
   */
  beforeSend(fn: () => void): void {
    this.beforeSendHooks.push(fn);
  }

  private sending(): void {
    for (const fn of this.beforeSendHooks) fn();
  }

  /** Serves one message kind on this stack, until the returned stop() (or close()). */
  handle<M extends MessageDef>(def: M, handler: Handler<M>): { stop(): void } {
    const sub = this.nc.subscribe(subscriptionOf(def, this.stack), {
      callback: (err, msg) => {
        if (err) {
          this.log.warn({ err, kind: def.name }, 'subscription error');
          return;
        }
        this.receive(def, handler, msg);
      },
    });
    this.subs.push(sub);
    return {
      stop: () => {
        sub.unsubscribe();
        const i = this.subs.indexOf(sub);
        if (i >= 0) this.subs.splice(i, 1);
      },
    };
  }

  /** Transport faults (experiments) hit here, before decoding, as on a lossy link. */
  private receive<M extends MessageDef>(def: M, handler: Handler<M>, msg: Inbound): void {
    const decision =
      this.faults.active && !CONTROL.test(msg.subject)
        ? this.faults.decide(msg.subject, msg.data.length)
        : null;
    const deliver = (m: Inbound) => {
      void this.dispatch(def, handler, m);
      this.held.release();
    };
    if (!decision) deliver(msg);
    else applyFault(decision, msg, deliver, this.held);
  }

  private respond(def: MessageDef, msg: Inbound, payload: Uint8Array): void {
    this.sending();
    this.replied.inc({ kind: def.name });
    msg.respond(payload);
  }

  private async dispatch<M extends MessageDef>(
    def: M,
    handler: Handler<M>,
    msg: Inbound,
  ): Promise<void> {
    this.received.inc({ kind: def.name });
    if (this.inFlight >= this.maxInFlight) {
      this.shed.inc({ kind: def.name });
      if (msg.reply)
        this.respond(
          def,
          msg,
          encodeErrorReply(
            new ProtocolError('OVERLOADED', `${this.maxInFlight} messages already in progress`),
          ),
        );
      return;
    }
    this.inFlight++;
    try {
      await this.process(def, handler, msg);
    } finally {
      this.inFlight--;
    }
  }

  private async process<M extends MessageDef>(
    def: M,
    handler: Handler<M>,
    msg: Inbound,
  ): Promise<void> {
    let incoming: Incoming<M>;
    try {
      const decoded = decodeRequest(def, msg.data);
      incoming = { head: decoded.head, data: decoded.data, subject: msg.subject };
    } catch (err) {
      const coded = toCodedError(err);
      this.rejected.inc({ kind: def.name, code: coded.code });
      this.log.warn(
        { subject: msg.subject, code: coded.code, reason: coded.message },
        'malformed message refused',
      );
      if (msg.reply) this.respond(def, msg, encodeErrorReply(coded));
      return;
    }
    const hdrs = msg.headers;
    let parent = hdrs ? extractTraceContext(hdrs, ROOT_CONTEXT) : ROOT_CONTEXT;
    const items = extractBatchItems(hdrs);
    if (items) parent = withBatchItems(parent, items);
    const span =
      droppedChild(parent) ??
      this.tracer.startSpan(
        messagingSpanName(MESSAGING_OPERATION.process, subjectTemplateOf(def)),
        {
          kind: def.reply ? SpanKind.SERVER : SpanKind.CONSUMER,
          attributes: {
            ...this.hopAttributes(def, msg.subject, MESSAGING_OPERATION.process),
            [MESSAGING.bodySize]: msg.data.length,
          },
          ...(items ? { links: linksOf(items.values()) } : {}),
        },
        parent,
      );
    try {
      const out = await context.with(trace.setSpan(parent, span), () => handler(incoming));
      if (def.flushBeforeReply) await this.nc.flush();
      if (msg.reply && def.reply) {
        const reply = out as { body: ReplyOf<M>; data?: FrameData };
        // Replies carry no trace context: the requester's span already frames the exchange.
        this.respond(def, msg, encodeReply(def, reply.body, reply.data));
      }
    } catch (err) {
      const coded = toCodedError(err);
      span.setStatus({ code: SpanStatusCode.ERROR, message: coded.message });
      span.setAttribute(ATTR.errorCode, coded.code);
      // Logged in the span's context: the line carries its trace_id and span_id.
      context.with(trace.setSpan(parent, span), () => {
        if (coded.kind === 'internal') this.log.error({ err, kind: def.name }, 'handler failed');
        else
          this.log.debug(
            { kind: def.name, code: coded.code, reason: coded.message },
            'request refused',
          );
      });
      // A refusal may follow some of the events too (a partial unmap's invalidation).
      if (def.flushBeforeReply) await this.nc.flush().catch(() => undefined);
      if (msg.reply) this.respond(def, msg, encodeErrorReply(coded));
    } finally {
      span.end();
    }
  }

  private subjectFor(def: MessageDef, params?: Record<string, string>): string {
    if (params) return subjectOf(def, this.stack, params);
    let s = this.subjects.get(def);
    if (s === undefined) this.subjects.set(def, (s = subjectOf(def, this.stack)));
    return s;
  }

  /** OTel messaging attributes of one NATS hop (operation name = type: `send`, `process`). */
  private hopAttributes(def: MessageDef, subject: string, operation: string): Attributes {
    const server = this.server();
    return {
      [MESSAGING.system]: MESSAGING_SYSTEM_NATS,
      [MESSAGING.operationName]: operation,
      [MESSAGING.operationType]: operation,
      [MESSAGING.destination]: subject,
      [MESSAGING.destinationTemplate]: subjectTemplateOf(def),
      ...(server ? { [SERVER.address]: server.address, [SERVER.port]: server.port } : {}),
    };
  }

  private serverSeen: { at: string; address: string; port: number } | undefined;

  /** The NATS server this connection is on now (it may change on reconnect). */
  private server(): { address: string; port: number } | undefined {
    const at = this.nc.getServer();
    if (this.serverSeen?.at !== at) {
      const m = /^(?:\w+:\/\/)?\[?([^\]]*?)\]?:(\d+)$/.exec(at);
      this.serverSeen = m ? { at, address: m[1]!, port: Number(m[2]) } : undefined;
    }
    return this.serverSeen;
  }

  private sendSpan(def: MessageDef, subject: string, kind: SpanKind, opts: SendOptions): Span {
    const items = opts.batch?.items;
    const parent = opts.batch?.parent ?? context.active();
    return (
      droppedChild(parent) ??
      this.tracer.startSpan(
        messagingSpanName(MESSAGING_OPERATION.send, subjectTemplateOf(def)),
        {
          kind,
          attributes: this.hopAttributes(def, subject, MESSAGING_OPERATION.send),
          ...(items && items.length > 0 ? { links: linksOf(items.map((i) => i.span)) } : {}),
        },
        parent,
      )
    );
  }

  /** Request/reply with a timeout; error replies come back as thrown RemoteErrors. */
  async request<M extends MessageDef>(
    def: M,
    head: RequestOf<M>,
    opts: SendOptions = {},
  ): Promise<{ head: ReplyOf<M>; data: Uint8Array }> {
    const subject = this.subjectFor(def, opts.params);
    const span = this.sendSpan(def, subject, SpanKind.CLIENT, opts);
    this.sent.inc({ kind: def.name });
    try {
      const hdrs = traceHeaders(span, opts.batch?.items);
      const payload = encodeRequest(def, head, opts.data);
      this.sending();
      const reply = await this.replies.call(subject, payload, hdrs, opts.timeoutMs ?? 5000);
      return decodeReply(def, subject, reply);
    } catch (err) {
      const mapped = mapNatsError(err, subject);
      const code = (mapped as { code?: string }).code ?? 'INTERNAL';
      this.failures.inc({ kind: def.name, code });
      span.setStatus({ code: SpanStatusCode.ERROR, message: mapped.message });
      span.setAttribute(ATTR.errorCode, code);
      throw mapped;
    } finally {
      span.end();
    }
  }

  /** Fire-and-forget, for what is fire-and-forget on hardware too (doorbells, MSIs, posted writes). */
  publish<M extends MessageDef>(def: M, head: RequestOf<M>, opts: SendOptions = {}): void {
    const subject = this.subjectFor(def, opts.params);
    const span = opts.batch ? this.sendSpan(def, subject, SpanKind.PRODUCER, opts) : undefined;
    this.sent.inc({ kind: def.name });
    const hdrs = span ? traceHeaders(span, opts.batch?.items) : traceHeaders(trace.getActiveSpan());
    this.sending();
    this.nc.publish(subject, encodeRequest(def, head, opts.data), hdrs ? { headers: hdrs } : {});
    span?.end();
  }

  /** Resolves once the NATS server has all this bus sent so far, subscriptions included. */
  async flush(): Promise<void> {
    await this.nc.flush();
  }

  async close(): Promise<void> {
    for (const s of this.subs) s.unsubscribe();
    this.subs.length = 0;
    this.replies.close();
  }
}

/** W3C trace context (and batch items) for a span; none when there is nothing to carry. */
function traceHeaders(span: Span | undefined, items?: readonly BatchItem[]): MsgHdrs | undefined {
  const sc = span?.spanContext();
  if (!span || !sc || !trace.isSpanContextValid(sc)) return undefined;
  const hdrs = injectTraceContext(natsHeaders(), trace.setSpan(ROOT_CONTEXT, span));
  if (items && items.length > 0) injectBatchItems(hdrs, items);
  return hdrs;
}

function mapNatsError(err: unknown, subject: string): Error {
  if (err instanceof ProtocolError) return err;
  if (err instanceof natsErrors.NoRespondersError) {
    return new ProtocolError('NO_RESPONDERS', `nobody serves ${subject}`, {
      cause: err,
    });
  }
  if (err instanceof natsErrors.TimeoutError) {
    return new ProtocolError('TIMEOUT', `no reply on ${subject} in time`, {
      cause: err,
    });
  }
  return err instanceof Error ? err : new Error(String(err));
}
