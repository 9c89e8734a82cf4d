// The completion side of a split ring, one used-ring reader: when to read
// (RingCompletions: interrupts, harvests, polling on submit, re-enabling
// used-buffer notifications with EVENT_IDX used_event without losing a
// completion that races the store) and how (UsedReader, below).
import type { PseudoPhysAddr } from '@nestlab/addr';
import { ATTR } from '@nestlab/telemetry';
import { afterTurn } from '@nestlab/service-kit';
import { decodeU16, decodeUsedElem, encodeU16 } from '@nestlab/virtio';
import { TraceFlags, context, trace, type Span } from '@opentelemetry/api';
import { Dom0Error } from '../errors.js';
import type { BatchResult, CommitOptions, CpuBatch, CpuMemory } from '../mm/cpu-memory.js';
import {
  u16,
  type DeviceErrorCode,
  type Harvested,
  type InFlight,
  type RingOptions,
} from './ring-types.js';

export interface CompletionAddrs {
  readonly usedIdx: PseudoPhysAddr;
  readonly usedEvent: PseudoPhysAddr;
  readonly availEvent: PseudoPhysAddr;
}

export class RingCompletions<T> {
  private drainChain: Promise<unknown> = Promise.resolve();
  private drainQueued = false;
  private draining = false;
  /** A used_event store the next message carries, and whether used.idx must be re-read after it. */
  private usedEventDue: { value: number; recheck: boolean } | null = null;
  /** A poll-on-submit is out: interrupts leave the harvest to it. */
  private polling = false;
  private skippedInterrupt = false;
  /** Where harvested chains go. */
  onUsed: ((done: Harvested<T>[]) => void) | null = null;
  onError: ((err: unknown) => void) | null = null;
  polls = 0;

  constructor(
    private readonly mem: CpuMemory,
    private readonly opts: RingOptions,
    private readonly used: UsedReader<T>,
    private readonly inFlight: Map<number, InFlight<T>>,
    private readonly addrs: CompletionAddrs,
  ) {}

  /** Nothing is reading the used ring now. */
  get quiet(): boolean {
    return !this.polling && !this.draining && !this.drainQueued;
  }

  sentInFlight(): boolean {
    for (const f of this.inFlight.values()) if (f.sent) return true;
    return false;
  }

  /** Puts a due used_event store into `b` (virtqueue_enable_cb_prepare). */
  takeUsedEvent(b: CpuBatch): { recheck: boolean } | null {
    const due = this.usedEventDue;
    if (due === null) return null;
    this.usedEventDue = null;
    b.write(this.addrs.usedEvent, encodeU16(due.value));
    return due;
  }

  /**
   * A poll is about to look for `chains` completions itself: used_event goes
   * past them, so the device does not interrupt for what the poll will see
   * (Linux's poll queues run with callbacks off). If the poll misses some,
   * callbacks are enabled again right after it, with a used.idx re-read.
   */
  quietFor(b: CpuBatch, chains: number): void {
    this.usedEventDue = null;
    b.write(this.addrs.usedEvent, encodeU16((this.used.lastUsed + chains) & 0xffff));
  }

  /**
   * Polling on submit (Linux's hybrid polling): when the ring was idle, the
   * batch that wakes the device also reads the used ring right after the
   * doorbell. L0 runs the loads that follow a doorbell once the device has
   * drained, so the reply usually carries the completions: two hops instead
   * of waiting for MSI -> Xen -> event channel -> a used-ring read. The
   * interrupt still comes (callbacks stay enabled); finding the poll in
   * flight, it leaves the harvest to it. Whatever the poll did not see is
   * left to a used.idx re-read after enabling callbacks.
   */
  poll(b: CpuBatch, commit: CommitOptions): void {
    const look = this.used.look(b.thenAfterMmio());
    this.polling = true;
    this.polls++;
    const out: Harvested<T>[] = [];
    const done = (err?: unknown) => {
      this.polling = false;
      if (err !== undefined) this.onError?.(err);
      else if (out.length > 0) this.onUsed?.(out);
      const skipped = this.skippedInterrupt;
      this.skippedInterrupt = false;
      if (this.opts.eventIdx) return this.enableCallbacks();
      // An interrupt left to the poll may have been for a later chain: look again then.
      if (skipped && this.sentInFlight()) this.rescan();
    };
    b.commit(commit)
      .then((r) => this.used.absorb(look, r, out, commit))
      .then(() => done(), done);
  }

  /**
   * After a harvest with EVENT_IDX: used_event must move past what was seen.
   * The store rides with the next batch of posts when one follows in this
   * turn (a refill usually does); otherwise it goes out on its own one turn
   * later. If chains were in flight, a completion may race the store, so
   * used.idx is read again after it (virtqueue_poll).
   */
  private enableCallbacks(): void {
    this.usedEventDue = { value: this.used.lastUsed, recheck: this.sentInFlight() };
    // Two turns: a refill's flush, queued by this turn's completions, runs first.
    const report = (err: unknown) => this.onError?.(err);
    afterTurn(
      () =>
        afterTurn(() => {
          const b = this.mem.batch();
          const due = this.takeUsedEvent(b);
          if (due === null) return;
          if (!due.recheck) return b.post();
          this.recheck(b);
        }, report),
      report,
    );
  }

  /** Reads used.idx (and avail_event) after a used_event store; harvests if it moved. */
  recheck(b: CpuBatch, opts: CommitOptions = {}): void {
    const idx = b.read(this.addrs.usedIdx, 2);
    const ev = this.opts.eventIdx ? b.read(this.addrs.availEvent, 2) : -1;
    b.commit(opts).then(
      (r) => {
        if (ev >= 0) this.used.availEvent = decodeU16(r.get(ev));
        this.afterRecheck(decodeU16(r.get(idx)));
      },
      () => this.afterRecheck(null),
    );
  }

  /** The used.idx read after a used_event store: harvest again if it moved (or is unknown). */
  afterRecheck(idx: number | null): void {
    if (idx !== this.used.lastUsed) this.rescan();
  }

  private rescan(): void {
    this.interrupt().catch((err: unknown) => this.onError?.(err));
  }

  /** A used-buffer interrupt (or a recheck that found more): harvests and hands on what completed. */
  async interrupt(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.polling) {
      this.skippedInterrupt = true;
      return;
    }
    const done = await this.harvest(opts);
    if (done.length > 0) this.onUsed?.(done);
  }

  /** Collects completed chains; drains run one at a time. */
  harvest(opts: { timeoutMs?: number } = {}): Promise<Harvested<T>[]> {
    if (this.drainQueued) return Promise.resolve([]);
    this.drainQueued = true;
    const run = this.drainChain.then(async () => {
      this.drainQueued = false;
      this.draining = true;
      try {
        return await this.drainOnce(opts.timeoutMs);
      } finally {
        this.draining = false;
      }
    });
    this.drainChain = run.catch(() => undefined);
    return run;
  }

  private async drainOnce(timeoutMs?: number): Promise<Harvested<T>[]> {
    const out: Harvested<T>[] = [];
    const span = this.harvestSpan();
    const opts = {
      ...(timeoutMs ? { timeoutMs } : {}),
      ...(span ? { batch: { parent: trace.setSpan(context.active(), span), items: [] } } : {}),
    };
    try {
      const b = this.mem.batch();
      const look = this.used.look(b);
      const found = await this.used.absorb(look, await b.commit(opts), out, opts);
      if (found && this.opts.eventIdx) this.enableCallbacks();
    } finally {
      span?.setAttribute(ATTR.ringHarvested, out.length);
      span?.end();
    }
    return out;
  }

  /** The harvest is a span in the trace of the oldest I/O in flight, linked to the others. */
  private harvestSpan(): Span | undefined {
    const ios = [...this.inFlight.values()].flatMap((f) => (f.req.io ? [f.req.io] : []));
    const first = ios[0];
    if (!first || !(first.traceFlags & TraceFlags.SAMPLED)) return undefined;
    return this.opts.tracer?.startSpan(
      'dom0.ring.harvest',
      { links: ios.slice(1).map((c) => ({ context: c })) },
      trace.setSpanContext(context.active(), first),
    );
  }
}

// Reading the used ring (virtqueue_get_buf_ctx_split), in as few messages as
// possible: one read carries used.idx, the used elements of every chain in
// flight, the completion loads of the oldest ones and avail_event, all after
// the idx load (the virtio_rmb order), so what the idx says is done is
// visible. Only what the used ring reports is handed on.

/** Chains whose completion loads a harvest reads along with used.idx, at least. */
const MIN_SPECULATIVE_LOADS = 8;

export interface UsedAddrs {
  readonly usedIdx: PseudoPhysAddr;
  readonly availEvent: PseudoPhysAddr;
  usedElem(slot: number): PseudoPhysAddr;
}

/** The handles of one used-ring read, taken before it is sent. */
export interface UsedLook {
  readonly idx: number;
  readonly from: number;
  readonly window: number;
  readonly elems: number[];
  readonly loads: Map<number, number[]>;
  readonly ev: number;
}

export class UsedReader<T> {
  lastUsed = 0;
  /** avail_event as last read (EVENT_IDX); null before the first read. */
  availEvent: number | null = null;
  bogusUsed = 0;
  /** How many of the oldest chains a read loads ahead (what the last one found done). */
  private expectDone = MIN_SPECULATIVE_LOADS;

  constructor(
    private readonly mem: CpuMemory,
    private readonly size: number,
    private readonly addrs: UsedAddrs,
    private readonly eventIdx: boolean,
    private readonly inFlight: Map<number, InFlight<T>>,
    private readonly release: (descs: readonly number[]) => void,
    private readonly report: (code: DeviceErrorCode, detail: string) => void = () => undefined,
  ) {}

  /** Adds the loads of a used-ring read to `b`. */
  look(b: CpuBatch): UsedLook {
    const idx = b.read(this.addrs.usedIdx, 2);
    const from = this.lastUsed;
    const window = Math.max(1, Math.min(this.size, this.inFlight.size));
    const elems = this.readElems(b, from, window);
    // Completion loads for the oldest chains only (the device serves in avail order):
    // as many as the last read found done, so a big read does not fetch data not there yet.
    const loads = new Map<number, number[]>();
    let n = 0;
    for (const [head, f] of this.inFlight) {
      if (n++ >= this.expectDone) break;
      loads.set(
        head,
        f.req.loads.map((l) => b.read(l.addr, l.len)),
      );
    }
    const ev = this.eventIdx ? b.read(this.addrs.availEvent, 2) : -1;
    return { idx, from, window, elems, loads, ev };
  }

  /** Hands on what a used-ring read found; false when nothing was new. */
  async absorb(
    look: UsedLook,
    r: BatchResult,
    out: Harvested<T>[],
    opts: CommitOptions,
  ): Promise<boolean> {
    if (look.ev >= 0) this.availEvent = decodeU16(r.get(look.ev));
    if (look.from !== this.lastUsed) {
      throw new Dom0Error('BAD_REPLY', 'two used-ring reads overlapped', { kind: 'internal' });
    }
    const idx = decodeU16(r.get(look.idx));
    const n = u16(idx - this.lastUsed);
    if (n === 0) return false;
    if (n > this.size) {
      // Nothing in this ring can be trusted any more: the caller fails what is in flight and resets.
      const why = `used.idx jumped ${n} entries ahead of ${this.lastUsed} (queue size ${this.size})`;
      this.report('DEVICE_BROKEN', why);
      throw new Dom0Error('DEVICE_BROKEN', why);
    }
    const { window } = look;
    // More used than were in flight when the read went out: the rest in another read.
    const more = n > window ? await this.moreElems(window, n - window, opts) : [];
    const done: { f: InFlight<T>; len: number; got: Uint8Array[] | null }[] = [];
    for (let i = 0; i < n; i++) {
      const raw = i < window ? elemOf(r, look.elems[i]!) : more[i - window]!;
      const { id, len } = decodeUsedElem(raw);
      const f = id < this.size ? this.inFlight.get(id) : undefined;
      if (f === undefined) {
        this.bogusUsed++;
        this.report('USED_ID_NOT_POSTED', `used id ${id} names no chain in flight`);
        continue;
      }
      // The lie is counted; the I/O still ends per its status byte (Linux ignores used.len for blk).
      const writable = f.req.buffers.reduce((sum, b) => sum + (b.writable ? b.len : 0), 0);
      if (len > writable) {
        this.report(
          'USED_LEN_TOO_LONG',
          `used.len ${len} for chain ${id} with ${writable} writable bytes`,
        );
      }
      this.inFlight.delete(id);
      this.release(f.descs);
      // A copy: the reply may be a view into NATS's read buffer.
      const hs = look.loads.get(id);
      done.push({ f, len, got: hs ? hs.map((h) => new Uint8Array(r.get(h))) : null });
    }
    this.lastUsed = idx;
    this.expectDone = Math.min(this.size, Math.max(MIN_SPECULATIVE_LOADS, done.length));
    // Chains done beyond what was loaded ahead: their loads now, in one more read.
    const missing = done.filter((d) => d.got === null);
    if (missing.length > 0) {
      const b = this.mem.batch();
      const hs = missing.map((d) => d.f.req.loads.map((l) => b.read(l.addr, l.len)));
      const r2 = await b.commit(opts);
      missing.forEach((d, i) => (d.got = hs[i]!.map((h) => new Uint8Array(r2.get(h)))));
    }
    for (const d of done) out.push({ token: d.f.req.token, len: d.len, loads: d.got ?? [] });
    return true;
  }

  private readElems(b: CpuBatch, from: number, n: number): number[] {
    const handles: number[] = [];
    while (handles.length < n) {
      const slot = u16(from + handles.length) & (this.size - 1);
      const take = Math.min(n - handles.length, this.size - slot);
      const h = b.read(this.addrs.usedElem(slot), 8 * take);
      for (let i = 0; i < take; i++) handles.push(h * 0x10000 + i);
    }
    return handles;
  }

  private async moreElems(skip: number, n: number, opts: CommitOptions): Promise<Uint8Array[]> {
    const b = this.mem.batch();
    const hs = this.readElems(b, u16(this.lastUsed + skip), n);
    const r = await b.commit(opts);
    return hs.map((h) => elemOf(r, h));
  }
}

/** A used element out of a multi-element read: handle = read * 0x10000 + index. */
function elemOf(r: BatchResult, h: number): Uint8Array {
  const read = Math.floor(h / 0x10000);
  const i = h % 0x10000;
  return r.get(read).subarray(8 * i, 8 * i + 8);
}
