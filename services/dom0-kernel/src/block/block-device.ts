// The block layer over one virtqueue: one trace per I/O ('dom0.io'), DMA
// mapping, ring posting, and completion (status, data, unmap) — each I/O ends
// exactly once through the request tracker. The I/O's CPU stores ride with its
// chain and its completion loads with the used-ring read, so the ring driver
// can batch several I/Os into one message each way.
// The block layer subscribes to its virtqueue (virtio/virtqueue.ts): used
// chains come in with the device epoch that completed them; after a device
// reset every I/O still pending is posted again on the new ring with its
// stores (header, data, bounce) rewritten, and buffers of I/Os that already
// ended are released, since a reset device can no longer reach them.
import { addOffset, toHex, type PseudoPhysAddr } from '@nestlab/addr';
import { ATTR, droppedIoRoot, tracingRecording } from '@nestlab/telemetry';
import {
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanStatusCode,
  context,
  trace,
  type Context,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import { errorInfo } from '../errors.js';
import {
  tracedMap,
  type DmaDirection,
  type DmaMapping,
  type DmaPolicyImpl,
} from '../dma/policy.js';
import type { CpuMemory, CpuStore } from '../mm/cpu-memory.js';
import type { PageAllocator, PageRun } from '../mm/page-allocator.js';
import type { ChainRequest, Harvested } from '../virtio/split-ring-driver.js';
import type { Virtqueue } from '../virtio/virtqueue.js';
import type { Dom0Metrics } from '../metrics.js';
import { BLK_REQ_HEADER_SIZE } from '@nestlab/virtio';
import {
  READ_POISON,
  STATUS_OFFSET,
  blkHeader,
  checkIo,
  dataAddr,
  requestPages,
  statusError,
  type BlkIo,
} from './blk-request.js';
import type { LazyAbort, RequestTracker } from './request-tracker.js';

export interface Completion {
  status: number;
  data?: Uint8Array;
  /** The device epoch the completion was harvested in (see Virtqueue.epoch). */
  epoch?: number;
}

export interface IoResult {
  readonly id: string;
  readonly ok: boolean;
  readonly code?: string;
  readonly message?: string;
  readonly data?: Uint8Array;
  readonly latencyUs: number;
  readonly traceId: string;
  /**
   * The device epoch the I/O completed in (completed I/Os only). A FLUSH
   * covers only writes its device instance completed: one of another epoch
   * may have been lost with the volatile cache of a reset device.
   */
  readonly epoch?: number;
}

interface IoState {
  readonly io: BlkIo;
  /** The I/O's context (ROOT_CONTEXT when this process records nothing: it carries nothing then). */
  readonly ctx: Context;
  /** The I/O's root span: L0 traces the chain in it (ids flow even when unrecorded). */
  readonly root: SpanContext;
  /** The I/O's trace is recorded: worth child spans. */
  readonly recording: boolean;
  readonly deadlineAt: number;
  readonly deadlineMs: number;
  readonly abort: LazyAbort;
  pages?: PageRun;
  hdr?: DmaMapping;
  data?: DmaMapping;
  /** The chain as built once its buffers were mapped: what a resubmit posts again. */
  chain?: ChainRequest<string>;
  /** When it was last posted. */
  postedAt?: number;
}

export interface BlockDeviceDeps {
  readonly tracer: Tracer;
  readonly cpu: CpuMemory;
  readonly policy: DmaPolicyImpl;
  readonly pages: PageAllocator;
  readonly queue: Virtqueue<string>;
  readonly tracker: RequestTracker<Completion>;
  readonly metrics: Dom0Metrics;
  /** Non-null when the device needs a reset or the driver moved on: submissions fail at once. */
  readonly broken: () => { code: string; message: string } | null;
  readonly onError?: (err: unknown, what: string) => void;
  /**
   * What the status byte holds before the device writes it: the lab's
   * sentinel by default; 0 for a driver modelled on Linux's virtio_blk,
   * whose request memory blk-mq allocates zeroed and never presets.
   */
  readonly statusPreset?: number;
}

/** Failures of another service that is away for a while (restarting): worth retrying. */
export const isTransient = (err: unknown): boolean => {
  const { code } = errorInfo(err);
  return code === 'NO_RESPONDERS' || code === 'TIMEOUT';
};
const RETRY_FIRST_MS = 10;
const RETRY_MAX_MS = 250;
const UNMAP_RETRIES = 12;

const UNTRACED = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/**
 * A read's poison of `len` bytes, made once per length: stores are only ever
 * copied out of (into the frame to L0), so every read can share one block.
 */
const poisons = new Map<number, Uint8Array>();
function poisonOf(len: number): Uint8Array {
  let p = poisons.get(len);
  if (p === undefined) {
    p = new Uint8Array(len).fill(READ_POISON);
    if (poisons.size < 16) poisons.set(len, p);
  }
  return p;
}
const STATUS_SENTINEL = 0xff; // a status the device never writes: shows it did not write one
const MAX_REQUEST_TIMEOUT_MS = 5000;
const MIN_REQUEST_TIMEOUT_MS = 1000;

export class BlockDevice {
  private readonly states = new Map<string, IoState>();
  /** Used elements naming no I/O of ours. */
  unknownCompletions = 0;
  /** Chains posted again on a new ring after a device reset. */
  resubmitted = 0;
  /** Hypercalls (maps, unmaps) retried because Xen or the IOMMU did not answer. */
  retries = 0;
  /** When the used ring last moved, or the queue last went from idle to busy. */
  private lastProgressAt = Date.now();

  constructor(private readonly d: BlockDeviceDeps) {
    d.queue.subscribe({
      used: (done, epoch) => {
        for (const h of done) this.onUsed(h, epoch);
      },
      reset: () => this.repostPending(),
    });
  }

  /** The device instance I/Os complete in now (see Virtqueue.epoch). */
  get epoch(): number {
    return this.d.queue.epoch;
  }

  /**
   * Pending I/Os (not yet ended) whose chain went to the ring, and how long
   * the used ring has not moved; null when none is waiting on the device.
   */
  stall(now = Date.now()): { ms: number; minDeadlineMs: number } | null {
    let min = Infinity;
    let firstPost = Infinity;
    for (const s of this.states.values()) {
      if (s.postedAt !== undefined && this.d.tracker.isPending(s.io.id)) {
        min = Math.min(min, s.deadlineMs);
        firstPost = Math.min(firstPost, s.postedAt);
      }
    }
    if (min === Infinity) return null;
    // The clock runs from the last progress, or from the oldest post if the queue was idle then.
    return { ms: now - Math.max(this.lastProgressAt, firstPost), minDeadlineMs: min };
  }

  /**
   * The queue was set up again on a reset device: every pending I/O that had
   * reached the old ring is posted again (same data, stores rewritten); the
   * buffers of I/Os that ended meanwhile are released.
   */
  private repostPending(): number {
    const again: IoState[] = [];
    for (const s of [...this.states.values()]) {
      if (s.chain === undefined) continue; // still mapping: it posts on the new ring itself
      if (this.d.tracker.isPending(s.io.id)) again.push(s);
      else void this.release(s);
    }
    this.lastProgressAt = Date.now();
    for (const s of again) {
      this.resubmitted++;
      void context
        .with(s.ctx, () => this.post(s, true))
        .catch((err: unknown) => {
          const e = errorInfo(err);
          this.d.tracker.fail(s.io.id, e.code, e.message);
        });
    }
    return again.length;
  }

  get buffersHeld(): number {
    return this.states.size;
  }

  async submit(io: BlkIo, deadlineMs: number): Promise<IoResult> {
    checkIo(io);
    const started = process.hrtime.bigint();
    // The sampler decides on the I/O id; the rest is worth setting on a recorded span only.
    // An I/O it drops gets its ids without the SDK starting a span.
    const span =
      droppedIoRoot() ??
      this.d.tracer.startSpan('dom0.io', { root: true, attributes: { [ATTR.ioId]: io.id } });
    const recording = span.isRecording();
    if (recording) {
      span.setAttribute(ATTR.ioOp, io.op);
      span.setAttribute(ATTR.ioSector, io.sector.toString());
      span.setAttribute(ATTR.ioBytes, io.len);
    }
    // A process that records no spans keeps no context (NoContextManager): making one per I/O was waste.
    const ctx = recording || tracingRecording() ? trace.setSpan(ROOT_CONTEXT, span) : ROOT_CONTEXT;
    const { outcome, abort } = this.d.tracker.start(io.id, deadlineMs);
    const broken = this.d.broken();
    if (broken !== null) {
      this.d.tracker.fail(io.id, broken.code, broken.message);
    } else {
      const state: IoState = {
        io,
        ctx,
        root: span.spanContext(),
        recording,
        deadlineAt: Date.now() + deadlineMs,
        deadlineMs,
        abort,
      };
      void context
        .with(ctx, () => this.start(state, abort))
        .catch((err: unknown) => {
          const e = errorInfo(err);
          this.d.tracker.fail(io.id, e.code, e.message);
        });
    }
    const o = await outcome;
    const latencyUs = Number((process.hrtime.bigint() - started) / 1000n);
    const code = o.ok ? statusError(o.value.status) : o.code;
    const traceId = span.spanContext().traceId;
    let result: IoResult;
    if (code === null && o.ok) {
      // The common case, built in one go (no spreads).
      const { data } = o.value;
      const epoch = o.value.epoch ?? this.epoch;
      result =
        data !== undefined
          ? { id: io.id, ok: true, latencyUs, traceId, data, epoch }
          : { id: io.id, ok: true, latencyUs, traceId, epoch };
    } else {
      result = {
        id: io.id,
        ok: code === null,
        latencyUs,
        traceId,
        ...(code !== null
          ? { code, message: o.ok ? `device status ${o.value.status}` : o.message }
          : {}),
        ...(o.ok && o.value.data ? { data: o.value.data } : {}),
        ...(o.ok ? { epoch: o.value.epoch ?? this.epoch } : {}),
      };
    }
    if (code === null) {
      this.d.metrics.iosOk[io.op].inc();
      this.d.metrics.latency.observe(latencyUs / 1e6);
    } else {
      this.d.metrics.ios.inc({ op: io.op, result: code });
      span.setStatus({ code: SpanStatusCode.ERROR, message: result.message ?? code });
      span.setAttribute(ATTR.errorCode, code);
    }
    span.end();
    return result;
  }

  /** Requests end by the deadline; past it (a late completion's cleanup) they still get a fair chance. */
  private timeout(s: IoState): number {
    return Math.min(
      MAX_REQUEST_TIMEOUT_MS,
      Math.max(MIN_REQUEST_TIMEOUT_MS, s.deadlineAt - Date.now()),
    );
  }

  private async start(s: IoState, abort: LazyAbort): Promise<void> {
    const { io } = s;
    const { tracer, policy } = this.d;
    this.states.set(io.id, s);
    try {
      const pages = this.d.pages.alloc(requestPages(io.len));
      s.pages = pages;
      const dataDir: DmaDirection = io.op === 'read' ? 'from-device' : 'to-device';
      // A policy that maps without a hypercall maps an untraced I/O at once: nothing to await.
      if (policy.mapNow && !s.recording) {
        s.hdr = policy.mapNow(pages.addr, STATUS_OFFSET + 1, 'bidirectional');
        if (io.op !== 'flush') s.data = policy.mapNow(dataAddr(pages.addr), io.len, dataDir);
      } else {
        // Header+status and data are mapped side by side (under an IOMMU, one hypercall
        // carries them and the maps of every other I/O started in this turn).
        const map = (pseudo: PseudoPhysAddr, len: number, dir: DmaDirection, what: string) =>
          this.retrying(s, abort, () =>
            s.recording
              ? tracedMap(tracer, policy, pseudo, len, dir, what)
              : policy.map(pseudo, len, dir),
          );
        const maps = await Promise.allSettled([
          map(pages.addr, STATUS_OFFSET + 1, 'bidirectional', 'header+status'),
          io.op === 'flush'
            ? Promise.resolve(undefined)
            : map(dataAddr(pages.addr), io.len, dataDir, 'data'),
        ]);
        if (maps[0].status === 'fulfilled') s.hdr = maps[0].value;
        if (maps[1].status === 'fulfilled' && maps[1].value) s.data = maps[1].value;
        for (const m of maps) if (m.status === 'rejected') throw m.reason;
      }
      if (abort.aborted) throw abort.signal.reason;
    } catch (err) {
      await this.release(s);
      throw err;
    }
    s.chain = this.chain(s);
    await this.post(s);
  }

  /** The I/O's chain: header, data (none for FLUSH), status; its stores and completion loads. */
  private chain(s: IoState): ChainRequest<string> {
    const { io, hdr, data, pages } = s as IoState & { hdr: DmaMapping; pages: PageRun };
    const head = new Uint8Array(STATUS_OFFSET + 1);
    head.set(blkHeader(io));
    head[STATUS_OFFSET] = this.d.statusPreset ?? STATUS_SENTINEL;
    const stores: CpuStore[] = [{ addr: pages.addr, bytes: head }];
    // The DMA API owns the bounce copies: the buffer's stores and, when bounced, the slot's.
    const { policy } = this.d;
    if (io.op === 'write' && io.data && data)
      for (const st of policy.syncForDevice(data, io.data)) stores.push(st);
    // The poison goes to the bounce slot too (swiotlb copies the buffer there on map).
    if (io.op === 'read' && io.poison === true && data)
      for (const st of policy.syncForDevice(data, poisonOf(io.len))) stores.push(st);
    const loads = [{ addr: addOffset(pages.addr, STATUS_OFFSET), len: 1 }];
    if (io.op === 'read' && data) loads.push(policy.deviceWritten(data));
    const header = { bus: hdr.bus, len: BLK_REQ_HEADER_SIZE, writable: false };
    const statusByte = { bus: addOffset(hdr.bus, STATUS_OFFSET), len: 1, writable: true };
    const buffers = data
      ? [header, { bus: data.bus, len: io.len, writable: io.op === 'read' }, statusByte]
      : [header, statusByte];
    return { token: io.id, buffers, stores, loads, io: s.root };
  }

  /** Posts the I/O's chain on the current ring (waiting out a device reset). */
  private async post(s: IoState, resubmit = false): Promise<void> {
    const { abort } = s;
    const { queue } = this.d;
    if (queue.resetting) await queue.ready();
    const chain = s.chain!;
    s.postedAt = Date.now();
    try {
      await this.child(s, 'dom0.ring.post', async (span) => {
        try {
          const r = await queue.post(chain, {
            signal: () => abort.signal,
            timeoutMs: this.timeout(s),
          });
          // The ring was replaced under the post (device reset): the repost sends it again.
          if (r === null) return;
          span.setAttribute(ATTR.ringHead, r.head);
          span.setAttribute(ATTR.ringKicked, r.kicked);
          span.setAttribute(ATTR.ringBatched, r.batched);
          if (resubmit) span.setAttribute(ATTR.ioResubmitted, true);
          this.d.metrics.kicksBy[r.kicked ? 'sent' : 'suppressed'].inc();
        } finally {
          span.end();
        }
      });
    } catch (err) {
      // Aborted while waiting for descriptors: nothing reached the ring.
      if (abort.abortedBy(err)) {
        await this.release(s);
        throw err;
      }
      // L0 away (restarting): the chain may or may not be there; the hung-queue
      // watch resets the device and resubmits once L0 answers again.
      if (isTransient(err)) {
        this.d.onError?.(err, `posting ${s.io.id} (left to recovery)`);
        return;
      }
      // Otherwise the device may have seen the chain: keep its buffers until it completes.
      throw err;
    }
  }

  /**
   * A hypercall that Xen or the IOMMU did not answer (NO_RESPONDERS, TIMEOUT:
   * restarting) is tried again with backoff until it works or the I/O ends
   * (its deadline fails it TIMEOUT and aborts this).
   */
  private async retrying<R>(s: IoState, abort: LazyAbort, fn: () => Promise<R>): Promise<R> {
    for (let wait = RETRY_FIRST_MS; ; wait = Math.min(RETRY_MAX_MS, wait * 2)) {
      try {
        return await fn();
      } catch (err) {
        const left = s.deadlineAt - Date.now();
        if (!isTransient(err) || abort.aborted || left < -RETRY_MAX_MS) throw err;
        this.retries++;
        await new Promise((r) => setTimeout(r, Math.max(1, Math.min(wait, left))));
        if (abort.aborted) throw abort.signal.reason;
      }
    }
  }

  /** A used element for an I/O, harvested in device epoch `epoch`, with its completion loads. */
  private onUsed(h: Harvested<string>, epoch: number): void {
    const id = h.token;
    const s = this.states.get(id);
    this.lastProgressAt = Date.now();
    if (s === undefined) {
      this.unknownCompletions++;
      return;
    }
    const failed = (err: unknown) => {
      const e = errorInfo(err);
      this.d.tracker.fail(id, e.code, e.message);
      this.d.onError?.(err, `completing ${id}`);
    };
    try {
      // An untraced I/O whose unmaps need no hypercall completes right here, in this turn.
      const done = context.with(s.ctx, () =>
        s.recording
          ? this.finishTraced(s, h.loads, epoch)
          : this.finish(s, h.loads, epoch, UNTRACED),
      );
      done?.catch(failed);
    } catch (err) {
      failed(err);
    }
  }

  private async finishTraced(s: IoState, loads: Uint8Array[], epoch: number): Promise<void> {
    await this.d.tracer.startActiveSpan('dom0.io.complete', async (span) => {
      try {
        await this.finish(s, loads, epoch, span);
      } finally {
        span.end();
      }
    });
  }

  /** Status, data, unmap; a promise only when it must wait for the unmaps. */
  private finish(
    s: IoState,
    loads: Uint8Array[],
    epoch: number,
    span: Span,
  ): Promise<void> | undefined {
    const { io } = s;
    const status = loads[0]?.[0] ?? STATUS_SENTINEL;
    const data = io.op === 'read' ? loads[1] : undefined;
    if (s.recording) span.setAttribute(ATTR.blkStatus, status);
    // dma_sync_single_for_cpu: a bounced read is copied into the caller's buffer (posted).
    const back = data !== undefined && s.data ? this.d.policy.syncForCpu(s.data, data) : [];
    if (back.length > 0) {
      if (s.recording && s.data?.bounce) span.setAttribute(ATTR.dmaBounce, toHex(s.data.bounce));
      const b = this.d.cpu.batch();
      for (const st of back) b.write(st.addr, st.bytes);
      b.post({ ioIds: [io.id] });
    }
    // Lazy IOMMU mode: the unmaps are queued and the pages freed once they
    // are done; the I/O completes now (Linux: dma_unmap returns at once).
    const released = this.release(s);
    const settle = () => {
      if (!this.d.tracker.complete(io.id, { status, epoch, ...(data ? { data } : {}) })) {
        this.d.metrics.lateCompletions.inc();
        span.setAttribute(ATTR.ioLate, true);
      }
    };
    if (released !== undefined && !this.d.policy.deferredUnmap) return released.then(settle);
    settle();
    return undefined;
  }

  /** A child span of the I/O; when the I/O is not traced, none at all (not even a no-op one). */
  private child<R>(s: IoState, name: string, fn: (span: Span) => Promise<R>): Promise<R> {
    return s.recording ? this.d.tracer.startActiveSpan(name, fn) : fn(UNTRACED);
  }

  /** An unmap Xen or the IOMMU did not answer is tried again a few times (they may be restarting). */
  private async unmapping(unmap: () => Promise<void>): Promise<void> {
    for (let i = 0, wait = RETRY_FIRST_MS; ; i++, wait = Math.min(RETRY_MAX_MS, wait * 2)) {
      try {
        return await unmap();
      } catch (err) {
        if (!isTransient(err) || i >= UNMAP_RETRIES) throw err;
        this.retries++;
        await new Promise((r) => setTimeout(r, wait));
      }
    }
  }

  /**
   * Unmaps and frees; a failed unmap keeps the pages (the device may still
   * reach them). Never throws; a promise only when an unmap is a hypercall.
   */
  private release(s: IoState): Promise<void> | undefined {
    this.states.delete(s.io.id);
    const { unmapNow } = this.d.policy;
    if (unmapNow === undefined) return this.releaseAsync(s);
    try {
      if (s.data) unmapNow(s.data);
      if (s.hdr) unmapNow(s.hdr);
    } catch (err) {
      this.d.onError?.(err, `unmapping ${s.io.id}`);
      return undefined;
    }
    this.freePages(s);
    return undefined;
  }

  private async releaseAsync(s: IoState): Promise<void> {
    const maps: DmaMapping[] = [];
    if (s.data) maps.push(s.data);
    if (s.hdr) maps.push(s.hdr);
    const { policy } = this.d;
    const { unmapAll } = policy;
    // Both unmaps at once (under an IOMMU they share one hypercall).
    if (unmapAll !== undefined) {
      try {
        if (maps.length > 0) await this.unmapping(() => unmapAll(maps));
      } catch (err) {
        this.d.onError?.(err, `unmapping ${s.io.id}`);
        return;
      }
    } else {
      const out = await Promise.allSettled(maps.map((m) => this.unmapping(() => policy.unmap(m))));
      const failed = out.find((o) => o.status === 'rejected');
      if (failed) {
        this.d.onError?.(failed.reason, `unmapping ${s.io.id}`);
        return;
      }
    }
    this.freePages(s);
  }

  private freePages(s: IoState): void {
    try {
      if (s.pages) this.d.pages.release(s.pages);
    } catch (err) {
      this.d.onError?.(err, `freeing the pages of ${s.io.id}`);
    }
  }
}
