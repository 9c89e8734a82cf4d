// OpenTelemetry conventions on a real NATS hop: messaging attributes and span
// names on both sides, and log lines carrying the trace of the span they were
// written in.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { SpanKind } from '@opentelemetry/api';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace';
import { Count, Obj, requestMessage } from '@nestlab/protocol';
import { startTelemetry, type Telemetry } from '@nestlab/telemetry';
import { startNatsServer, type NatsServerHandle } from '@nestlab/testing';
import { Bus } from './bus.js';
import { createLogger } from './log.js';
import { MetricsRegistry } from './metrics.js';

const Hello = requestMessage({
  name: 'test.hello',
  service: 'xen',
  object: 'dev.{device}',
  verb: 'hello',
  request: Obj({ n: Count }),
  reply: Obj({ n: Count }),
});

describe('Bus: OpenTelemetry messaging conventions over a real nats-server', () => {
  const spans = new InMemorySpanExporter();
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      done();
    },
  });
  let telemetry: Telemetry;
  let server: NatsServerHandle;
  const conns: NatsConnection[] = [];
  let client: Bus;

  before(async () => {
    telemetry = startTelemetry({
      serviceName: 'conventions-test',
      stack: 'ct',
      otlpEndpoint: '',
      spanProcessors: [new SimpleSpanProcessor({ exporter: spans })],
    });
    server = await startNatsServer();
    for (let i = 0; i < 2; i++) conns.push(await connect({ servers: server.url }));
    const log = createLogger('conventions-test', 'debug', {}, sink);
    client = new Bus(conns[0]!, 'ct', telemetry.tracer, log, new MetricsRegistry());
    const service = new Bus(conns[1]!, 'ct', telemetry.tracer, log, new MetricsRegistry());
    service.handle(Hello, ({ head }) => {
      if (head.n === 0) throw Object.assign(new Error('zero'), { code: 'ZERO', kind: 'input' });
      log.info({ n: head.n }, 'hello handled');
      return { body: { n: head.n + 1 } };
    });
    await conns[1]!.flush();
  });
  after(async () => {
    for (const c of conns) await c.close();
    await telemetry.shutdown();
    await server.stop();
  });

  const named = (name: string) => spans.getFinishedSpans().filter((s) => s.name === name);

  it('names spans `{operation} {destination template}` and carries the messaging attributes', async () => {
    spans.reset();
    const reply = await client.request(Hello, { n: 1 }, { params: { device: 'pci-0000-00-04-0' } });
    assert.equal(reply.head.n, 2);
    const template = 'nestlab.{stack}.xen.dev.{device}.hello';
    const subject = 'nestlab.ct.xen.dev.pci-0000-00-04-0.hello';
    const [sent] = named(`send ${template}`);
    const [processed] = named(`process ${template}`);
    assert.ok(sent && processed, `spans: ${spans.getFinishedSpans().map((s) => s.name)}`);
    const port = Number(new URL(server.url).port);
    const expect = (s: ReadableSpan, op: string) => {
      assert.equal(s.attributes['messaging.system'], 'nats');
      assert.equal(s.attributes['messaging.operation.name'], op);
      assert.equal(s.attributes['messaging.operation.type'], op);
      assert.equal(s.attributes['messaging.destination.name'], subject);
      assert.equal(s.attributes['messaging.destination.template'], template);
      assert.equal(s.attributes['server.address'], '127.0.0.1');
      assert.equal(s.attributes['server.port'], port);
    };
    expect(sent, 'send');
    expect(processed, 'process');
    assert.equal(sent.kind, SpanKind.CLIENT);
    assert.equal(processed.kind, SpanKind.SERVER);
    assert.equal(processed.parentSpanContext?.spanId, sent.spanContext().spanId);
    assert.equal(typeof processed.attributes['messaging.message.body.size'], 'number');
  });

  it("puts the active span's trace_id and span_id on the log lines of a handler and of the bus", async () => {
    spans.reset();
    lines.length = 0;
    await client.request(Hello, { n: 5 }, { params: { device: 'd1' } });
    await assert.rejects(client.request(Hello, { n: 0 }, { params: { device: 'd2' } }), {
      code: 'ZERO',
    });
    const processed = named('process nestlab.{stack}.xen.dev.{device}.hello');
    assert.equal(processed.length, 2);
    const handled = lines.find((l) => l['msg'] === 'hello handled');
    const refused = lines.find((l) => l['msg'] === 'request refused');
    for (const [line, span] of [
      [handled, processed[0]],
      [refused, processed[1]],
    ] as const) {
      assert.ok(line && span);
      assert.equal(line['trace_id'], span.spanContext().traceId);
      assert.equal(line['span_id'], span.spanContext().spanId);
    }
    const outside = lines.length;
    createLogger('x', 'info', {}, sink).info('no span');
    await new Promise((r) => setImmediate(r));
    assert.equal(lines[outside]?.['trace_id'], undefined, 'no span, no trace id');
  });
});
