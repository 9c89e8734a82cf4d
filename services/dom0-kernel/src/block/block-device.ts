// The block layer over one virtqueue: one trace per I/O ('dom0.io'), DMA
// mapping, ring posting, and completion (status, data, unmap) — each I/O ends
// exactly once through the request tracker. The I/O's CPU stores ride with its
// chain and its completion loads with the used-ring read, so the ring driver
// can batch several I/Os into one message each way.
import { addOffset, toHex, type PseudoPhysAddr } from '@nestlab/addr';
import { ATTR } from '@nestlab/telemetry';
import {
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanStatusCode,
  context,
  trace,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { errorInfo } from '../errors.js';
import {
  tracedMap,
  type DmaDirection,
  type DmaMapping,
  type DmaPolicyImpl,
} from '../dma/policy.js';
import type { CpuMemory } from '../mm/cpu-memory.js';
import type { PageAllocator, PageRun } from '../mm/page-allocator.js';
import type { CpuStore, Harvested, SplitRingDriver } from '../virtio/split-ring-driver.js';
import type { Dom0Metrics } from '../metrics.js';
import { BLK_REQ_HEADER_SIZE } from '@nestlab/virtio';
import {
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
}

export interface IoResult {
  readonly id: string;
  readonly ok: boolean;
  readonly code?: string;
  readonly message?: string;
  readonly data?: Uint8Array;
  readonly latencyUs: number;
  readonly traceId: string;
}

interface IoState {
  readonly io: BlkIo;
  readonly ctx: Context;
  /** The I/O's trace is recorded: worth child spans. */
  readonly recording: boolean;
  readonly deadlineAt: number;
  pages?: PageRun;
  hdr?: DmaMapping;
  data?: DmaMapping;
}

export interface BlockDeviceDeps {
  readonly tracer: Tracer;
  readonly cpu: CpuMemory;
  readonly policy: DmaPolicyImpl;
  readonly pages: PageAllocator;
  readonly ring: SplitRingDriver;
  readonly tracker: RequestTracker<Completion>;
  readonly metrics: Dom0Metrics;
  /** Non-null when the device needs a reset or the driver moved on: submissions fail at once. */
  readonly broken: () => { code: string; message: string } | null;
  readonly onError?: (err: unknown, what: string) => void;
}

const UNTRACED = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
const STATUS_SENTINEL = 0xff; // a status the device never writes: shows it did not write one
const MAX_REQUEST_TIMEOUT_MS = 5000;
const MIN_REQUEST_TIMEOUT_MS = 1000;

export class BlockDevice {
  private readonly states = new Map<string, IoState>();
  /** Used elements naming no I/O of ours. */
  unknownCompletions = 0;

  constructor(private readonly d: BlockDeviceDeps) {}

  get buffersHeld(): number {
    return this.states.size;
  }

  async submit(io: BlkIo, deadlineMs: number): Promise<IoResult> {
    checkIo(io);
    const started = process.hrtime.bigint();
    const span = this.d.tracer.startSpan('dom0.io', {
      root: true,
      attributes: {
        [ATTR.ioId]: io.id,
        'nestlab.io.op': io.op,
        'nestlab.io.sector': io.sector.toString(),
        'nestlab.io.bytes': io.len,
      },
    });
    const ctx = trace.setSpan(ROOT_CONTEXT, span);
    const { outcome, abort } = this.d.tracker.start(io.id, deadlineMs);
    const broken = this.d.broken();
    if (broken !== null) {
      this.d.tracker.fail(io.id, broken.code, broken.message);
    } else {
      const state: IoState = {
        io,
        ctx,
        recording: span.isRecording(),
        deadlineAt: Date.now() + deadlineMs,
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
    const result: IoResult = {
      id: io.id,
      ok: code === null,
      latencyUs,
      traceId: span.spanContext().traceId,
      ...(code !== null
        ? { code, message: o.ok ? `device status ${o.value.status}` : o.message }
        : {}),
      ...(o.ok && o.value.data ? { data: o.value.data } : {}),
    };
    this.d.metrics.ios.inc({ op: io.op, result: code ?? 'ok' });
    if (code === null) this.d.metrics.latency.observe(latencyUs);
    else {
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
      // Header+status and data are mapped side by side (two hypercalls in flight under an IOMMU).
      const map = (pseudo: PseudoPhysAddr, len: number, dir: DmaDirection, what: string) =>
        s.recording
          ? tracedMap(tracer, policy, pseudo, len, dir, what)
          : policy.map(pseudo, len, dir);
      const maps = await Promise.allSettled([
        map(pages.addr, STATUS_OFFSET + 1, 'bidirectional', 'header+status'),
        map(dataAddr(pages.addr), io.len, io.op === 'read' ? 'from-device' : 'to-device', 'data'),
      ]);
      if (maps[0].status === 'fulfilled') s.hdr = maps[0].value;
      if (maps[1].status === 'fulfilled') s.data = maps[1].value;
      for (const m of maps) if (m.status === 'rejected') throw m.reason;
      if (abort.aborted) throw abort.signal.reason;
    } catch (err) {
      await this.release(s);
      throw err;
    }
    const { hdr, data, pages } = s as Required<IoState>;
    const head = new Uint8Array(STATUS_OFFSET + 1);
    head.set(blkHeader(io));
    head[STATUS_OFFSET] = STATUS_SENTINEL;
    const stores: CpuStore[] = [{ addr: pages.addr, bytes: head }];
    if (io.op === 'write' && io.data) {
      stores.push({ addr: dataAddr(pages.addr), bytes: io.data });
      // swiotlb_tbl_map_single copies a to-device buffer into its bounce slot.
      if (data.bounce !== null) stores.push({ addr: data.bounce, bytes: io.data });
    }
    const loads = [{ addr: addOffset(pages.addr, STATUS_OFFSET), len: 1 }];
    if (io.op === 'read') loads.push({ addr: data.bounce ?? dataAddr(pages.addr), len: io.len });
    const buffers = [
      { bus: hdr.bus, len: BLK_REQ_HEADER_SIZE, writable: false },
      { bus: data.bus, len: io.len, writable: io.op === 'read' },
      { bus: addOffset(hdr.bus, STATUS_OFFSET), len: 1, writable: true },
    ];
    const root = trace.getSpanContext(s.ctx);
    try {
      await this.child(s, 'dom0.ring.post', async (span) => {
        try {
          const r = await this.d.ring.post(
            { token: io.id, buffers, stores, loads, ...(root ? { io: root } : {}) },
            { signal: () => abort.signal, timeoutMs: this.timeout(s) },
          );
          span.setAttribute('nestlab.ring.head', r.head);
          span.setAttribute('nestlab.ring.kicked', r.kicked);
          span.setAttribute('nestlab.ring.batched', r.batched);
          this.d.metrics.kicks.inc({ outcome: r.kicked ? 'sent' : 'suppressed' });
        } finally {
          span.end();
        }
      });
    } catch (err) {
      // Aborted while waiting for descriptors: nothing reached the ring. Otherwise the
      // device may have seen the chain: keep its buffers until it completes.
      if (abort.abortedBy(err)) await this.release(s);
      throw err;
    }
  }

  /** A used element for an I/O (from the interrupt's harvest), with its completion loads. */
  onUsed(h: Harvested<string>): void {
    const id = h.token;
    const s = this.states.get(id);
    if (s === undefined) {
      this.unknownCompletions++;
      return;
    }
    void context
      .with(s.ctx, () => this.finish(s, h.loads))
      .catch((err: unknown) => {
        const e = errorInfo(err);
        this.d.tracker.fail(id, e.code, e.message);
        this.d.onError?.(err, `completing ${id}`);
      });
  }

  private async finish(s: IoState, loads: Uint8Array[]): Promise<void> {
    await this.child(s, 'dom0.io.complete', async (span) => {
      try {
        const { io } = s;
        const pages = s.pages!;
        const status = loads[0]?.[0] ?? STATUS_SENTINEL;
        const data = io.op === 'read' ? loads[1] : undefined;
        span.setAttribute('nestlab.blk.status', status);
        if (data !== undefined && s.data?.bounce) {
          // sync_single_for_cpu: copy the bounce slot back into the caller's buffer (stores, posted).
          span.setAttribute('nestlab.dma.bounce', toHex(s.data.bounce));
          this.d.cpu
            .batch()
            .write(dataAddr(pages.addr), data)
            .post({ ioIds: [io.id] });
        }
        await this.release(s);
        if (!this.d.tracker.complete(io.id, { status, ...(data ? { data } : {}) })) {
          this.d.metrics.lateCompletions.inc();
          span.setAttribute('nestlab.io.late', true);
        }
      } finally {
        span.end();
      }
    });
  }

  /** A child span of the I/O; when the I/O is not traced, none at all (not even a no-op one). */
  private child<R>(s: IoState, name: string, fn: (span: Span) => Promise<R>): Promise<R> {
    return s.recording ? this.d.tracer.startActiveSpan(name, fn) : fn(UNTRACED);
  }

  /** Unmaps and frees; a failed unmap keeps the pages (the device may still reach them). */
  private async release(s: IoState): Promise<void> {
    this.states.delete(s.io.id);
    // Both unmaps at once (two hypercalls in flight under an IOMMU).
    const maps = [s.data, s.hdr].filter((m): m is DmaMapping => m !== undefined);
    const out = await Promise.allSettled(maps.map((m) => this.d.policy.unmap(m)));
    const failed = out.find((o) => o.status === 'rejected');
    if (failed) {
      this.d.onError?.(failed.reason, `unmapping ${s.io.id}`);
      return;
    }
    if (s.pages) this.d.pages.release(s.pages);
  }
}
