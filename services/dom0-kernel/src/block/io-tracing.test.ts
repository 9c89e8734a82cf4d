import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startTelemetry, type Telemetry } from '@nestlab/telemetry';
import { FeatureSet, VIRTIO_F } from '@nestlab/virtio';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { AppHarness } from '../testing/app-harness.js';
import { shuffledP2m } from '../testing/xen-double.js';

describe('one trace per I/O', () => {
  const spans = new InMemorySpanExporter();
  let telemetry: Telemetry;
  let app: AppHarness;
  before(async () => {
    telemetry = startTelemetry({
      serviceName: 'dom0-test',
      stack: 'ut',
      otlpEndpoint: '',
      spanProcessors: [new SimpleSpanProcessor({ exporter: spans })],
    });
    app = await AppHarness.start();
  });
  after(async () => {
    await app?.close();
    await telemetry?.shutdown();
  });

  it('roots dom0.io, with the DMA mapping, the ring post and the completion as children, across NATS', async () => {
    const s = await app.scenario(
      { offer: FeatureSet.of(VIRTIO_F.VERSION_1) },
      shuffledP2m(0x20000, 256, 0x40000),
    );
    await app.configure({
      generation: 'modern',
      policy: 'xen-swiotlb',
      wanted: FeatureSet.of(VIRTIO_F.VERSION_1),
      queueSize: 16,
    });
    assert.equal((await app.probe()).ok, true);
    spans.reset();
    const job = app.job({
      rw: 'write',
      bs: 4096,
      iodepth: 1,
      ios: 1,
      seed: 3,
      verify: true,
      deadlineMs: 3000,
      spanBytes: 4096,
    });
    while (s.device.pending() === 0) await new Promise((r) => setTimeout(r, 3));
    await s.device.serveOne();
    s.device.interrupt(app.h.peer, s.xen.ports.queue);
    const report = await job;
    assert.equal(report.completed, 1);
    const all = spans.getFinishedSpans();
    const root = all.find((x) => x.name === 'dom0.io');
    assert.ok(root);
    assert.equal(root.parentSpanContext, undefined, 'a root span');
    assert.equal(root.attributes['nestlab.io.id'], 'j1-0');
    const traceId = root.spanContext().traceId;
    assert.deepEqual(report.traceIds, [traceId]);
    const inTrace = all.filter((x) => x.spanContext().traceId === traceId);
    const children = inTrace.filter(
      (x) => x.parentSpanContext?.spanId === root.spanContext().spanId,
    );
    assert.deepEqual(children.map((c) => c.name).sort(), [
      'dom0.dma.map',
      'dom0.dma.map',
      'dom0.io.complete',
      'dom0.ring.harvest',
      'dom0.ring.post',
    ]);
    for (const m of children.filter((c) => c.name === 'dom0.dma.map')) {
      assert.match(String(m.attributes['nestlab.addr.pseudo_phys']), /^0x2[0-9a-f]{7}$/);
      assert.equal(m.attributes['nestlab.addr.bus'], m.attributes['nestlab.addr.machine']);
      assert.notEqual(m.attributes['nestlab.addr.bus'], m.attributes['nestlab.addr.pseudo_phys']);
      assert.equal(m.attributes['nestlab.translation.by'], 'p2m');
    }
    // The register double's handler span joined the I/O's trace through the NATS headers.
    const served = inTrace.filter((x) => x.name === 'process nestlab.{stack}.l0.mem.access');
    assert.ok(served.length >= 2, 'ring post + used-ring read travel in the I/O trace');
    const harvest = children.find((c) => c.name === 'dom0.ring.harvest');
    assert.ok(
      inTrace.some(
        (x) =>
          x.name === 'send nestlab.{stack}.l0.mem.access' &&
          x.parentSpanContext?.spanId === harvest?.spanContext().spanId,
      ),
      'the used-ring read (with the status load) is sent under the harvest',
    );
  });
});
