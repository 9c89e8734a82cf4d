/** One span as the console keeps it (decoded from OTLP). */
export interface StoredSpan {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string | null;
  readonly service: string;
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
  spans: number;
  startUs: number;
  durationUs: number;
}

/**
 * A bounded store of recent traces: the oldest trace goes when there are more
 * than `maxTraces`, and a trace keeps at most `maxSpansPerTrace` spans, so a
 * long run cannot grow the console without limit.
 */
export class TraceStore {
  private readonly traces = new Map<string, StoredSpan[]>();
  private dropped = 0;

  constructor(
    readonly maxTraces = 5000,
    readonly maxSpansPerTrace = 2000,
  ) {}

  add(span: StoredSpan): void {
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

  summaries(limit = 100): TraceSummary[] {
    const out: TraceSummary[] = [];
    for (const [traceId, spans] of [...this.traces].reverse().slice(0, limit)) {
      const root = spans.find((s) => s.parentSpanId === null) ?? spans[0];
      const start = Math.min(...spans.map((s) => s.startUs));
      const end = Math.max(...spans.map((s) => s.endUs));
      out.push({
        traceId,
        rootName: root?.name ?? '?',
        services: [...new Set(spans.map((s) => s.service))].sort(),
        spans: spans.length,
        startUs: start,
        durationUs: end - start,
      });
    }
    return out;
  }

  stats(): { traces: number; spans: number; dropped: number } {
    let spans = 0;
    for (const s of this.traces.values()) spans += s.length;
    return { traces: this.traces.size, spans, dropped: this.dropped };
  }
}
