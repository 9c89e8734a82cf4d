/**
 * A service's Prometheus metrics, kept by prom-client: one registry per
 * service (not prom-client's global one, so several services and tests share
 * a process), label names declared up front, `stack` as a default label, and
 * prom-client's process and runtime metrics when asked for.
 *
 * Naming (docs/ARCHITECTURE.md, Metrics): `nestlab_<component>_<what>_<unit>`,
 * component = the service token (l0, xen, dom0, iommu, lab) or `bus` for the
 * messaging every service shares; base units (`_seconds`, `_bytes`); counters
 * end in `_total` and no gauge shares a counter's stem.
 */
import * as prom from 'prom-client';

type LabelValues<L extends string> = Partial<Record<L, string>>;

/** One series as prom-client keeps it (read synchronously for tests and state views). */
interface Series {
  value: number;
  labels: Record<string, string | number>;
}

/**
 * prom-client only offers an async `get()`; counters and gauges keep their
 * series in `hashMap`, which this reads. registry tests compare it with the
 * rendered text, so a prom-client change that moves it fails loudly.
 */
const seriesOf = (m: prom.Counter | prom.Gauge): Series[] =>
  Object.values((m as unknown as { hashMap: Record<string, Series> }).hashMap);

const matches = (s: Series, want: Record<string, string>) =>
  Object.entries(want).every(([k, v]) => String(s.labels[k]) === v);

export class Counter<L extends string = string> {
  constructor(readonly prom: prom.Counter<L>) {}
  inc(labels: LabelValues<L> = {}, by = 1): void {
    this.prom.inc(labels as prom.LabelValues<L>, by);
  }
  /** Sum of the series whose labels include `labels`. */
  get(labels: LabelValues<L> = {}): number {
    let sum = 0;
    const want = labels as Record<string, string>;
    for (const s of seriesOf(this.prom)) if (matches(s, want)) sum += s.value;
    return sum;
  }
}

export class Gauge<L extends string = string> {
  /** Values read at scrape time, by label set. */
  private readonly live = new Map<string, { labels: LabelValues<L>; read: () => number }>();
  readonly prom: prom.Gauge<L>;
  constructor(config: prom.GaugeConfiguration<L>) {
    const live = this.live;
    this.prom = new prom.Gauge<L>({
      ...config,
      collect() {
        for (const { labels, read } of live.values())
          this.set(labels as prom.LabelValues<L>, read());
      },
    });
  }
  /** A value, or a function read at every scrape. */
  set(value: number | (() => number), labels: LabelValues<L> = {}): void {
    const key = JSON.stringify(Object.entries(labels).sort());
    if (typeof value === 'function') this.live.set(key, { labels, read: value });
    else {
      this.live.delete(key);
      this.prom.set(labels as prom.LabelValues<L>, value);
    }
  }
}

export class Histogram<L extends string = string> {
  constructor(readonly prom: prom.Histogram<L>) {}
  observe(value: number, labels: LabelValues<L> = {}): void {
    this.prom.observe(labels as prom.LabelValues<L>, value);
  }
}

export interface MetricsOptions {
  /** Added as the `stack` label to every series (the nestlab stack this process serves). */
  stack?: string;
  /** Also export prom-client's process and Node.js runtime metrics (a service process does). */
  defaults?: boolean;
}

export class MetricsRegistry {
  readonly registry = new prom.Registry();
  private readonly byName = new Map<string, Counter | Gauge | Histogram>();

  constructor(opts: MetricsOptions = {}) {
    if (opts.stack !== undefined) this.registry.setDefaultLabels({ stack: opts.stack });
    if (opts.defaults) prom.collectDefaultMetrics({ register: this.registry });
  }

  /** The same name twice gives the same metric (services re-register on restart paths). */
  private once<M extends Counter | Gauge | Histogram>(
    name: string,
    type: abstract new (...a: never[]) => M,
    make: () => M,
  ): M {
    const existing = this.byName.get(name);
    if (existing) {
      if (!(existing instanceof type))
        throw new Error(`metric ${name} registered twice with different types`);
      return existing;
    }
    const m = make();
    this.registry.registerMetric(m.prom as prom.Metric);
    this.byName.set(name, m);
    return m;
  }

  counter<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
  ): Counter<L> {
    return this.once(
      name,
      Counter,
      () => new Counter<L>(new prom.Counter<L>({ name, help, labelNames, registers: [] })),
    ) as Counter<L>;
  }

  gauge<L extends string = never>(
    name: string,
    help: string,
    labelNames: readonly L[] = [],
  ): Gauge<L> {
    return this.once(
      name,
      Gauge,
      () => new Gauge<L>({ name, help, labelNames, registers: [] }),
    ) as Gauge<L>;
  }

  histogram<L extends string = never>(
    name: string,
    help: string,
    buckets: readonly number[],
    labelNames: readonly L[] = [],
  ): Histogram<L> {
    return this.once(
      name,
      Histogram,
      () =>
        new Histogram<L>(
          new prom.Histogram<L>({ name, help, buckets: [...buckets], labelNames, registers: [] }),
        ),
    ) as Histogram<L>;
  }

  /** Sum of a counter's series whose labels include `labels`; 0 for an unknown name. */
  value(name: string, labels: Record<string, string> = {}): number {
    const m = this.byName.get(name);
    return m instanceof Counter ? m.get(labels) : 0;
  }

  /** The text exposition format, as `/metrics` serves it. */
  render(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
