// Device-side processing of a split virtqueue on a doorbell (spec 2.7):
// pop chains through the DMA engine, serve them, publish used entries, and
// interrupt as EVENT_IDX / NO_INTERRUPT allow. Serialized per queue; at most
// `size` chains per notify, then it yields, so a driver cannot make it spin.
import { context, trace, SpanStatusCode, type Span, type Tracer } from '@opentelemetry/api';
import { toHex } from '@nestlab/addr';
import {
  VIRTIO_BLK_S,
  VIRTIO_F,
  availEventWrite,
  availRingAddr,
  decodeU16,
  pendingAvail,
  readRing,
  shouldInterrupt,
  usedElemWrite,
  usedIdxWrite,
  walkChain,
} from '@nestlab/virtio';
import type { SplitQueue } from '@nestlab/virtio';
import type { DiskBackend } from '../blk/disk-backend.js';
import { executeBlkRequest } from '../blk/request.js';
import type { DmaEngine } from '../dma/dma-engine.js';
import { closeBudget, traceBudget } from '../dma/dma-trace.js';
import type { L0Metrics } from '../metrics.js';
import type { VirtioBlkDevice } from './blk-device.js';
import { DeviceRingMemory } from './ring-access.js';
import type { VirtQueue } from './virtqueue.js';

/** Largest indirect table we walk (QEMU's VIRTQUEUE_MAX_SIZE). */
const MAX_INDIRECT = 1024;
const BLK_TYPE_NAMES: Record<number, string> = { 0: 'in', 1: 'out', 4: 'flush', 8: 'get_id' };
const u16 = (n: number) => n & 0xffff;

export class QueueProcessor {
  private readonly tails = new Map<number, Promise<void>>();

  constructor(
    private readonly dev: VirtioBlkDevice,
    private readonly dma: DmaEngine,
    private readonly disk: DiskBackend,
    private readonly tracer: Tracer,
    private readonly metrics: L0Metrics,
  ) {}

  /** Resolves once every drain started so far has finished. */
  async idle(): Promise<void> {
    await Promise.all(this.tails.values());
  }

  /** A doorbell: runs after any drain already in progress on that queue. */
  notify(queue: number): Promise<void> {
    const prev = this.tails.get(queue) ?? Promise.resolve();
    const next = prev.then(() => this.drain(queue)).catch(() => undefined);
    this.tails.set(queue, next);
    return next;
  }

  private async drain(index: number): Promise<void> {
    const dev = this.dev;
    const q = dev.queues[index];
    if (!q || !q.enabled || !dev.status.running || dev.disposed) {
      this.metrics.notifiesDropped.inc({ reason: q ? 'not-running' : 'no-queue' });
      return;
    }
    const sq = q.split();
    if (!sq.ok) return dev.fail(sq.error);
    const epoch = dev.epoch;
    const span = this.tracer.startSpan('l0.device.notify', {
      attributes: { 'nestlab.device.bdf': dev.bdf, 'nestlab.virtio.queue': index },
    });
    const budget = traceBudget(span);
    const mem = new DeviceRingMemory(this.dma, dev, sq.value, budget);
    let handled = 0;
    try {
      while (handled < q.size && this.live(epoch)) {
        const p = await pendingAvail(mem, sq.value, q.lastAvail);
        if (!p.ok) return dev.fail(p.error);
        if (p.value.pending === 0) return;
        for (let i = 0; i < p.value.pending && handled < q.size; i++, handled++) {
          if (!(await this.one(q, sq.value, epoch, span))) return;
        }
      }
      // Bounded per notify: come back later for whatever the driver added meanwhile.
      if (handled >= q.size && this.live(epoch)) setImmediate(() => void this.notify(index));
    } finally {
      closeBudget(budget);
      span.end();
    }
  }

  private live(epoch: number): boolean {
    return this.dev.epoch === epoch && this.dev.status.running && !this.dev.disposed;
  }

  /** Pops and serves one chain; false when the device stopped. */
  private async one(q: VirtQueue, sq: SplitQueue, epoch: number, parent: Span): Promise<boolean> {
    const dev = this.dev;
    const span = this.tracer.startSpan(
      'l0.device.request',
      { attributes: { 'nestlab.virtio.avail_idx': q.lastAvail } },
      trace.setSpan(context.active(), parent),
    );
    const budget = traceBudget(span);
    const mem = new DeviceRingMemory(this.dma, dev, sq, budget);
    const stop = (code: string, message: string) => {
      span.setStatus({ code: SpanStatusCode.ERROR, message });
      span.setAttribute('nestlab.error.code', code);
      if (this.dev.epoch === epoch) dev.fail({ code, message });
      return false;
    };
    try {
      const entry = await readRing(mem, availRingAddr(sq, q.lastAvail), 2, 'avail.ring entry');
      if (!entry.ok) return stop(entry.error.code, entry.error.message);
      const chain = await walkChain(mem, sq, decodeU16(entry.value), {
        indirect: dev.status.has(VIRTIO_F.INDIRECT_DESC),
        maxIndirectEntries: MAX_INDIRECT,
      });
      if (!chain.ok) return stop(chain.error.code, chain.error.message);
      if (!this.live(epoch)) return false;
      q.lastAvail = u16(q.lastAvail + 1);
      const eventIdx = dev.status.has(VIRTIO_F.EVENT_IDX);
      // QEMU virtqueue_pop: publish avail_event = last_avail_idx as soon as the chain is taken.
      if (eventIdx) {
        const w = availEventWrite(sq, q.lastAvail);
        if (!(await mem.writeRing(w.addr, w.bytes)))
          return stop('MEMORY_UNREACHABLE', 'cannot write avail_event');
      }
      span.setAttribute('nestlab.virtio.head', chain.value.headIndex);
      const out = await executeBlkRequest(chain.value, mem.buffers(), this.disk, dev.serial);
      if (out.kind === 'broken') return stop(out.error.code, out.error.message);
      this.count(out.type, out.status);
      span.setAttributes({
        'nestlab.blk.type': BLK_TYPE_NAMES[out.type] ?? String(out.type),
        'nestlab.blk.sector': toHex(out.sector),
        'nestlab.blk.status': out.status,
      });
      // A reset while we worked: the ring is no longer ours to write.
      if (!this.live(epoch)) return false;
      const old = q.usedIdx;
      const next = u16(old + 1);
      const elem = usedElemWrite(sq, old, chain.value.headIndex, out.written);
      if (!(await mem.writeRing(elem.addr, elem.bytes)))
        return stop('MEMORY_UNREACHABLE', 'cannot write used elem');
      const idx = usedIdxWrite(sq, next);
      if (!(await mem.writeRing(idx.addr, idx.bytes)))
        return stop('MEMORY_UNREACHABLE', 'cannot write used.idx');
      q.usedIdx = next;
      const irq = await shouldInterrupt(mem, sq, eventIdx, old, next);
      if (!irq.ok) return stop(irq.error.code, irq.error.message);
      span.setAttribute('nestlab.virtio.interrupt', irq.value);
      if (irq.value) dev.raiseQueue(q);
      return true;
    } finally {
      closeBudget(budget);
      span.end();
    }
  }

  private count(type: number, status: number): void {
    const r = this.dev.requests;
    if (status === VIRTIO_BLK_S.OK) r.done++;
    else if (status === VIRTIO_BLK_S.IOERR) r.ioerr++;
    else r.unsupp++;
    this.metrics.blkRequests.inc({ type: BLK_TYPE_NAMES[type] ?? 'other', status: String(status) });
  }
}
