import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { toHex } from '@nestlab/addr';
import { DmaLog, L0Configure, MemAccess, deviceToken } from '@nestlab/protocol';
import { ATTR, startTelemetry, type Telemetry } from '@nestlab/telemetry';
import { FeatureSet, VIRTIO_BLK_T, VIRTIO_F } from '@nestlab/virtio';
import { RingImage } from '@nestlab/virtio/testing';
import { context, trace } from '@opentelemetry/api';
import { InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace';
import { DEFAULT_BDF, defaultConfiguration } from '../config.js';
import { blkBuffers } from '../testing/blk-helpers.js';
import { TestDriver, le, type Op } from '../testing/driver.js';
import { startL0, type L0Harness } from '../testing/harness.js';
import { CHAINS_PER_ROUND } from '../virtio/queue-processor.js';

const FEATURES = FeatureSet.of(VIRTIO_F.VERSION_1);

describe('batched device work: rounds per doorbell, posted stores, chains in their own traces', () => {
  const spans = new InMemorySpanExporter();
  let telemetry: Telemetry;
  let h: L0Harness;
  let d: TestDriver;
  let ring: RingImage;

  before(async () => {
    telemetry = startTelemetry({
      serviceName: 'l0-batching-test',
      stack: 't1',
      otlpEndpoint: '',
      spanProcessors: [new SimpleSpanProcessor({ exporter: spans })],
    });
    h = await startL0({ tracer: telemetry.tracer });
  });
  beforeEach(async () => {
    const cfg = defaultConfiguration();
    const dev = cfg.devices[0];
    assert.ok(dev);
    await h.request(L0Configure, { ...cfg, devices: [{ ...dev, freshDisk: true }] });
    d = new TestDriver(h);
    await d.negotiate(FEATURES);
    ring = new RingImage(d.mem, { size: 256, base: 0x10000n });
    await d.start(ring);
    h.msis.length = 0;
  });
  after(async () => {
    await h?.stop();
    await telemetry?.shutdown();
  });

  const flushes = (n: number) =>
    Array.from({ length: n }, (_, i) =>
      ring.addChain(
        blkBuffers(d.mem, {
          type: VIRTIO_BLK_T.FLUSH,
          header: 0x40000n + BigInt(i * 0x100),
          status: 0x60000n + BigInt(i),
        }),
      ),
    );

  it('serves one doorbell in rounds: a used.idx store and an interrupt per round, not per chain', async () => {
    const since = (await h.request(DmaLog, { since: 0, limit: 1 })).head.next;
    const n = CHAINS_PER_ROUND + 3; // two descriptors each: fits the ring of 256
    flushes(n);
    await d.kick();
    await h.clientNc.flush();
    assert.equal(await d.usedIdx(ring), n);
    const rounds = Math.ceil(n / CHAINS_PER_ROUND);
    const log = (await h.request(DmaLog, { since, limit: 2000 })).head.records;
    const usedWrites = log.filter((r) => r.what === 'used' && r.write).length;
    assert.equal(usedWrites, n + rounds, 'one element per chain, one used.idx per round');
    assert.equal(h.msis.length, rounds, 'one interrupt per round (no EVENT_IDX, flags 0)');
    assert.ok(
      (await d.read(0x60000n, n)).every((b) => b === 0),
      'every status OK',
    );
  });

  it('applies a posted MemAccess before a request sent after it, and ops after a doorbell see the drained ring', async () => {
    h.client.publish(
      MemAccess,
      { requester: { kind: 'xen' }, ops: [{ op: 'write', addr: toHex(0x50000n), len: 4 }] },
      { data: Uint8Array.of(1, 2, 3, 4) },
    );
    assert.deepEqual([...(await d.read(0x50000n, 4))], [1, 2, 3, 4]);
    flushes(3);
    const l = d.layout!;
    const ops: Op[] = [
      ...d.mem.pending.map((p) => ({ op: 'write' as const, addr: p.addr, bytes: p.bytes })),
      { op: 'write', addr: l.bar + BigInt(l.notify), bytes: le(0, 2) },
      { op: 'read', addr: ring.queue.used + 2n, len: 2 },
    ];
    d.mem.pending = [];
    const [idx] = await d.access(ops);
    assert.deepEqual([...idx!], [3, 0], 'the poll right after the doorbell finds all three used');
  });

  it('refuses ops after a doorbell that do not declare the drain wait (ORDER_UNDECLARED), doorbell untaken', async () => {
    flushes(2);
    await d.flush();
    const l = d.layout!;
    await assert.rejects(
      h.client.request(
        MemAccess,
        {
          requester: { kind: 'xen' },
          ops: [
            { op: 'write', addr: toHex(l.bar + BigInt(l.notify)), len: 2 },
            { op: 'read', addr: toHex(ring.queue.used + 2n), len: 2 },
          ],
        },
        { data: le(0, 2) },
      ),
      { code: 'ORDER_UNDECLARED' },
    );
    assert.equal((await d.state()).queues[0]?.lastAvail, 0, 'the doorbell did not ring');
    await d.kick();
    assert.equal(await d.usedIdx(ring), 2);
  });

  it('puts each chain’s device work into the trace its batch item names', async () => {
    const heads = flushes(2);
    const ios = heads.map((_, i) =>
      telemetry.tracer.startSpan(`io${i}`, { root: true, attributes: { [ATTR.ioId]: `io${i}` } }),
    );
    const items = heads.map((head, i) => ({
      key: `${deviceToken(DEFAULT_BDF)}.q0.${head}`,
      span: ios[i]!.spanContext(),
    }));
    const l = d.layout!;
    const writes = [...d.mem.pending, { addr: l.bar + BigInt(l.notify), bytes: le(0, 2) }];
    d.mem.pending = [];
    const data = new Uint8Array(writes.reduce((n, w) => n + w.bytes.byteLength, 0));
    writes.reduce((at, w) => (data.set(w.bytes, at), at + w.bytes.byteLength), 0);
    spans.reset();
    await h.client.request(
      MemAccess,
      {
        requester: { kind: 'xen' },
        ops: writes.map((w) => ({
          op: 'write' as const,
          addr: toHex(w.addr),
          len: w.bytes.byteLength,
        })),
      },
      { data, batch: { parent: trace.setSpan(context.active(), ios[0]!), items } },
    );
    const requests = spans.getFinishedSpans().filter((s) => s.name === 'l0.device.request');
    assert.equal(requests.length, 2);
    for (const [i, io] of ios.entries()) {
      const req = requests.find((r) => r.attributes['nestlab.virtio.head'] === heads[i]);
      assert.equal(
        req?.spanContext().traceId,
        io.spanContext().traceId,
        `chain ${i} in its I/O's trace`,
      );
      assert.equal(req?.parentSpanContext?.spanId, io.spanContext().spanId);
      const dma = spans
        .getFinishedSpans()
        .filter((s) => s.parentSpanContext?.spanId === req?.spanContext().spanId);
      assert.ok(
        dma.length > 0 && dma.every((s) => s.name.startsWith('l0.dma ')),
        'its accesses under it',
      );
    }
  });
});
