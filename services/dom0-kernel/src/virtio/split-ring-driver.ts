// The driver side of one split virtqueue (spec 2.7; Linux virtio_ring.c
// virtqueue_add_split / virtqueue_kick_prepare_split / virtqueue_get_buf_ctx_split).
// The ring is ONE coherent DMA region in the legacy layout; the driver writes
// it with CPU stores (pseudo-physical) and gives the device its bus addresses.
//
// Batching (what blk-mq plugging and virtio_blk's commit_rqs do): chains
// posted in one turn of the event loop go out together — their buffers'
// stores, descriptors, avail entries, ONE avail.idx store and at most one
// doorbell in one MemAccess, posted (no reply) unless something must be read
// back. On an interrupt, ONE MemAccess reads the used ring (ring-completions.ts).
import { addOffset, toHex, type BusAddr, type PseudoPhysAddr } from '@nestlab/addr';
import {
  availRingOffset,
  decodeU16,
  encodeU16,
  legacyRingLayout,
  splitRingLayout,
  usedElemOffset,
  vringNeedEvent,
  type LegacyRingLayout,
} from '@nestlab/virtio';
import { TurnBatch } from '@nestlab/service-kit';
import { context, trace, type Context } from '@opentelemetry/api';
import { Dom0Error } from '../errors.js';
import type { CommitOptions, CpuBatch, CpuMemory, CpuStore } from '../mm/cpu-memory.js';
import { chainStores, usesIndirect } from './chain-stores.js';
import { DescPool } from './desc-pool.js';
import { RingCompletions, UsedReader } from './ring-completions.js';
import {
  POLL_MAX_CHAINS,
  u16,
  type ChainRequest,
  type InFlight,
  type PostResult,
  type RingOptions,
} from './ring-types.js';

export * from './ring-types.js';

interface Plugged<T> {
  readonly head: number;
  readonly req: ChainRequest<T>;
  readonly ringStores: CpuStore[];
  readonly ctx: Context;
  readonly timeoutMs: number | undefined;
  resolve(r: PostResult): void;
  reject(err: unknown): void;
}

export class SplitRingDriver<T extends string = string> {
  readonly layout: LegacyRingLayout;
  private readonly descs: DescPool;
  private readonly inFlight = new Map<number, InFlight<T>>();
  private readonly used: UsedReader<T>;
  private availIdx = 0;
  /** Everything posted before the event loop turns joins one batch (plugging). */
  private readonly plug = new TurnBatch<Plugged<T>>(
    (chains) => this.flushGuarded(chains),
    (err) => this.completions.onError?.(err),
  );
  /** Interrupts, harvests, polls; set its onUsed / onError to receive completions. */
  readonly completions: RingCompletions<T>;
  /** Set once the device was reset under this ring: nothing more goes out or is harvested. */
  private closedBy: Dom0Error | null = null;
  kicks = 0;
  kicksSuppressed = 0;
  /** Batches that had to read avail_event before deciding on a kick. */
  kickReads = 0;

  constructor(
    private readonly mem: CpuMemory,
    readonly opts: RingOptions,
  ) {
    this.layout = legacyRingLayout(opts.size);
    this.descs = new DescPool(opts.size);
    const l = splitRingLayout(opts.size);
    const used = this.layout.usedOffset;
    this.used = new UsedReader<T>(
      mem,
      opts.size,
      {
        usedIdx: this.pseudo(used + 2),
        availEvent: this.pseudo(used + l.used.availEvent),
        usedElem: (slot) => this.pseudo(used + usedElemOffset(slot)),
      },
      opts.eventIdx,
      this.inFlight,
      (d) => this.descs.release(d),
      (code, detail) => opts.onDeviceError?.(code, detail),
    );
    this.completions = new RingCompletions<T>(mem, opts, this.used, this.inFlight, {
      usedIdx: this.pseudo(used + 2),
      usedEvent: this.pseudo(this.layout.availOffset + l.avail.usedEvent),
      availEvent: this.pseudo(used + l.used.availEvent),
    });
  }

  get size(): number {
    return this.opts.size;
  }
  private pseudo(off: number): PseudoPhysAddr {
    return addOffset(this.opts.ring.pages.addr, off);
  }
  /** queue_desc / queue_driver / queue_device. */
  get busAddrs(): { desc: BusAddr; driver: BusAddr; device: BusAddr } {
    const b = this.opts.ring.mapping.bus;
    return {
      desc: b,
      driver: addOffset(b, this.layout.availOffset),
      device: addOffset(b, this.layout.usedOffset),
    };
  }
  get inFlightCount(): number {
    return this.inFlight.size;
  }
  get freeDescs(): number {
    return this.descs.available;
  }
  get bogusUsed(): number {
    return this.used.bogusUsed;
  }

  /**
   * Adds a chain and queues it for this turn's batch; resolves once the batch
   * has gone out (and the device was kicked if it wanted a notification).
   */
  async post(
    req: ChainRequest<T>,
    opts: { signal?: () => AbortSignal; timeoutMs?: number } = {},
  ): Promise<PostResult> {
    const pool = this.opts.indirectPool;
    const n = usesIndirect(pool, req.buffers) ? 1 : req.buffers.length;
    if (this.closedBy !== null) throw this.closedBy;
    // Free descriptors are taken at once: a post awaits only when the ring is full.
    const descs = this.descs.takeNow(n) ?? (await this.descs.reserve(n, opts.signal));
    if (this.closedBy !== null) throw this.closedBy;
    const head = descs[0]!;
    const ringStores = chainStores(this.opts.ring.pages.addr, pool, descs, req.buffers);
    this.inFlight.set(head, { req, descs, sent: false });
    return new Promise<PostResult>((resolve, reject) => {
      const ctx = context.active();
      this.plug.add({ head, req, ringStores, ctx, timeoutMs: opts.timeoutMs, resolve, reject });
    });
  }

  /** A batch that could not even be built fails its own posts, nothing else. */
  private flushGuarded(chains: Plugged<T>[]): void {
    try {
      this.flush(chains);
    } catch (err) {
      for (const c of chains) c.reject(err);
    }
  }

  /**
   * Sends the plugged chains: a due used_event store first, their stores, avail
   * entries, one avail.idx, and the kick when it is known to be due. Posted
   * unless something must be read back: avail_event (kick undecided) or
   * used.idx (a used_event store that completions may have raced).
   */
  private flush(chains: Plugged<T>[]): void {
    if (this.closedBy !== null) {
      for (const c of chains) c.reject(this.closedBy);
      return;
    }
    // Poll only an idle ring (nothing else the device could complete, no harvest under way)
    // and a small batch: a big one keeps the device busy long enough that harvesting its
    // rounds as they complete (interrupts) overlaps the two sides better than one wait.
    const c = this.completions;
    const idle = chains.length <= POLL_MAX_CHAINS && c.quiet && !c.sentInFlight();
    const old = this.availIdx;
    const now = u16(old + chains.length);
    // Without EVENT_IDX the driver may always notify (spec 2.7.7.2 says SHOULD NOT when
    // used.flags has NO_NOTIFY); with it, a kick is due when avail_event == old, and the
    // last value read says so for certain: the device only moves it forward, up to old.
    const known = this.used.availEvent;
    const kickNow = !this.opts.eventIdx || (known !== null && vringNeedEvent(known, now, old));
    const polling = idle && kickNow;
    const b = this.mem.batch();
    if (polling && this.opts.eventIdx) c.quietFor(b, chains.length);
    const due = polling && this.opts.eventIdx ? null : c.takeUsedEvent(b);
    for (const c of chains) {
      for (const s of c.req.stores) b.write(s.addr, s.bytes);
      for (const s of c.ringStores) b.write(s.addr, s.bytes);
      const f = this.inFlight.get(c.head);
      if (f) f.sent = true;
    }
    this.availEntries(b, old, chains);
    b.write(this.pseudo(this.layout.availOffset + 2), encodeU16(now));
    this.availIdx = now;
    const prefix = this.opts.chainKeyPrefix;
    const items = chains.flatMap((c) => {
      const span = trace.getSpanContext(c.ctx);
      return span && prefix ? [{ key: `${prefix}.${c.head}`, span }] : [];
    });
    const commit: CommitOptions = {
      ioIds: chains.map((c) => c.req.token),
      ...(chains[0]!.timeoutMs ? { timeoutMs: chains[0]!.timeoutMs } : {}),
      batch: { parent: chains[0]!.ctx, items },
    };
    const settle = (kicked: boolean) => {
      for (const c of chains) c.resolve({ head: c.head, kicked, batched: chains.length });
    };
    const fail = (err: unknown) => {
      for (const c of chains) c.reject(err);
    };
    // The queue index, zero-extended to the doorbell register's width.
    const doorbell = new Uint8Array(this.opts.notifyWidth ?? 2);
    doorbell.set(encodeU16(this.opts.queueIndex));
    if (kickNow) {
      b.mmioWrite(this.opts.notify, doorbell);
      this.kicks++;
      if (polling) {
        settle(true);
        return c.poll(b, commit);
      }
      // Otherwise loads never share a message with the doorbell: L0 answers such a message
      // only once the device has drained, and a used.idx re-read must not wait for that.
      try {
        b.post(commit);
      } catch (err) {
        return fail(err);
      }
      settle(true);
      if (due?.recheck) c.recheck(this.mem.batch(), commit);
      return;
    }
    // virtqueue_kick_prepare_split: after the avail idx store, read avail_event.
    this.kickReads++;
    const ev = b.read(this.availEventAddr, 2);
    const idx = due?.recheck ? b.read(this.usedIdxAddr, 2) : -1;
    b.commit(commit).then(
      (r) => {
        const event = decodeU16(r.get(ev));
        this.used.availEvent = event;
        if (idx >= 0) c.afterRecheck(decodeU16(r.get(idx)));
        if (!vringNeedEvent(event, now, old)) {
          this.kicksSuppressed++;
          return settle(false);
        }
        this.mem.batch().mmioWrite(this.opts.notify, doorbell).post(commit);
        this.kicks++;
        settle(true);
      },
      (err: unknown) => {
        if (idx >= 0) c.afterRecheck(null);
        fail(err);
      },
    );
  }

  /** The heads of `chains` into the avail ring from slot `old`: one store per run of slots. */
  private availEntries(b: CpuBatch, old: number, chains: readonly Plugged<T>[]): void {
    const avail = this.layout.availOffset;
    for (let i = 0; i < chains.length;) {
      const slot = u16(old + i) & (this.size - 1);
      const run = Math.min(chains.length - i, this.size - slot);
      const entries = new Uint8Array(2 * run);
      const v = new DataView(entries.buffer);
      for (let k = 0; k < run; k++) v.setUint16(2 * k, chains[i + k]!.head, true);
      b.write(this.pseudo(avail + availRingOffset(slot)), entries);
      i += run;
    }
  }

  private get availEventAddr(): PseudoPhysAddr {
    return this.pseudo(this.layout.usedOffset + splitRingLayout(this.size).used.availEvent);
  }
  private get usedIdxAddr(): PseudoPhysAddr {
    return this.pseudo(this.layout.usedOffset + 2);
  }

  /** A used-buffer interrupt: harvest, and hand what completed to completions.onUsed. */
  interrupt(opts: { timeoutMs?: number } = {}): Promise<void> {
    if (this.closedBy !== null) return Promise.resolve();
    return this.completions.interrupt(opts);
  }

  get closed(): boolean {
    return this.closedBy !== null;
  }

  /**
   * The device was reset: this ring's memory belongs to the next ring now.
   * Chains not yet sent and posts waiting for descriptors fail with
   * DRIVER_RESET; the caller resubmits what it still wants on the new ring.
   */
  close(reason: string): void {
    if (this.closedBy !== null) return;
    this.closedBy = new Dom0Error('DRIVER_RESET', reason);
    this.descs.rejectWaiters(this.closedBy);
    this.completions.onUsed = null;
  }

  /** Zeroes for the whole ring (dma_alloc_coherent returns zeroed memory). */
  zeroStores(batch: CpuBatch): void {
    batch.write(this.opts.ring.pages.addr, new Uint8Array(this.layout.totalBytes));
    const pool = this.opts.indirectPool;
    if (pool) batch.write(pool.pages.addr, new Uint8Array(pool.bytes));
  }

  describe(): { pseudo: string; bus: string; size: number } {
    return {
      pseudo: toHex(this.opts.ring.pages.addr),
      bus: toHex(this.opts.ring.mapping.bus),
      size: this.size,
    };
  }
}
