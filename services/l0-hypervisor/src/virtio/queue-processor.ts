// Device-side processing of a split virtqueue on a doorbell (spec 2.7). Each
// pass takes every chain the driver has made available (one read of their
// avail entries), walks them through the DMA engine, serves them side by
// side, then publishes their used elements with ONE used.idx store and at
// most one interrupt, as EVENT_IDX / NO_INTERRUPT allow (interrupt
// coalescing: what a batch completes, one interrupt reports). Serialized per
// queue; at most `size` chains per notify, then it yields, so a driver cannot
// make it spin.
//
// The processor knows nothing of the device type: it hands each chain to the
// DeviceModel (blk today, declared below) with a BufferIo whose every access
// goes through the DMA engine (DeviceRingMemory, at the end of this file).
import {
  ROOT_CONTEXT,
  SpanStatusCode,
  TraceFlags,
  context,
  trace,
  type Attributes,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import { toHex, type BusAddr } from '@nestlab/addr';
import { ATTR, DEVICE_ATTR } from '@nestlab/telemetry';
import { VIRTIO_F, isPending, splitRingLayout } from '@nestlab/virtio';
import type {
  DescChain,
  DeviceQueue,
  FeatureSet,
  Now,
  QueueMemory,
  SplitQueue,
  VirtioError,
} from '@nestlab/virtio';
import type { DmaDevice, DmaEngine, DmaResult, DmaWhat } from '../dma/dma-engine.js';
import { closeBudget, traceBudget, type TraceBudget } from '../dma/dma-trace.js';
import { L0Error } from '../errors.js';
import type { L0Metrics } from '../metrics.js';
import { atEndOfTurn, nextTurn } from '../turn.js';
import { takeChainTrace } from './chain-traces.js';
import type { DeviceStatus } from './device-status.js';
import type { DeviceInterrupts } from './transport.js';

/**
 * The device's DMA for request buffers; null / false when the access faulted.
 * Answered at once when the translation is local (a promise on an IOTLB miss).
 */
export interface BufferIo {
  read(addr: BusAddr, len: number): Now<Uint8Array | null>;
  write(addr: BusAddr, bytes: Uint8Array): Now<boolean>;
}

export type ServeOutcome =
  /** Served (well or with an error status the driver reads): `written` is the used element's len. */
  | { readonly kind: 'done'; readonly written: number; readonly attributes: Attributes }
  /** The chain cannot even be answered: the device goes NEEDS_RESET (QEMU virtio_error). */
  | { readonly kind: 'broken'; readonly error: VirtioError };

export interface ServeContext {
  /** The features the driver accepted. */
  readonly negotiated: FeatureSet;
  /** Settles when the chains taken from the ring before this one have been served. */
  readonly before: Promise<unknown>;
}

/** Requests answered, by outcome, for DeviceState. */
export interface RequestCounts {
  done: number;
  ioerr: number;
  unsupp: number;
}

/** What a device type (blk today) adds to the generic core: identity, config space, serving a chain. */
export interface DeviceModel {
  /** VIRTIO_ID_* (spec 5). */
  readonly deviceId: number;
  /** PCI class code a virtio-pci transport reports. */
  readonly pciClass: number;
  /** The device-specific configuration space (spec 4.1.4.6). */
  readonly config: Uint8Array;
  readonly requests: RequestCounts;
  /** Serves one chain; never throws (a failure is an outcome). */
  serve(chain: DescChain, io: BufferIo, ctx: ServeContext): Promise<ServeOutcome>;
  /** A served chain was published in the used ring: count it. */
  completed(outcome: ServeOutcome & { kind: 'done' }): void;
  /** What /state shows of the backend. */
  inspect(): Record<string, unknown>;
  /** Power-off: caches written back, files closed. */
  close(): Promise<void>;
}

/** Largest indirect table we walk (QEMU's VIRTQUEUE_MAX_SIZE). */
const MAX_INDIRECT = 1024;
/**
 * Chains served per round. Each round publishes its used entries (and may
 * interrupt) before the next starts, and the device yields to the event loop
 * in between, so the driver can harvest and refill while the device works on
 * the rest. Rounds of 8 or 16 measured slower than one round for a queue of
 * 32 on a 2-core machine (more interrupts and harvests for the same work),
 * so a round is as big as the queues the lab runs.
 */
export const CHAINS_PER_ROUND = 64;

/** What the processor needs of the device whose queues it serves (a VirtioDevice). */
export interface QueueOwner extends DmaDevice {
  readonly queues: readonly DeviceQueue[];
  readonly status: DeviceStatus;
  readonly model: DeviceModel;
  /** Bumped on every reset and at disposal: work started before it must not write back. */
  readonly epoch: number;
  readonly disposed: boolean;
  readonly interrupts: Pick<DeviceInterrupts, 'queue'>;
  /** A broken ring: NEEDS_RESET with the reason. */
  fail(error: { code: string; message: string }): void;
}

/** One chain taken from the ring, with the span its accesses are traced under. */
interface Popped {
  readonly chain: DescChain;
  readonly span: Span;
  readonly budget: TraceBudget;
  readonly mem: DeviceRingMemory;
}

export class QueueProcessor {
  private readonly tails = new Map<number, Promise<void>>();

  constructor(
    private readonly dev: QueueOwner,
    private readonly dma: DmaEngine,
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
    if (!q || !q.ready || !dev.status.running || dev.disposed) {
      this.metrics.notifiesDropped.inc({ reason: q ? 'not-running' : 'no-queue' });
      return;
    }
    const sq = q.split();
    if (!sq.ok) return dev.fail(sq.error);
    const epoch = dev.epoch;
    const span = this.tracer.startSpan('l0.device.notify', {
      attributes: { [DEVICE_ATTR.bdf]: dev.bdf, [DEVICE_ATTR.queue]: index },
    });
    const budget = traceBudget(span);
    const mem = new DeviceRingMemory(this.dma, dev, ringAreas(sq.value), budget);
    let handled = 0;
    try {
      while (handled < q.size && this.live(epoch)) {
        const p = await q.pending(mem, sq.value);
        // A failure after a reset is the old ring's, not the device's new state.
        if (!p.ok) return void this.stop(epoch, p.error.code, p.error.message);
        const n = Math.min(p.value, q.size - handled, CHAINS_PER_ROUND);
        if (n === 0) return;
        if (handled > 0) await nextTurn();
        handled += n;
        if (!(await this.batch(q, sq.value, epoch, mem, span, n))) return;
      }
      // Bounded per notify: come back later for whatever the driver added meanwhile.
      if (handled >= q.size && this.live(epoch)) atEndOfTurn(() => void this.notify(index));
    } finally {
      span.setAttribute(DEVICE_ATTR.chains, handled);
      closeBudget(budget);
      span.end();
    }
  }

  private live(epoch: number): boolean {
    return this.dev.epoch === epoch && this.dev.status.running && !this.dev.disposed;
  }

  /** Takes `n` available chains, serves them together, publishes them; false when the device stopped. */
  private async batch(
    q: DeviceQueue,
    sq: SplitQueue,
    epoch: number,
    ring: DeviceRingMemory,
    notify: Span,
    n: number,
  ): Promise<boolean> {
    const dev = this.dev;
    const avail = await q.availHeads(ring, sq, n);
    if (!avail.ok) return this.stop(epoch, avail.error.code, avail.error.message);
    const heads = avail.value;
    const popped: Popped[] = [];
    // A bad chain stops the device, but only after the good ones before it are served.
    let bad: { code: string; message: string } | null = null;
    for (const head of heads) {
      const popping = this.pop(q, sq, epoch, notify, head, ring.areas);
      const p = isPending(popping) ? await popping : popping;
      if (p === null) return this.endAll(popped);
      if ('code' in p) {
        bad = p;
        break;
      }
      popped.push(p);
    }
    const eventIdx = dev.status.has(VIRTIO_F.EVENT_IDX);
    // QEMU virtqueue_pop: publish avail_event = last_avail_idx once the chains are taken.
    if (popped.length > 0 && eventIdx) {
      const w = await q.publishAvailEvent(ring, sq);
      if (!w.ok) {
        this.endAll(popped);
        return this.stop(epoch, w.error.code, w.error.message);
      }
    }
    const negotiated = dev.status.negotiated;
    const serving: Promise<ServeOutcome>[] = [];
    for (const p of popped) {
      // `before` only when a request asks (a FLUSH): no settled-promise chain per request.
      const earlier = serving.length;
      const ctx: ServeContext = {
        negotiated,
        get before() {
          return Promise.allSettled(serving.slice(0, earlier));
        },
      };
      serving.push(dev.model.serve(p.chain, p.mem.buffers(), ctx));
    }
    const outs = await Promise.all(serving);
    try {
      // A reset while we worked: the ring is no longer ours to write.
      if (!this.live(epoch)) return false;
      let broken: ServeOutcome | null = null;
      for (const [i, p] of popped.entries()) {
        const out = outs[i]!;
        if (out.kind === 'broken') {
          broken = out;
          markFailed(p.span, out.error.code, out.error.message);
          break;
        }
        dev.model.completed(out);
        if (p.span.isRecording()) p.span.setAttributes(out.attributes);
        const adding = q.addUsedNow(p.mem, sq, p.chain.headIndex, out.written);
        const added = isPending(adding) ? await adding : adding;
        if (!added.ok) {
          markFailed(p.span, added.error.code, added.error.message);
          broken = out;
          break;
        }
      }
      const published = await q.publishUsed(ring, sq);
      if (!published.ok) return this.stop(epoch, published.error.code, published.error.message);
      if (published.value) {
        const irq = await q.needsNotification(ring, sq, eventIdx);
        if (!irq.ok) return this.stop(epoch, irq.error.code, irq.error.message);
        for (const p of popped) p.span.setAttribute(DEVICE_ATTR.interrupt, irq.value);
        if (irq.value) dev.interrupts.queue(q);
      }
      if (broken?.kind === 'broken')
        return this.stop(epoch, broken.error.code, broken.error.message);
      if (broken) return this.stop(epoch, 'MEMORY_UNREACHABLE', 'cannot write used elem');
      return bad === null ? true : this.stop(epoch, bad.code, bad.message);
    } finally {
      this.endAll(popped);
    }
  }

  /**
   * Walks one chain in the trace of the I/O that posted it (when the driver
   * said which; else under the notify span). Null when the device stopped.
   */
  private pop(
    q: DeviceQueue,
    sq: SplitQueue,
    epoch: number,
    notify: Span,
    head: number,
    areas: RingAreas,
  ): Now<Popped | { code: string; message: string } | null> {
    const dev = this.dev;
    const posted = takeChainTrace(dev, q.index, head);
    const span = this.requestSpan(q, head, notify, posted);
    const budget = traceBudget(span);
    const mem = new DeviceRingMemory(this.dma, dev, areas, budget, () => this.live(epoch));
    const walked = q.walkNow(mem, sq, head, {
      indirect: dev.status.has(VIRTIO_F.INDIRECT_DESC),
      maxIndirectEntries: MAX_INDIRECT,
    });
    return isPending(walked)
      ? walked.then((chain) => this.popped(q, epoch, chain, span, budget, mem))
      : this.popped(q, epoch, walked, span, budget, mem);
  }

  private popped(
    q: DeviceQueue,
    epoch: number,
    chain: Awaited<ReturnType<DeviceQueue['walk']>>,
    span: Span,
    budget: TraceBudget,
    mem: DeviceRingMemory,
  ): Popped | { code: string; message: string } | null {
    if (!chain.ok || !this.live(epoch)) {
      if (!chain.ok) markFailed(span, chain.error.code, chain.error.message);
      closeBudget(budget);
      span.end();
      return chain.ok ? null : { code: chain.error.code, message: chain.error.message };
    }
    q.advanceAvail();
    return { chain: chain.value, span, budget, mem };
  }

  /**
   * The chain's span: a child of the I/O that posted it (else of the notify).
   * When that trace is not recorded, its context stands in and no span is
   * started: an untraced I/O pays no tracing work per chain, and its DMA
   * records still carry its trace id.
   */
  private requestSpan(
    q: DeviceQueue,
    head: number,
    notify: Span,
    posted: SpanContext | undefined,
  ): Span {
    const parent = posted ?? notify.spanContext();
    if (!(parent.traceFlags & TraceFlags.SAMPLED) && trace.isSpanContextValid(parent))
      return trace.wrapSpanContext(parent);
    return this.tracer.startSpan(
      'l0.device.request',
      {
        attributes: { [DEVICE_ATTR.availIdx]: q.nextAvail, [DEVICE_ATTR.head]: head },
        ...(posted ? { links: [{ context: notify.spanContext() }] } : {}),
      },
      posted ? trace.setSpanContext(ROOT_CONTEXT, posted) : trace.setSpan(context.active(), notify),
    );
  }

  private endAll(popped: Popped[]): false {
    for (const p of popped.splice(0)) {
      closeBudget(p.budget);
      p.span.end();
    }
    return false;
  }

  private stop(epoch: number, code: string, message: string): false {
    if (this.dev.epoch === epoch) this.dev.fail({ code, message });
    return false;
  }
}

function markFailed(span: Span, code: string, message: string): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message });
  span.setAttribute(ATTR.errorCode, code);
}

const TRANSIENT = new Set(['TIMEOUT', 'NO_RESPONDERS']);

/** A queue's three ring areas as [what, first, end) (an address in none is an indirect table). */
type RingAreas = readonly (readonly [DmaWhat, bigint, bigint])[];

function ringAreas(q: SplitQueue): RingAreas {
  const l = splitRingLayout(q.size);
  return [
    ['desc', q.desc, q.desc + BigInt(l.desc.bytes)],
    ['avail', q.avail, q.avail + BigInt(l.avail.bytes)],
    ['used', q.used, q.used + BigInt(l.used.bytes)],
  ];
}

/**
 * The device's view of guest memory for one request: every access goes
 * through the DMA engine, labelled with the ring part it touches (an address
 * outside the three areas can only be an indirect table the walker reads).
 * Accesses are answered at once when their translation is local (readNow /
 * writeNow); only an IOTLB miss makes the walker or the request wait.
 */
class DeviceRingMemory implements QueueMemory {
  constructor(
    private readonly dma: DmaEngine,
    private readonly dev: DmaDevice,
    /** Shared by every request of a notify: the queue does not move while it runs. */
    readonly areas: RingAreas,
    private readonly budget?: TraceBudget,
    /** False once the device was reset: an abandoned request does no more DMA. */
    private readonly live: () => boolean = () => true,
  ) {}

  private what(addr: bigint): DmaWhat {
    for (const [what, lo, hi] of this.areas) if (addr >= lo && addr < hi) return what;
    return 'indirect';
  }

  /** QueueMemory: a fault rejects, and the walker turns it into MEMORY_UNREACHABLE. */
  read(addr: BusAddr, len: number): Promise<Uint8Array> {
    try {
      return Promise.resolve(this.readNow(addr, len));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** read, at once when the translation is local; a fault throws (or rejects). */
  readNow(addr: BusAddr, len: number): Now<Uint8Array> {
    const what = this.what(addr);
    const own = this.dev.ownMemory?.(addr, len);
    if (own)
      return bytesOf(this.dma.local(this.dev, addr, own, what, undefined, this.budget), what, addr);
    const r = this.dma.readNow(this.dev, addr, len, what, this.budget);
    return isPending(r) ? r.then((x) => bytesOf(x, what, addr)) : bytesOf(r, what, addr);
  }

  /** QueueMemory: false when the write faulted. */
  write(addr: BusAddr, bytes: Uint8Array): Promise<boolean> {
    return Promise.resolve(this.writeNow(addr, bytes));
  }

  /** write, at once when the translation is local. */
  writeNow(addr: BusAddr, bytes: Uint8Array): Now<boolean> {
    const own = this.dev.ownMemory?.(addr, bytes.byteLength);
    if (own) return this.dma.local(this.dev, addr, own, this.what(addr), bytes, this.budget).ok;
    const r = this.dma.writeNow(this.dev, addr, bytes, this.what(addr), this.budget);
    return isPending(r) ? r.then((x) => x.ok) : r.ok;
  }

  /** BufferIo for request buffers (header, data, status). */
  buffers(): BufferIo {
    return {
      read: (addr, len) => {
        if (!this.live()) return null;
        const r = this.dma.readNow(this.dev, addr, len, 'buffer', this.budget);
        return isPending(r) ? r.then(dataOf) : dataOf(r);
      },
      write: (addr, bytes) => {
        if (!this.live()) return false;
        const r = this.dma.writeNow(this.dev, addr, bytes, 'buffer', this.budget);
        return isPending(r) ? r.then((x) => x.ok) : r.ok;
      },
    };
  }
}

const dataOf = (r: DmaResult): Uint8Array | null => (r.ok ? r.data : null);

/** A ring access's bytes; a fault throws, typed, for the walker to report. */
function bytesOf(r: DmaResult, what: DmaWhat, addr: BusAddr): Uint8Array {
  if (!r.ok) {
    const fault = r.fault ?? 'INTERNAL';
    throw new L0Error('DMA_FAULT', `${what} ${toHex(addr)}: ${fault}`, {
      kind: TRANSIENT.has(fault) ? 'transient' : 'guest',
    });
  }
  return r.data;
}
