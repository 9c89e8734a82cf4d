import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { connect } from '@nats-io/transport-node';
import { headers } from '@nats-io/nats-core';
import { startNatsServer, type NatsServerHandle } from '@nestlab/testing';
import {
  extractTraceContext,
  injectTraceContext,
  startTelemetry,
  type Telemetry,
} from './index.js';

describe('trace context through NATS headers', () => {
  let server: NatsServerHandle;
  let telemetry: Telemetry;
  const spans = new InMemorySpanExporter();
  before(async () => {
    server = await startNatsServer();
    telemetry = startTelemetry({
      serviceName: 'test',
      stack: 't1',
      otlpEndpoint: '',
      spanProcessors: [new SimpleSpanProcessor({ exporter: spans })],
    });
  });
  after(async () => {
    await telemetry.shutdown();
    await server.stop();
  });

  it('gives the receiver a child of the sender span over a real server', async () => {
    const nc = await connect({ servers: server.url });
    nc.subscribe('hop', {
      callback: (_err, msg) => {
        const parent = extractTraceContext(msg.headers);
        const child = telemetry.tracer.startSpan('receive', {}, parent);
        child.end();
        msg.respond(child.spanContext().traceId);
      },
    });
    const sender = telemetry.tracer.startSpan('send');
    const hdrs = injectTraceContext(headers(), trace.setSpan(context.active(), sender));
    assert.match(hdrs.get('traceparent'), /^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    const reply = await nc.request('hop', '', { timeout: 2000, headers: hdrs });
    sender.end();
    assert.equal(reply.string(), sender.spanContext().traceId);
    const receive = spans.getFinishedSpans().find((s) => s.name === 'receive');
    assert.equal(receive?.parentSpanContext?.spanId, sender.spanContext().spanId);
    await nc.close();
  });
});
