import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { connect } from '@nats-io/transport-node';
import { headers } from '@nats-io/nats-core';
import { ROOT_CONTEXT, TraceFlags, context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { startNatsServer, type NatsServerHandle } from '@nestlab/testing';
import {
  ATTR,
  batchItemsOf,
  droppedChild,
  droppedIoRoot,
  extractBatchItems,
  injectBatchItems,
  ioTraceBudget,
  ioTraceCapFromEnv,
  resetIoTraceBudget,
  startTelemetry,
  withBatchItems,
  type Telemetry,
} from './index.js';

describe('the I/O trace budget and batch items', () => {
  const spans = new InMemorySpanExporter();
  let telemetry: Telemetry;
  let server: NatsServerHandle;
  before(async () => {
    telemetry = startTelemetry({
      serviceName: 'sampling-test',
      stack: 't1',
      otlpEndpoint: '',
      spanProcessors: [new SimpleSpanProcessor({ exporter: spans })],
      ioTraceCap: 3,
    });
    server = await startNatsServer();
  });
  after(async () => {
    await telemetry.shutdown();
    await server.stop();
  });

  it('records the first N I/O roots of a run, their children with them, and starts over per run', () => {
    const tracer = telemetry.tracer;
    const io = (i: number) =>
      tracer.startSpan('dom0.io', { root: true, attributes: { [ATTR.ioId]: `i${i}` } });
    const roots = [0, 1, 2, 3, 4].map(io);
    assert.deepEqual(
      roots.map((s) => s.isRecording()),
      [true, true, true, false, false],
    );
    const child = (parent: ReturnType<typeof io>) =>
      tracer.startSpan('dom0.ring.post', {}, trace.setSpan(ROOT_CONTEXT, parent));
    assert.equal(child(roots[0]!).isRecording(), true, 'a traced I/O keeps its children');
    assert.equal(child(roots[4]!).isRecording(), false, 'an untraced one has none');
    assert.equal(roots[4]!.spanContext().traceFlags & TraceFlags.SAMPLED, 0);
    assert.match(roots[4]!.spanContext().traceId, /^[0-9a-f]{32}$/, 'ids stay valid');
    assert.deepEqual(ioTraceBudget(), { cap: 3, started: 3, skipped: 2 });
    const other = tracer.startSpan('process nestlab.{stack}.xen.irq.msi', { root: true });
    assert.equal(other.isRecording(), true, 'roots that are not I/Os do not use the budget');
    resetIoTraceBudget();
    assert.equal(io(5).isRecording(), true, 'a new run, a new budget');
  });

  it('decides an I/O root the sampler would drop without starting a span, counting it alike', () => {
    resetIoTraceBudget();
    const io = (i: number) =>
      telemetry.tracer.startSpan('dom0.io', { root: true, attributes: { [ATTR.ioId]: `d${i}` } });
    for (let i = 0; i < 3; i++) {
      assert.equal(droppedIoRoot(), null, 'within the budget the SDK starts (and records) it');
      assert.equal(io(i).isRecording(), true);
    }
    const seen = new Set<string>();
    for (let i = 0; i < 500; i++) {
      const span = droppedIoRoot();
      assert.ok(span);
      assert.equal(span.isRecording(), false);
      const sc = span.spanContext();
      assert.equal(sc.traceFlags & TraceFlags.SAMPLED, 0);
      assert.match(sc.traceId, /^[0-9a-f]{32}$/);
      assert.match(sc.spanId, /^[0-9a-f]{16}$/);
      assert.ok(trace.isSpanContextValid(sc), 'ids stay valid');
      seen.add(sc.traceId);
    }
    assert.equal(seen.size, 500, 'a fresh trace id per I/O');
    assert.deepEqual(ioTraceBudget(), { cap: 3, started: 3, skipped: 500 });
    resetIoTraceBudget();
  });

  it('decides the child of an unsampled parent without the SDK, as the SDK would, and leaves the rest to it', () => {
    resetIoTraceBudget();
    const traced = telemetry.tracer.startSpan('dom0.io', {
      root: true,
      attributes: { [ATTR.ioId]: 'c0' },
    });
    assert.equal(droppedChild(trace.setSpan(ROOT_CONTEXT, traced)), null, 'a sampled parent');
    assert.equal(droppedChild(ROOT_CONTEXT), null, 'no parent: a root, the sampler decides');
    const parent = trace.wrapSpanContext({
      traceId: '0af7651916cd43dd8448eb211c80319c',
      spanId: 'b7ad6b7169203331',
      traceFlags: TraceFlags.NONE,
    });
    const pctx = trace.setSpan(ROOT_CONTEXT, parent);
    const sdk = telemetry.tracer.startSpan('process x', {}, pctx);
    const spanIds = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const mine = droppedChild(pctx);
      assert.ok(mine);
      assert.equal(mine.isRecording(), sdk.isRecording());
      const [a, b] = [mine.spanContext(), sdk.spanContext()];
      assert.equal(a.traceId, b.traceId, 'the same trace as the SDK gives it');
      assert.equal(a.traceFlags, b.traceFlags);
      assert.notEqual(a.spanId, parent.spanContext().spanId, 'a span id of its own');
      assert.ok(trace.isSpanContextValid(a));
      spanIds.add(a.spanId);
    }
    assert.equal(spanIds.size, 100);
    assert.deepEqual(ioTraceBudget().skipped, 0, 'children do not touch the I/O budget');
    traced.end();
  });

  it('reads NESTLAB_TRACE_IO_CAP and refuses a bad value naming it', () => {
    assert.equal(ioTraceCapFromEnv({ NESTLAB_TRACE_IO_CAP: '12' }), 12);
    assert.equal(ioTraceCapFromEnv({}), 64, "the README's default");
    assert.throws(() => ioTraceCapFromEnv({ NESTLAB_TRACE_IO_CAP: '-1' }), /NESTLAB_TRACE_IO_CAP/);
    assert.throws(() => ioTraceCapFromEnv({ NESTLAB_TRACE_IO_CAP: 'lots' }), {
      code: 'CONFIG_INVALID',
    });
  });

  it('carries each recorded item of a batch message in one header, over a real server', async () => {
    const tracer = telemetry.tracer;
    const a = tracer.startSpan('a', { root: true, attributes: { [ATTR.ioId]: 'a' } });
    resetIoTraceBudget();
    const b = tracer.startSpan('b', { root: true, attributes: { [ATTR.ioId]: 'b' } });
    const nc = await connect({ servers: server.url });
    const got = new Promise<ReturnType<typeof extractBatchItems>>((resolve) => {
      nc.subscribe('batch', { callback: (_e, m) => resolve(extractBatchItems(m.headers)) });
    });
    const hdrs = headers();
    injectBatchItems(hdrs, [
      { key: 'pci-0000-00-04-0.q0.7', span: a.spanContext() },
      { key: 'bad key!', span: b.spanContext() },
      { key: 'pci-0000-00-04-0.q0.8', span: b.spanContext() },
      { key: 'untraced', span: { ...b.spanContext(), traceFlags: TraceFlags.NONE } },
    ]);
    nc.publish('batch', new Uint8Array(1), { headers: hdrs });
    const items = await got;
    await nc.close();
    assert.ok(items);
    assert.deepEqual([...items.keys()], ['pci-0000-00-04-0.q0.7', 'pci-0000-00-04-0.q0.8']);
    assert.equal(items.get('pci-0000-00-04-0.q0.7')?.spanId, a.spanContext().spanId);
    assert.equal(items.get('pci-0000-00-04-0.q0.8')?.traceId, b.spanContext().traceId);
    const ctx = withBatchItems(context.active(), items);
    assert.equal(batchItemsOf(ctx), items);
    assert.equal(batchItemsOf(ROOT_CONTEXT), undefined);
    assert.equal(extractBatchItems(undefined), null);
  });
});
