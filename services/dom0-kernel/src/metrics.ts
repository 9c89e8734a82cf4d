import type { Counter, Histogram, MetricsRegistry } from '@nestlab/service-kit';
import { CONFIG_VECTOR, QUEUE_VECTOR } from './virtio/interrupts.js';

/** A counter series bumped per I/O: its labelled child, made once (prom-client hashes labels on every inc). */
export interface HotSeries {
  inc(): void;
}

export interface Dom0Metrics {
  readonly ios: Counter<'op' | 'result'>;
  /** ios{result="ok"} by op. */
  readonly iosOk: Readonly<Record<'read' | 'write' | 'flush', HotSeries>>;
  /** kicks by outcome. */
  readonly kicksBy: Readonly<Record<'sent' | 'suppressed', HotSeries>>;
  readonly latency: Histogram;
  readonly kicks: Counter<'outcome'>;
  readonly interrupts: Counter<'vector'>;
  /** interrupts by the role of the event channel's vector. */
  readonly interruptsBy: Readonly<Record<'queue' | 'config' | 'line', HotSeries>>;
  readonly lateCompletions: Counter;
  /** Device misbehaviour the driver caught, by code (USED_ID_NOT_POSTED, USED_LEN_TOO_LONG, DEVICE_BROKEN). */
  readonly deviceErrors: Counter<'code'>;
  /** Device resets by the driver's recovery path, by reason. */
  readonly resets: Counter<'reason'>;
  /** Completions found by polling after a lost interrupt. */
  readonly lostInterrupts: Counter;
  /** Completed, not yet durable writes written again after a device reset. */
  readonly rewritesAfterReset: Counter;
}

const LATENCY_BUCKETS_SECONDS = [
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1,
];

export function dom0Metrics(reg: MetricsRegistry, inFlight: () => number): Dom0Metrics {
  reg.gauge('nestlab_dom0_ios_in_flight', 'I/Os submitted and not yet ended').set(inFlight);
  const ios = reg.counter(
    'nestlab_dom0_ios_total',
    'I/Os ended, by op and result (ok or error code)',
    ['op', 'result'],
  );
  const kicks = reg.counter(
    'nestlab_dom0_kicks_total',
    'Queue notifications, by outcome (sent / suppressed by EVENT_IDX)',
    ['outcome'],
  );
  const interrupts = reg.counter(
    'nestlab_dom0_interrupts_total',
    'Event-channel notifications, by vector',
    ['vector'],
  );
  return {
    ios,
    iosOk: {
      read: ios.prom.labels({ op: 'read', result: 'ok' }),
      write: ios.prom.labels({ op: 'write', result: 'ok' }),
      flush: ios.prom.labels({ op: 'flush', result: 'ok' }),
    },
    kicks,
    kicksBy: {
      sent: kicks.prom.labels({ outcome: 'sent' }),
      suppressed: kicks.prom.labels({ outcome: 'suppressed' }),
    },
    latency: reg.histogram(
      'nestlab_dom0_io_latency_seconds',
      'I/O latency from submit to completion, seconds',
      LATENCY_BUCKETS_SECONDS,
    ),
    interrupts,
    interruptsBy: {
      queue: interrupts.prom.labels({ vector: String(QUEUE_VECTOR) }),
      config: interrupts.prom.labels({ vector: String(CONFIG_VECTOR) }),
      line: interrupts.prom.labels({ vector: 'line' }),
    },
    lateCompletions: reg.counter(
      'nestlab_dom0_late_completions_total',
      'Completions ignored: I/O already ended (late) or completed twice (duplicate)',
    ),
    deviceErrors: reg.counter(
      'nestlab_dom0_device_errors_total',
      'Device misbehaviour caught by the driver, by error code',
      ['code'],
    ),
    resets: reg.counter(
      'nestlab_dom0_device_resets_total',
      'Device resets by the recovery path (hung queue, NEEDS_RESET, device found reset, broken ring), by reason',
      ['reason'],
    ),
    lostInterrupts: reg.counter(
      'nestlab_dom0_lost_interrupts_recovered_total',
      'Hung-queue polls that found completions whose interrupt never came',
    ),
    rewritesAfterReset: reg.counter(
      'nestlab_dom0_rewrites_after_reset_total',
      'Completed writes no FLUSH had made durable, written again after a device reset (its volatile cache may be gone)',
    ),
  };
}
