// The block layer over one virtqueue: one trace per I/O ('dom0.io'), DMA
// mapping, ring posting, and completion (status, data, unmap) — each I/O ends
// exactly once through the request tracker.
import { addOffset, toHex } from '@nestlab/addr';
import { ATTR } from '@nestlab/telemetry';
import {
  ROOT_CONTEXT,
  SpanStatusCode,
  context,
  trace,
  type Context,
  type Tracer,
} from '@opentelemetry/api';
import { errorInfo } from '../errors.js';
import { tracedMap, type DmaMapping, type DmaPolicyImpl } from '../dma/policy.js';
import type { CpuMemory } from '../mm/cpu-memory.js';
import type { PageAllocator, PageRun } from '../mm/page-allocator.js';
import type { SplitRingDriver } from '../virtio/split-ring-driver.js';
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
import type { RequestTracker } from './request-tracker.js';

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
    const { outcome, signal } = this.d.tracker.start(io.id, deadlineMs);
    const broken = this.d.broken();
    if (broken !== null) {
      this.d.tracker.fail(io.id, broken.code, broken.message);
    } else {
      const state: IoState = { io, ctx, deadlineAt: Date.now() + deadlineMs };
      void context
        .with(ctx, () => this.start(state, signal))
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

  private async start(s: IoState, signal: AbortSignal): Promise<void> {
    const { io } = s;
    const { tracer, policy } = this.d;
    this.states.set(io.id, s);
    try {
      s.pages = this.d.pages.alloc(requestPages(io.len));
      s.hdr = await tracedMap(
        tracer,
        policy,
        s.pages.addr,
        STATUS_OFFSET + 1,
        'bidirectional',
        'header+status',
      );
      signal.throwIfAborted();
      const data = dataAddr(s.pages.addr);
      s.data = await tracedMap(
        tracer,
        policy,
        data,
        io.len,
        io.op === 'read' ? 'from-device' : 'to-device',
        'data',
      );
      signal.throwIfAborted();
    } catch (err) {
      await this.release(s);
      throw err;
    }
    const batch = this.d.cpu.batch();
    const head = new Uint8Array(STATUS_OFFSET + 1);
    head.set(blkHeader(io));
    head[STATUS_OFFSET] = STATUS_SENTINEL;
    batch.write(s.pages.addr, head);
    if (io.op === 'write' && io.data) {
      batch.write(dataAddr(s.pages.addr), io.data);
      // swiotlb_tbl_map_single copies a to-device buffer into its bounce slot.
      if (s.data.bounce !== null) batch.write(s.data.bounce, io.data);
    }
    const buffers = [
      { bus: s.hdr.bus, len: BLK_REQ_HEADER_SIZE, writable: false },
      { bus: s.data.bus, len: io.len, writable: io.op === 'read' },
      { bus: addOffset(s.hdr.bus, STATUS_OFFSET), len: 1, writable: true },
    ];
    try {
      await tracer.startActiveSpan('dom0.ring.post', async (span) => {
        try {
          const r = await this.d.ring.post(buffers, io.id, batch, {
            ioIds: [io.id],
            signal,
            timeoutMs: this.timeout(s),
          });
          span.setAttribute('nestlab.ring.head', r.head);
          span.setAttribute('nestlab.ring.kicked', r.kicked);
          this.d.metrics.kicks.inc({ outcome: r.kicked ? 'sent' : 'suppressed' });
        } finally {
          span.end();
        }
      });
    } catch (err) {
      // Aborted while waiting for descriptors: nothing reached the ring. Otherwise the
      // device may have seen the chain: keep its buffers until it completes.
      if (signal.aborted && err === signal.reason) await this.release(s);
      throw err;
    }
  }

  /** A used element for `id` (from the interrupt's harvest). */
  onUsed(id: string): void {
    const s = this.states.get(id);
    if (s === undefined) {
      this.unknownCompletions++;
      return;
    }
    void context
      .with(s.ctx, () => this.finish(s))
      .catch((err: unknown) => {
        const e = errorInfo(err);
        this.d.tracker.fail(id, e.code, e.message);
        this.d.onError?.(err, `completing ${id}`);
      });
  }

  private async finish(s: IoState): Promise<void> {
    await this.d.tracer.startActiveSpan('dom0.io.complete', async (span) => {
      try {
        const { io } = s;
        const pages = s.pages!;
        const b = this.d.cpu.batch();
        const hs = b.read(addOffset(pages.addr, STATUS_OFFSET), 1);
        const from = s.data?.bounce ?? dataAddr(pages.addr);
        const hd = io.op === 'read' ? b.read(from, io.len) : undefined;
        const r = await b.commit({ ioIds: [io.id], timeoutMs: this.timeout(s) });
        const status = r.get(hs)[0]!;
        // A copy: the reply may be a Buffer view into NATS's read buffer (Buffer#slice does not copy).
        const data = hd === undefined ? undefined : new Uint8Array(r.get(hd));
        span.setAttribute('nestlab.blk.status', status);
        if (data !== undefined && s.data?.bounce) {
          // sync_single_for_cpu: copy the bounce slot back into the caller's buffer.
          span.setAttribute('nestlab.dma.bounce', toHex(s.data.bounce));
          await this.d.cpu.write(dataAddr(pages.addr), data, {
            ioIds: [io.id],
            timeoutMs: this.timeout(s),
          });
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

  /** Unmaps and frees; a failed unmap keeps the pages (the device may still reach them). */
  private async release(s: IoState): Promise<void> {
    this.states.delete(s.io.id);
    try {
      if (s.data) await this.d.policy.unmap(s.data);
      if (s.hdr) await this.d.policy.unmap(s.hdr);
    } catch (err) {
      this.d.onError?.(err, `unmapping ${s.io.id}`);
      return;
    }
    if (s.pages) this.d.pages.release(s.pages);
  }
}
