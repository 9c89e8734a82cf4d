/** One span as the console keeps it (decoded from OTLP). */
export interface StoredSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | null;
  readonly service: string;
  /** The nestlab stack whose process sent it (`nestlab.stack`), when it says. */
  readonly stack?: string;
  readonly name: string;
  readonly kind: number;
  /** Microseconds since the epoch (enough precision for a waterfall, safe as a number). */
  readonly startUs: number;
  readonly endUs: number;
  readonly attributes: Readonly<Record<string, string | number | boolean>>;
  readonly status: { code: number; message?: string };
  readonly links: readonly { traceId: string; spanId: string }[];
}

export interface TraceSummary {
  traceId: string;
  rootName: string;
  services: string[];
  /** The stacks its spans came from (one, unless a span crossed stacks). */
  stacks: string[];
  spans: number;
  startUs: number;
  durationUs: number;
}

const MAX_STACKS = 256;

/**
 * A bounded store of recent traces: the oldest trace goes when there are more
 * than `maxTraces`, and a trace keeps at most `maxSpansPerTrace` spans, so a
 * long run cannot grow the console without limit.
 */
export class TraceStore {
  private readonly traces = new Map<string, StoredSpan[]>();
  private dropped = 0;
  /** Stacks seen since start, for the page's selector; capped so bad exporters cannot grow it. */
  private readonly stacksSeen = new Set<string>();

  constructor(
    readonly maxTraces = 5000,
    readonly maxSpansPerTrace = 2000,
  ) {}

  add(span: StoredSpan): void {
    if (span.stack !== undefined && this.stacksSeen.size < MAX_STACKS)
      this.stacksSeen.add(span.stack);
    let spans = this.traces.get(span.traceId);
    if (!spans) {
      spans = [];
      this.traces.set(span.traceId, spans);
      if (this.traces.size > this.maxTraces) {
        const oldest = this.traces.keys().next().value;
        if (oldest !== undefined) this.traces.delete(oldest);
      }
    }
    if (spans.length >= this.maxSpansPerTrace) {
      this.dropped++;
      return;
    }
    spans.push(span);
  }

  get(traceId: string): StoredSpan[] | undefined {
    const spans = this.traces.get(traceId);
    return spans ? [...spans].sort((a, b) => a.startUs - b.startUs) : undefined;
  }

  /** The newest traces first; with `stack`, only traces that have a span from that stack. */
  summaries(limit = 100, stack?: string): TraceSummary[] {
    const out: TraceSummary[] = [];
    for (const [traceId, spans] of [...this.traces].reverse()) {
      if (out.length >= limit) break;
      if (stack !== undefined && !spans.some((s) => s.stack === stack)) continue;
      const root = spans.find((s) => s.parentSpanId === null) ?? spans[0];
      const start = Math.min(...spans.map((s) => s.startUs));
      const end = Math.max(...spans.map((s) => s.endUs));
      out.push({
        traceId,
        rootName: root?.name ?? '?',
        services: [...new Set(spans.map((s) => s.service))].sort(),
        stacks: [...new Set(spans.flatMap((s) => (s.stack === undefined ? [] : [s.stack])))].sort(),
        spans: spans.length,
        startUs: start,
        durationUs: end - start,
      });
    }
    return out;
  }

  /** The stacks the console has received spans from, sorted. */
  stacks(): string[] {
    return [...this.stacksSeen].sort();
  }

  stats(): { traces: number; spans: number; dropped: number } {
    let spans = 0;
    for (const s of this.traces.values()) spans += s.length;
    return { traces: this.traces.size, spans, dropped: this.dropped };
  }
}
