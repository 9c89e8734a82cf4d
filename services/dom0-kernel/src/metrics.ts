import type { Counter, Histogram, MetricsRegistry } from '@nestlab/service-kit';

export interface Dom0Metrics {
  readonly ios: Counter;
  readonly latency: Histogram;
  readonly kicks: Counter;
  readonly interrupts: Counter;
  readonly lateCompletions: Counter;
}

const LATENCY_BUCKETS_US = [
  100, 250, 500, 1000, 2500, 5000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
];

export function dom0Metrics(reg: MetricsRegistry, inFlight: () => number): Dom0Metrics {
  reg.gauge('nestlab_dom0_ios_in_flight', 'I/Os submitted and not yet ended').set(inFlight);
  return {
    ios: reg.counter('nestlab_dom0_ios_total', 'I/Os ended, by op and result (ok or error code)'),
    latency: reg.histogram(
      'nestlab_dom0_io_latency_us',
      'I/O latency from submit to completion, µs',
      LATENCY_BUCKETS_US,
    ),
    kicks: reg.counter(
      'nestlab_dom0_kicks_total',
      'Queue notifications, by outcome (sent / suppressed by EVENT_IDX)',
    ),
    interrupts: reg.counter(
      'nestlab_dom0_interrupts_total',
      'Event-channel notifications, by vector',
    ),
    lateCompletions: reg.counter(
      'nestlab_dom0_late_completions_total',
      'Completions ignored: I/O already ended (late) or completed twice (duplicate)',
    ),
  };
}
