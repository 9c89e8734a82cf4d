// The completion side of a split ring: interrupts, harvests, polling on
// submit, and re-enabling used-buffer notifications (EVENT_IDX used_event)
// without losing a completion that races the store.
import type { PseudoPhysAddr } from '@nestlab/addr';
import { ATTR } from '@nestlab/telemetry';
import { afterTurn } from '@nestlab/service-kit';
import { decodeU16, encodeU16 } from '@nestlab/virtio';
import { TraceFlags, context, trace, type Span } from '@opentelemetry/api';
import type { CommitOptions, CpuBatch, CpuMemory } from '../mm/cpu-memory.js';
import type { Harvested, InFlight, RingOptions } from './ring-types.js';
import type { UsedReader } from './used-reader.js';

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
