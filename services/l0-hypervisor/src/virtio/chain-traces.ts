// Which I/O trace a descriptor chain belongs to. A device cannot know (it
// sees only the ring), but the lab wants each chain's device work inside the
// trace of the I/O that posted it, also when one message posted many chains.
// The driver names each chain it posts in the message's batch items
// (`<device token>.q<queue>.<head>`); L0 notes them when the message arrives,
// before the device can pop those chains, and the queue processor takes the
// note when it pops the head.
import { batchItemsOf } from '@nestlab/telemetry';
import { context, type SpanContext } from '@opentelemetry/api';

const notes = new WeakMap<object, Map<string, SpanContext>>();
/** A ring has at most 32768 heads; anything beyond that is stale noise. */
const MAX_NOTES = 32768;

export const chainKey = (queue: number, head: number) => `q${queue}.${head}`;

/**
 * Notes the chains named by the message being handled (its batch items).
 * `deviceOf` finds the device a token names (the PCI bus knows them).
 */
export function noteChainTraces(deviceOf: (token: string) => object | undefined): void {
  const items = batchItemsOf(context.active());
  if (!items) return;
  let token = '';
  let m: Map<string, SpanContext> | undefined;
  for (const [key, span] of items) {
    const dot = key.indexOf('.');
    if (dot < 1) continue;
    if (key.slice(0, dot) !== token) {
      token = key.slice(0, dot);
      const dev = deviceOf(token);
      m = dev ? notes.get(dev) : undefined;
      if (dev && !m) notes.set(dev, (m = new Map()));
    }
    if (!m) continue;
    if (m.size >= MAX_NOTES) m.clear();
    m.set(key.slice(dot + 1), span);
  }
}

/** The trace the driver said this chain belongs to, once. */
export function takeChainTrace(dev: object, queue: number, head: number): SpanContext | undefined {
  const m = notes.get(dev);
  if (!m) return undefined;
  const k = chainKey(queue, head);
  const span = m.get(k);
  if (span) m.delete(k);
  return span;
}

/** A reset: notes of the old rings mean nothing any more. */
export function forgetChainTraces(dev: object): void {
  notes.delete(dev);
}
