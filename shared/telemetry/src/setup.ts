import { trace, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { NodeSDK } from '@opentelemetry/sdk-node';
import {
  BatchSpanProcessor,
  NoopSpanProcessor,
  type SpanProcessor,
} from '@opentelemetry/sdk-trace';
import { ATTR } from './attributes.js';
import { NoContextManager } from './no-context.js';
import { IoBudgetSampler, configureSampling, ioTraceCapFromEnv } from './sampling.js';

export interface TelemetryOptions {
  serviceName: string;
  stack: string;
  /** Where to send OTLP/HTTP traces; default from OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, none if unset. */
  otlpEndpoint?: string;
  /** Extra processors (tests add an in-memory exporter). */
  spanProcessors?: SpanProcessor[];
  /** I/O traces recorded per run; default NESTLAB_TRACE_IO_CAP, else DEFAULT_IO_TRACE_CAP. */
  ioTraceCap?: number;
}

export interface Telemetry {
  readonly tracer: Tracer;
  readonly exporting: boolean;
  shutdown(): Promise<void>;
}

/**
 * Starts the NodeSDK. Call it first in a service's server.ts, before the app
 * is built, so every span the app makes has a provider behind it. With no
 * endpoint configured the SDK still runs (trace context still propagates);
 * spans are then not recorded, and no context is carried across async hops
 * (that costs a hook on every promise). With one, every I/O of a run is
 * traced up to a cap (NESTLAB_TRACE_IO_CAP, default DEFAULT_IO_TRACE_CAP).
 */
export function startTelemetry(opts: TelemetryOptions): Telemetry {
  const env = process.env;
  const endpoint =
    opts.otlpEndpoint ??
    env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] ??
    env['OTEL_EXPORTER_OTLP_ENDPOINT'];
  const processors: SpanProcessor[] = [...(opts.spanProcessors ?? [])];
  if (endpoint) {
    const url =
      env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT'] ?? `${endpoint.replace(/\/$/, '')}/v1/traces`;
    processors.push(
      new BatchSpanProcessor({
        exporter: new OTLPTraceExporter({ url }),
        scheduledDelayMillis: 500,
        // A busy run makes tens of thousands of spans a second: queue them rather than drop.
        maxQueueSize: 1 << 17,
        maxExportBatchSize: 4096,
      }),
    );
  }
  const recording = processors.length > 0;
  // With nothing to export, spans are not recorded at all (the sampler says so),
  // but the SDK still runs: real trace ids and context propagation stay.
  const ownSampler = !env['OTEL_TRACES_SAMPLER'];
  configureSampling(recording, opts.ioTraceCap ?? ioTraceCapFromEnv(env), ownSampler);
  if (processors.length === 0) processors.push(new NoopSpanProcessor());
  const sdk = new NodeSDK({
    serviceName: opts.serviceName,
    resource: resourceFromAttributes({ [ATTR.stack]: opts.stack }),
    autoDetectResources: false,
    spanProcessors: processors,
    instrumentations: [],
    // OTEL_TRACES_SAMPLER, when set, is the user's choice; otherwise the I/O budget.
    ...(ownSampler ? { sampler: new IoBudgetSampler() } : {}),
    ...(recording ? {} : { contextManager: new NoContextManager() }),
  });
  sdk.start();
  return {
    tracer: trace.getTracer(`nestlab.${opts.serviceName}`),
    exporting: Boolean(endpoint),
    shutdown: () => sdk.shutdown(),
  };
}
