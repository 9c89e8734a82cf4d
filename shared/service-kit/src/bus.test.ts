import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { Count, Obj, eventMessage, requestMessage } from '@nestlab/protocol';
import { ATTR, batchItemsOf, startTelemetry, type Telemetry } from '@nestlab/telemetry';
import { startNatsServer, waitFor, type NatsServerHandle } from '@nestlab/testing';
import { Bus } from './bus.js';
import { createLogger } from './log.js';
import { MetricsRegistry } from './metrics.js';

const Echo = requestMessage({
  name: 'test.echo',
  service: 'l0',
  object: 'test',
  verb: 'echo',
  request: Obj({ n: Count, delayMs: Count }),
  reply: Obj({ n: Count }),
  data: 'optional',
});
const Nobody = requestMessage({
  name: 'test.nobody',
  service: 'l0',
  object: 'test',
  verb: 'nobody',
  request: Obj({}),
  reply: Obj({}),
});
const Poke = eventMessage({
  name: 'test.poke',
  service: 'l0',
  object: 'test',
  verb: 'poke',
  request: Obj({ n: Count }),
});

describe('Bus: requests over one shared inbox, replies counted, batch items', () => {
  const spans = new InMemorySpanExporter();
  let telemetry: Telemetry;
  let server: NatsServerHandle;
  const conns: NatsConnection[] = [];
  let client: Bus;
  let service: Bus;
  const serviceMetrics = new MetricsRegistry();
  const pokes: { n: number; items: string[] }[] = [];

  before(async () => {
    telemetry = startTelemetry({
      serviceName: 'bus-test',
      stack: 'bt',
      otlpEndpoint: '',
      spanProcessors: [new SimpleSpanProcessor({ exporter: spans })],
    });
    server = await startNatsServer();
    for (let i = 0; i < 2; i++) conns.push(await connect({ servers: server.url }));
    const log = createLogger('bus-test', 'silent');
    client = new Bus(conns[0]!, 'bt', telemetry.tracer, log, new MetricsRegistry());
    service = new Bus(conns[1]!, 'bt', telemetry.tracer, log, serviceMetrics);
    service.handle(Echo, async ({ head, data }) => {
      if (head.delayMs) await new Promise((r) => setTimeout(r, head.delayMs));
      return { body: { n: head.n + 1 }, data };
    });
    service.handle(Poke, ({ head }) => {
      pokes.push({ n: head.n, items: [...(batchItemsOf(context.active())?.keys() ?? [])] });
    });
    await conns[1]!.flush();
  });
  after(async () => {
    await client?.close();
    await service?.close();
    for (const c of conns) await c.close();
    await server?.stop();
    await telemetry?.shutdown();
  });

  it('answers many concurrent requests, each with its own reply and bytes', async () => {
    const replies = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        client.request(Echo, { n: i, delayMs: 0 }, { data: Uint8Array.of(i, i + 1) }),
      ),
    );
    replies.forEach((r, i) => {
      assert.equal(r.head.n, i + 1);
      assert.deepEqual([...r.data], [i, i + 1]);
    });
    assert.equal(serviceMetrics.value('nestlab_bus_replies_sent_total', { kind: 'test.echo' }), 50);
  });

  it('fails a slow request with TIMEOUT and drops its late reply', async () => {
    await assert.rejects(client.request(Echo, { n: 1, delayMs: 300 }, { timeoutMs: 50 }), {
      code: 'TIMEOUT',
    });
    // The late reply arrives on the shared inbox and must not disturb the next request.
    await new Promise((r) => setTimeout(r, 350));
    assert.equal((await client.request(Echo, { n: 7, delayMs: 0 })).head.n, 8);
  });

  it('answers OVERLOADED beyond maxInFlight handlers, counts the shed, and serves again after', async () => {
    service.maxInFlight = 4;
    try {
      const results = await Promise.allSettled(
        Array.from({ length: 10 }, (_, i) => client.request(Echo, { n: i, delayMs: 200 })),
      );
      const ok = results.filter((r) => r.status === 'fulfilled').length;
      const overloaded = results.filter(
        (r) => r.status === 'rejected' && (r.reason as { code?: string }).code === 'OVERLOADED',
      ).length;
      assert.equal(ok, 4);
      assert.equal(overloaded, 6);
      assert.equal(
        serviceMetrics.value('nestlab_bus_messages_shed_total', { kind: 'test.echo' }),
        6,
      );
    } finally {
      service.maxInFlight = 4096;
    }
    assert.equal((await client.request(Echo, { n: 1, delayMs: 0 })).head.n, 2);
  });

  it('fails a request nobody serves with NO_RESPONDERS, fast', async () => {
    const started = Date.now();
    await assert.rejects(client.request(Nobody, {}, { timeoutMs: 5000 }), {
      code: 'NO_RESPONDERS',
    });
    assert.ok(Date.now() - started < 2000);
  });

  it('sends a batch message in its parent trace, linked to every item, items readable by the handler', async () => {
    spans.reset();
    const items = ['pci-0000-00-04-0.q0.1', 'pci-0000-00-04-0.q0.2'].map((key, i) => ({
      key,
      span: telemetry.tracer
        .startSpan(`io${i}`, { root: true, attributes: { [ATTR.ioId]: key } })
        .spanContext(),
    }));
    const parent = trace.setSpanContext(context.active(), items[0]!.span);
    client.publish(Poke, { n: 3 }, { batch: { parent, items } });
    await waitFor('the poke', () => (pokes.length > 0 ? true : undefined), 3000);
    assert.deepEqual(pokes[0], { n: 3, items: items.map((i) => i.key) });
    const done = spans.getFinishedSpans();
    const sent = done.find((s) => s.name === 'send nestlab.{stack}.l0.test.poke');
    const processed = done.find((s) => s.name === 'process nestlab.{stack}.l0.test.poke');
    assert.equal(sent?.spanContext().traceId, items[0]!.span.traceId, 'in the first item’s trace');
    assert.deepEqual(
      sent?.links.map((l) => l.context.spanId),
      items.map((i) => i.span.spanId),
    );
    assert.equal(processed?.parentSpanContext?.spanId, sent?.spanContext().spanId);
    assert.equal(processed?.links.length, 2);
  });
});
