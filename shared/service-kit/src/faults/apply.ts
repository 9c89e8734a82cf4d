import type { Msg } from '@nats-io/nats-core';
import type { FaultDecision } from './injector.js';

/** What the bus needs of a received message; a corrupted copy keeps the rest. */
export type Inbound = Pick<Msg, 'subject' | 'data' | 'headers' | 'reply' | 'respond'>;

/** A reordered message waits here until the next message has been delivered. */
export class HeldMessage {
  private held: { deliver: () => void; timer: NodeJS.Timeout } | null = null;

  hold(deliver: () => void): void {
    this.release();
    // Never held forever: a message with nobody after it still arrives, late.
    const timer = setTimeout(() => this.release(), 200);
    this.held = { deliver, timer };
  }

  release(): void {
    const h = this.held;
    if (!h) return;
    this.held = null;
    clearTimeout(h.timer);
    h.deliver();
  }
}

/** Carries out one transport fault on a received message. */
export function applyFault(
  decision: FaultDecision,
  msg: Inbound,
  deliver: (m: Inbound) => void,
  held: HeldMessage,
): void {
  switch (decision.action) {
    case 'drop':
      return;
    case 'delay':
      setTimeout(() => deliver(msg), decision.ms);
      return;
    case 'duplicate':
      deliver(msg);
      deliver(msg);
      return;
    case 'reorder':
      held.hold(() => deliver(msg));
      return;
    case 'corrupt': {
      const data = new Uint8Array(msg.data);
      for (const at of decision.positions) data[at] = (data[at] ?? 0) ^ 0xff;
      deliver({
        subject: msg.subject,
        data,
        headers: msg.headers,
        reply: msg.reply,
        respond: (payload, opts) => msg.respond(payload, opts),
      });
      return;
    }
  }
}
