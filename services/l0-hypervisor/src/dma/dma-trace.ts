import { context, trace, SpanStatusCode, type Span, type Tracer } from '@opentelemetry/api';
import { toHex } from '@nestlab/addr';
import { ATTR, DEVICE_ATTR } from '@nestlab/telemetry';

/** The DMA keys of DEVICE_ATTR under short names. */
export const DMA_ATTR = {
  what: DEVICE_ATTR.dmaWhat,
  write: DEVICE_ATTR.dmaWrite,
  accesses: DEVICE_ATTR.dmaAccesses,
  untraced: DEVICE_ATTR.dmaUntraced,
} as const;

/** Child spans for the first `left` accesses of one request; beyond that only counts (bounded cost). */
export interface TraceBudget {
  readonly span: Span;
  left: number;
  total: number;
  untraced: number;
}

export const DMA_SPANS_PER_REQUEST = 8;

export function traceBudget(span: Span, spans = DMA_SPANS_PER_REQUEST): TraceBudget {
  return { span, left: spans, total: 0, untraced: 0 };
}

/** Puts the access counts on the request span before it ends. */
export function closeBudget(b: TraceBudget): void {
  if (!b.span.isRecording()) return;
  b.span.setAttribute(DMA_ATTR.accesses, b.total);
  b.span.setAttribute(DMA_ATTR.untraced, b.untraced);
}

export interface DmaSpanInfo {
  what: string;
  write: boolean;
  bus: bigint;
  machine: bigint | null;
  host: bigint | null;
  verdict: string;
  fault: string | undefined;
  by: string | undefined;
  fn: string | undefined;
  startedAt: number;
}

type Ids = { traceId?: string; spanId?: string };
const NONE: Ids = {};

function ids(s: Span | undefined): Ids {
  const sc = s?.spanContext();
  return sc && trace.isSpanContextValid(sc) ? { traceId: sc.traceId, spanId: sc.spanId } : NONE;
}

export class DmaTracer {
  constructor(private readonly tracer: Tracer) {}

  /**
   * Records one page-span access as a child span (within budget). Returns the
   * trace id and the id of the span that stands for the access: its own, or
   * the request's once the budget is spent or nothing records. Empty when
   * there is no trace at all.
   */
  record(budget: TraceBudget | undefined, info: () => DmaSpanInfo): Ids {
    const parent = budget?.span ?? trace.getActiveSpan();
    if (budget) {
      budget.total++;
      if (budget.left <= 0 || !budget.span.isRecording()) {
        budget.untraced++;
        return ids(parent);
      }
      budget.left--;
    } else if (!parent?.isRecording()) return ids(parent);
    const i = info();
    const ctx = budget ? trace.setSpan(context.active(), budget.span) : context.active();
    const span = this.tracer.startSpan(
      `l0.dma ${i.what}`,
      {
        startTime: i.startedAt,
        attributes: {
          [ATTR.addrBus]: toHex(i.bus),
          ...(i.machine === null ? {} : { [ATTR.addrMachine]: toHex(i.machine) }),
          ...(i.host === null ? {} : { [ATTR.addrHostPhys]: toHex(i.host) }),
          ...(i.by ? { [ATTR.translationBy]: i.by } : {}),
          ...(i.fn ? { [ATTR.translationFn]: i.fn } : {}),
          [ATTR.dmaVerdict]: i.verdict,
          [DMA_ATTR.what]: i.what,
          [DMA_ATTR.write]: i.write,
        },
      },
      ctx,
    );
    if (i.fault) {
      span.setAttribute(ATTR.errorCode, i.fault);
      span.setStatus({ code: SpanStatusCode.ERROR, message: i.fault });
    }
    span.end();
    return ids(span);
  }
}
