import { context, SpanKind, SpanStatusCode, trace, type Tracer } from '@opentelemetry/api';
import {
  errors as natsErrors,
  headers as natsHeaders,
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
  subscriptionOf,
  toCodedError,
  type MessageDef,
  type ReplyOf,
  type RequestOf,
} from '@nestlab/protocol';
import {
  ATTR,
  MESSAGING,
  MESSAGING_SYSTEM_NATS,
  extractTraceContext,
  injectTraceContext,
} from '@nestlab/telemetry';
import type { Logger } from 'pino';
import type { MetricsRegistry } from './metrics.js';
import { FaultInjector, HeldMessage, applyFault, type Inbound } from './faults/index.js';

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
  : { body: ReplyOf<M>; data?: Uint8Array };

export interface SendOptions {
  params?: Record<string, string>;
  data?: Uint8Array;
  timeoutMs?: number;
}

/**
 * The one place services touch NATS: every message is decoded, validated and
 * traced here, and every failure becomes a typed error reply or a counted,
 * logged drop. A handler's throw never reaches the process.
 */
export class Bus {
  private readonly subs: Subscription[] = [];
  /** Transport faults injected on receipt; empty unless an experiment sets a plan. */
  readonly faults = new FaultInjector();
  private readonly held = new HeldMessage();
  private readonly received;
  private readonly rejected;
  private readonly sent;
  private readonly failures;

  constructor(
    readonly nc: NatsConnection,
    readonly stack: string,
    private readonly tracer: Tracer,
    private readonly log: Logger,
    metrics: MetricsRegistry,
  ) {
    this.received = metrics.counter(
      'nestlab_messages_received_total',
      'Messages received, by message kind',
    );
    this.rejected = metrics.counter(
      'nestlab_messages_rejected_total',
      'Messages refused as malformed, by kind and code',
    );
    this.sent = metrics.counter('nestlab_messages_sent_total', 'Messages sent, by message kind');
    this.failures = metrics.counter(
      'nestlab_requests_failed_total',
      'Outgoing requests that failed, by kind and code',
    );
  }

  /** Serves one message kind on this stack. */
  handle<M extends MessageDef>(def: M, handler: Handler<M>): void {
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

  private async dispatch<M extends MessageDef>(
    def: M,
    handler: Handler<M>,
    msg: Inbound,
  ): Promise<void> {
    this.received.inc({ kind: def.name });
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
      if (msg.reply) msg.respond(encodeErrorReply(coded));
      return;
    }
    const parent = extractTraceContext(msg.headers);
    const span = this.tracer.startSpan(
      `${def.name} process`,
      {
        kind: def.reply ? SpanKind.SERVER : SpanKind.CONSUMER,
        attributes: {
          [MESSAGING.system]: MESSAGING_SYSTEM_NATS,
          [MESSAGING.destination]: msg.subject,
          [MESSAGING.operationType]: 'process',
          [MESSAGING.bodySize]: msg.data.length,
        },
      },
      parent,
    );
    try {
      const out = await context.with(trace.setSpan(parent, span), () => handler(incoming));
      if (msg.reply && def.reply) {
        const reply = out as { body: ReplyOf<M>; data?: Uint8Array };
        msg.respond(encodeReply(def, reply.body, reply.data), {
          headers: injectTraceContext(natsHeaders()),
        });
      }
    } catch (err) {
      const coded = toCodedError(err);
      span.setStatus({ code: SpanStatusCode.ERROR, message: coded.message });
      span.setAttribute(ATTR.errorCode, coded.code);
      if (coded.kind === 'internal') this.log.error({ err, kind: def.name }, 'handler failed');
      else
        this.log.debug(
          { kind: def.name, code: coded.code, reason: coded.message },
          'request refused',
        );
      if (msg.reply) msg.respond(encodeErrorReply(coded));
    } finally {
      span.end();
    }
  }

  /** Request/reply with a timeout; error replies come back as thrown RemoteErrors. */
  async request<M extends MessageDef>(
    def: M,
    head: RequestOf<M>,
    opts: SendOptions = {},
  ): Promise<{ head: ReplyOf<M>; data: Uint8Array }> {
    const subject = subjectOf(def, this.stack, opts.params);
    const span = this.tracer.startSpan(`${def.name} send`, {
      kind: SpanKind.CLIENT,
      attributes: {
        [MESSAGING.system]: MESSAGING_SYSTEM_NATS,
        [MESSAGING.destination]: subject,
        [MESSAGING.operationType]: 'send',
      },
    });
    const hdrs = injectTraceContext(natsHeaders(), trace.setSpan(context.active(), span));
    this.sent.inc({ kind: def.name });
    try {
      const reply = await this.nc.request(subject, encodeRequest(def, head, opts.data), {
        timeout: opts.timeoutMs ?? 5000,
        headers: hdrs,
      });
      return decodeReply(def, subject, reply.data);
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

  /** Fire-and-forget, for what is fire-and-forget on hardware too (doorbells, MSIs). */
  publish<M extends MessageDef>(def: M, head: RequestOf<M>, opts: SendOptions = {}): void {
    const subject = subjectOf(def, this.stack, opts.params);
    this.sent.inc({ kind: def.name });
    this.nc.publish(subject, encodeRequest(def, head, opts.data), {
      headers: injectTraceContext(natsHeaders()),
    });
  }

  async close(): Promise<void> {
    for (const s of this.subs) s.unsubscribe();
    this.subs.length = 0;
  }
}

function mapNatsError(err: unknown, subject: string): Error {
  if (err instanceof natsErrors.NoRespondersError) {
    return new ProtocolError('NO_RESPONDERS', `nobody serves ${subject}`, 'transient', {
      cause: err,
    });
  }
  if (err instanceof natsErrors.TimeoutError) {
    return new ProtocolError('TIMEOUT', `no reply on ${subject} in time`, 'transient', {
      cause: err,
    });
  }
  if (err instanceof natsErrors.RequestError) {
    const inner = (err as Error & { cause?: unknown }).cause;
    if (inner instanceof natsErrors.NoRespondersError) {
      return new ProtocolError('NO_RESPONDERS', `nobody serves ${subject}`, 'transient', {
        cause: err,
      });
    }
    if (inner instanceof natsErrors.TimeoutError) {
      return new ProtocolError('TIMEOUT', `no reply on ${subject} in time`, 'transient', {
        cause: err,
      });
    }
  }
  return err instanceof Error ? err : new Error(String(err));
}
