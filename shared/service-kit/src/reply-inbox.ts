// Requests of one connection share one inbox subscription: a request costs a
// publish, a timer and a map entry. nats.js's own request() builds error
// objects for every request (to have a stack trace ready), which dominated
// the message path of a busy service.
import {
  createInbox,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/nats-core';
import { ProtocolError } from '@nestlab/protocol';
import type { Logger } from 'pino';

interface Waiting {
  readonly subject: string;
  readonly resolve: (data: Uint8Array) => void;
  readonly reject: (err: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class ReplyInbox {
  private inbox: { prefix: string; sub: Subscription } | null = null;
  private readonly waiting = new Map<string, Waiting>();
  private nextToken = 0;

  constructor(
    private readonly nc: NatsConnection,
    private readonly log: Logger,
    /** The seat's own inbox prefix (NATS permissions allow only that); default `_INBOX`. */
    private readonly inboxPrefix?: string,
  ) {}

  /** Publishes with a reply token on the shared inbox and waits for that token's reply. */
  call(
    subject: string,
    payload: Uint8Array,
    hdrs: MsgHdrs | undefined,
    timeoutMs: number,
  ): Promise<Uint8Array> {
    const inbox = this.ensure();
    const token = (this.nextToken++).toString(36);
    return new Promise<Uint8Array>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(token);
        reject(new ProtocolError('TIMEOUT', `no reply on ${subject} in time`));
      }, timeoutMs);
      this.waiting.set(token, { subject, resolve, reject, timer });
      try {
        this.nc.publish(subject, payload, {
          reply: `${inbox.prefix}.${token}`,
          ...(hdrs ? { headers: hdrs } : {}),
        });
      } catch (err) {
        clearTimeout(timer);
        this.waiting.delete(token);
        reject(err instanceof Error ? err : new Error(String(err)));
      }
    });
  }

  private ensure(): { prefix: string; sub: Subscription } {
    if (this.inbox) return this.inbox;
    const prefix = createInbox(this.inboxPrefix);
    const sub = this.nc.subscribe(`${prefix}.*`, {
      callback: (err, msg) => {
        if (err) {
          this.log.warn({ err }, 'reply inbox error');
          this.failAll(err);
          return;
        }
        this.settle(msg.subject.slice(prefix.length + 1), msg);
      },
    });
    this.inbox = { prefix, sub };
    return this.inbox;
  }

  private settle(token: string, msg: Msg): void {
    const w = this.waiting.get(token);
    if (w === undefined) return; // timed out already: a late reply is dropped
    this.waiting.delete(token);
    clearTimeout(w.timer);
    // The server answers a request nobody subscribes to with an empty 503 status message.
    if (msg.data.length === 0 && msg.headers?.code === 503) {
      w.reject(new ProtocolError('NO_RESPONDERS', `nobody serves ${w.subject}`));
    } else w.resolve(msg.data);
  }

  /** Every request still waiting fails (the inbox broke, or the bus closed). */
  failAll(cause: unknown): void {
    for (const [token, w] of this.waiting) {
      clearTimeout(w.timer);
      this.waiting.delete(token);
      w.reject(
        new ProtocolError('INTERNAL', `request on ${w.subject} abandoned: ${String(cause)}`, {
          kind: 'transient',
        }),
      );
    }
  }

  close(): void {
    this.inbox?.sub.unsubscribe();
    this.inbox = null;
    this.failAll('the bus was closed');
  }
}
