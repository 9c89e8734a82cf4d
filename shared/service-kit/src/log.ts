import { trace, isSpanContextValid } from '@opentelemetry/api';
import { pino, type Logger } from 'pino';

/**
 * The active span's ids on every line logged inside it, so a log line leads
 * to its trace (OTel log data model field names).
 */
function traceFields(): Record<string, string> {
  const sc = trace.getActiveSpan()?.spanContext();
  if (!sc || !isSpanContextValid(sc)) return {};
  return {
    trace_id: sc.traceId,
    span_id: sc.spanId,
    trace_flags: `0${sc.traceFlags.toString(16)}`,
  };
}

/** Structured JSON logs on stdout, one logger per process. */
export function createLogger(
  name: string,
  level: string,
  base: Record<string, string> = {},
  destination?: pino.DestinationStream,
): Logger {
  const opts = { name, level, base: { service: name, ...base }, mixin: traceFields };
  return destination ? pino(opts, destination) : pino(opts);
}
export type { Logger };
