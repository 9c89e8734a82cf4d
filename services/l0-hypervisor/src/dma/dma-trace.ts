import { context, trace, SpanStatusCode, type Span, type Tracer } from '@opentelemetry/api';
import { toHex, type MachineAddr, type Translation } from '@nestlab/addr';
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
  /** The request span's ids, read once (every access it stands for carries them). */
  ids?: Ids;
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

/** One page span's outcome, as the DMA engine reports it. */
export interface DmaSpanOutcome {
  readonly bus: bigint;
  readonly verdict: string;
  readonly fault: string | undefined;
  readonly tr: Translation<MachineAddr> | null;
  readonly host: bigint | null;
  readonly startedAt: number;
}

export type Ids = { readonly traceId?: string; readonly spanId?: string };
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
  record(budget: TraceBudget | undefined, what: string, write: boolean, o: DmaSpanOutcome): Ids {
    if (budget) {
      budget.total++;
      if (budget.left <= 0 || !budget.span.isRecording()) {
        budget.untraced++;
        return (budget.ids ??= ids(budget.span));
      }
      budget.left--;
    } else {
      const parent = trace.getActiveSpan();
      if (!parent?.isRecording()) return ids(parent);
    }
    const machine = o.tr?.ok ? o.tr.addr : null;
    const ctx = budget ? trace.setSpan(context.active(), budget.span) : context.active();
    const span = this.tracer.startSpan(
      `l0.dma ${what}`,
      {
        startTime: o.startedAt,
        attributes: {
          [ATTR.addrBus]: toHex(o.bus),
          ...(machine === null ? {} : { [ATTR.addrMachine]: toHex(machine) }),
          ...(o.host === null ? {} : { [ATTR.addrHostPhys]: toHex(o.host) }),
          ...(o.tr?.step.by ? { [ATTR.translationBy]: o.tr.step.by } : {}),
          ...(o.tr?.step.fn ? { [ATTR.translationFn]: o.tr.step.fn } : {}),
          [ATTR.dmaVerdict]: o.verdict,
          [DMA_ATTR.what]: what,
          [DMA_ATTR.write]: write,
        },
      },
      ctx,
    );
    if (o.fault) {
      span.setAttribute(ATTR.errorCode, o.fault);
      span.setStatus({ code: SpanStatusCode.ERROR, message: o.fault });
    }
    span.end();
    return ids(span);
  }
}
