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

export interface TelemetryOptions {
  serviceName: string;
  stack: string;
  /** Where to send OTLP/HTTP traces; default from OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT, none if unset. */
  otlpEndpoint?: string;
  /** Extra processors (tests add an in-memory exporter). */
  spanProcessors?: SpanProcessor[];
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
 * spans simply go nowhere.
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
      }),
    );
  }
  // The SDK registers no tracer provider when it has no processor; a no-op one
  // keeps real trace ids and context propagation even when nothing exports.
  if (processors.length === 0) processors.push(new NoopSpanProcessor());
  const sdk = new NodeSDK({
    serviceName: opts.serviceName,
    resource: resourceFromAttributes({ [ATTR.stack]: opts.stack }),
    autoDetectResources: false,
    spanProcessors: processors,
    instrumentations: [],
  });
  sdk.start();
  return {
    tracer: trace.getTracer(`nestlab.${opts.serviceName}`),
    exporting: Boolean(endpoint),
    shutdown: () => sdk.shutdown(),
  };
}
