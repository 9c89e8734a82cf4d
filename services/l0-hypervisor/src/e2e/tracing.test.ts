import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { DmaLog, L0Configure } from '@nestlab/protocol';
import { ATTR, startTelemetry, type Telemetry } from '@nestlab/telemetry';
import { FeatureSet, VIRTIO_BLK_T, VIRTIO_F } from '@nestlab/virtio';
import { RingImage } from '@nestlab/virtio/testing';
import { defaultConfiguration } from '../config.js';
import { DMA_ATTR } from '../dma/dma-trace.js';
import { blkBuffers, pattern } from '../testing/blk-helpers.js';
import { TestDriver } from '../testing/driver.js';
import { startL0, type L0Harness } from '../testing/harness.js';

describe('tracing: one request span, bounded DMA child spans with address attributes', () => {
  const spans = new InMemorySpanExporter();
  let telemetry: Telemetry;
  let h: L0Harness;
  before(async () => {
    telemetry = startTelemetry({
      serviceName: 'l0-test',
      stack: 't1',
      otlpEndpoint: '',
      spanProcessors: [new SimpleSpanProcessor({ exporter: spans })],
    });
    h = await startL0({ tracer: telemetry.tracer });
  });
  after(async () => {
    await h?.stop();
    await telemetry?.shutdown();
  });

  it('links doorbell → notify → request → DMA spans, 8 traced accesses then counts', async () => {
    const cfg = defaultConfiguration();
    const dev = cfg.devices[0];
    assert.ok(dev);
    await h.request(L0Configure, { ...cfg, devices: [{ ...dev, freshDisk: true }] });
    const d = new TestDriver(h);
    await d.negotiate(FeatureSet.of(VIRTIO_F.VERSION_1));
    const ring = new RingImage(d.mem, { size: 8, base: 0x10000n });
    await d.start(ring);
    d.mem.write(0x40000n, pattern(5 * 4096));
    ring.addChain(
      blkBuffers(d.mem, {
        type: VIRTIO_BLK_T.OUT,
        header: 0x20000n,
        data: [{ addr: 0x40000n, len: 5 * 4096 }],
        status: 0x20100n,
      }),
    );
    const since = (await h.request(DmaLog, { since: 0, limit: 1 })).head.next;
    spans.reset();
    await d.kick();

    const done = spans.getFinishedSpans();
    const req = done.find((s) => s.name === 'l0.device.request');
    assert.ok(req, done.map((s) => s.name).join(', '));
    const notify = done.find((s) => s.name === 'l0.device.notify');
    assert.equal(req.parentSpanContext?.spanId, notify?.spanContext().spanId);
    const access = done.find((s) => s.name === 'process nestlab.{stack}.l0.mem.access');
    assert.equal(
      notify?.parentSpanContext?.spanId,
      access?.spanContext().spanId,
      'notify runs inside MemAccess',
    );

    const dma = done.filter((s) => s.parentSpanContext?.spanId === req.spanContext().spanId);
    assert.equal(dma.length, 8, 'child spans for the first 8 accesses only');
    const total = Number(req.attributes[DMA_ATTR.accesses]);
    // The chain's own accesses: 3 descriptors, header, 5 data pages, status, used elem.
    assert.equal(total, 11);
    assert.equal(req.attributes[DMA_ATTR.untraced], total - 8);
    // The ring bookkeeping of the batch is the notify's: avail.idx, avail.ring entries,
    // used.idx, avail.flags (interrupt?), avail.idx again (anything new?).
    assert.equal(notify?.attributes[DMA_ATTR.accesses], 5);
    const first = dma[0];
    assert.ok(first);
    assert.equal(first.attributes[ATTR.dmaVerdict], 'direct');
    assert.equal(first.attributes[ATTR.translationBy], 'identity');
    assert.match(String(first.attributes[ATTR.addrBus]), /^0x[0-9a-f]+$/);
    assert.equal(first.attributes[ATTR.addrMachine], first.attributes[ATTR.addrBus]);
    assert.equal(first.attributes[ATTR.addrHostPhys], first.attributes[ATTR.addrBus]);

    const log = (await h.request(DmaLog, { since, limit: 100 })).head.records;
    const traced = log.filter((r) => r.traceId === req.spanContext().traceId);
    assert.ok(traced.length >= total, 'records carry the trace id');
    assert.ok(traced.every((r) => typeof r.spanId === 'string'));
  });
});
