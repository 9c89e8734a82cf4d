// The driver side of one split virtqueue (spec 2.7; Linux virtio_ring.c
// virtqueue_add_split / virtqueue_kick_prepare_split / virtqueue_get_buf_ctx_split).
// The ring is ONE coherent DMA region in the legacy layout; the driver writes
// it with CPU stores (pseudo-physical) and gives the device its bus addresses.
import { addOffset, toHex, type BusAddr, type PseudoPhysAddr } from '@nestlab/addr';
import {
  DESC_SIZE,
  VRING_DESC_F,
  availRingOffset,
  decodeU16,
  decodeUsedElem,
  descOffset,
  encodeDesc,
  encodeU16,
  legacyRingLayout,
  splitRingLayout,
  usedElemOffset,
  vringNeedEvent,
  type LegacyRingLayout,
} from '@nestlab/virtio';
import { Dom0Error } from '../errors.js';
import type { CoherentRegion } from '../dma/policy.js';
import type { CpuBatch, CpuMemory } from '../mm/cpu-memory.js';
import type { MachineAddr } from '@nestlab/addr';

export interface RingBuffer {
  bus: BusAddr;
  len: number;
  writable: boolean;
}

export interface RingOptions {
  size: number;
  ring: CoherentRegion;
  /** Room for one 3-entry indirect table per descriptor, when INDIRECT_DESC was negotiated. */
  indirectPool: CoherentRegion | null;
  eventIdx: boolean;
  notify: MachineAddr;
  queueIndex: number;
}

export interface Harvested<T> {
  token: T;
  len: number;
}

export const INDIRECT_ENTRIES = 3;
const u16 = (n: number) => n & 0xffff;

interface Waiter {
  n: number;
  resolve: (first: number[]) => void;
  reject: (err: unknown) => void;
}

export class SplitRingDriver<T extends string = string> {
  readonly layout: LegacyRingLayout;
  private readonly next: number[];
  private freeList: number[];
  private readonly inFlight = new Map<number, { token: T; descs: number[] }>();
  private readonly waiters: Waiter[] = [];
  private availIdx = 0;
  private lastUsed = 0;
  private postChain: Promise<unknown> = Promise.resolve();
  private drainChain: Promise<unknown> = Promise.resolve();
  private drainQueued = false;
  kicks = 0;
  kicksSuppressed = 0;
  bogusUsed = 0;

  constructor(
    private readonly mem: CpuMemory,
    readonly opts: RingOptions,
  ) {
    this.layout = legacyRingLayout(opts.size);
    this.next = Array.from({ length: opts.size }, (_, i) => i + 1);
    this.freeList = Array.from({ length: opts.size }, (_, i) => i);
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
    return this.freeList.length;
  }

  /** Takes descriptors now or waits for them (FIFO); `signal` abandons the wait. */
  private reserve(n: number, signal?: AbortSignal): Promise<number[]> {
    if (n > this.size) {
      return Promise.reject(
        new Dom0Error('NO_MEMORY', `a chain of ${n} does not fit a queue of ${this.size}`),
      );
    }
    if (this.waiters.length === 0 && this.freeList.length >= n)
      return Promise.resolve(this.take(n));
    return new Promise((resolve, reject) => {
      const w: Waiter = { n, resolve, reject };
      this.waiters.push(w);
      signal?.addEventListener(
        'abort',
        () => {
          const i = this.waiters.indexOf(w);
          if (i >= 0) this.waiters.splice(i, 1);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }

  private take(n: number): number[] {
    return this.freeList.splice(0, n);
  }

  private release(descs: number[]): void {
    this.freeList.push(...descs);
    while (this.waiters.length > 0 && this.freeList.length >= this.waiters[0]!.n) {
      const w = this.waiters.shift()!;
      w.resolve(this.take(w.n));
    }
  }

  /**
   * Adds a chain, publishes it in the avail ring and kicks the device if it
   * wants a notification. `batch` may already hold the request's own buffer
   * stores: they travel in the same MemAccess, before the ring stores.
   */
  async post(
    buffers: readonly RingBuffer[],
    token: T,
    batch: CpuBatch,
    opts: { ioIds?: string[]; signal?: AbortSignal; timeoutMs?: number } = {},
  ): Promise<{ head: number; kicked: boolean }> {
    const indirect =
      this.opts.indirectPool !== null && buffers.length > 1 && buffers.length <= INDIRECT_ENTRIES;
    const descs = await this.reserve(indirect ? 1 : buffers.length, opts.signal);
    const head = descs[0]!;
    if (indirect) {
      const pool = this.opts.indirectPool!;
      const tableOff = head * INDIRECT_ENTRIES * DESC_SIZE;
      const table = new Uint8Array(buffers.length * DESC_SIZE);
      buffers.forEach((b, i) =>
        table.set(
          encodeDesc({
            addr: b.bus,
            len: b.len,
            flags:
              (b.writable ? VRING_DESC_F.WRITE : 0) |
              (i + 1 < buffers.length ? VRING_DESC_F.NEXT : 0),
            next: i + 1 < buffers.length ? i + 1 : 0,
          }),
          i * DESC_SIZE,
        ),
      );
      batch.write(addOffset(pool.pages.addr, tableOff), table);
      batch.write(
        this.pseudo(descOffset(head)),
        encodeDesc({
          addr: addOffset(pool.mapping.bus, tableOff),
          len: table.byteLength,
          flags: VRING_DESC_F.INDIRECT,
          next: 0,
        }),
      );
    } else {
      buffers.forEach((b, i) => {
        const last = i + 1 === buffers.length;
        batch.write(
          this.pseudo(descOffset(descs[i]!)),
          encodeDesc({
            addr: b.bus,
            len: b.len,
            flags: (b.writable ? VRING_DESC_F.WRITE : 0) | (last ? 0 : VRING_DESC_F.NEXT),
            next: last ? 0 : descs[i + 1]!,
          }),
        );
      });
    }
    this.inFlight.set(head, { token, descs });
    // The avail ring is shared state: posts are serialised (the vq lock).
    const run = this.postChain.then(() => this.publish(head, batch, opts));
    this.postChain = run.catch(() => undefined);
    return run;
  }

  private async publish(
    head: number,
    batch: CpuBatch,
    opts: { ioIds?: string[]; timeoutMs?: number },
  ): Promise<{ head: number; kicked: boolean }> {
    const old = this.availIdx;
    const now = u16(old + 1);
    const avail = this.layout.availOffset;
    batch.write(this.pseudo(avail + availRingOffset(old & (this.size - 1))), encodeU16(head));
    batch.write(this.pseudo(avail + 2), encodeU16(now));
    this.availIdx = now;
    const doorbell = encodeU16(this.opts.queueIndex);
    const commit = {
      ...(opts.ioIds ? { ioIds: opts.ioIds } : {}),
      ...(opts.timeoutMs ? { timeoutMs: opts.timeoutMs } : {}),
    };
    if (!this.opts.eventIdx) {
      // Without EVENT_IDX the driver may always notify (spec 2.7.7.2 says SHOULD NOT when
      // used.flags has NO_NOTIFY); doing so keeps stores + doorbell in one ordered batch.
      batch.mmioWrite(this.opts.notify, doorbell);
      await batch.commit(commit);
      this.kicks++;
      return { head, kicked: true };
    }
    // virtqueue_kick_prepare_split: after the avail idx store, read avail_event.
    const availEventOff = this.layout.usedOffset + splitRingLayout(this.size).used.availEvent;
    const h = batch.read(this.pseudo(availEventOff), 2);
    const event = decodeU16((await batch.commit(commit)).get(h));
    if (!vringNeedEvent(event, now, old)) {
      this.kicksSuppressed++;
      return { head, kicked: false };
    }
    await this.mem.batch().mmioWrite(this.opts.notify, doorbell).commit(commit);
    this.kicks++;
    return { head, kicked: true };
  }

  /** On a used-buffer interrupt: collects completed chains; drains run one at a time. */
  harvest(opts: { timeoutMs?: number } = {}): Promise<Harvested<T>[]> {
    if (this.drainQueued) return Promise.resolve([]);
    this.drainQueued = true;
    const run = this.drainChain.then(() => {
      this.drainQueued = false;
      return this.drainOnce(opts.timeoutMs);
    });
    this.drainChain = run.catch(() => undefined);
    return run;
  }

  private async drainOnce(timeoutMs?: number): Promise<Harvested<T>[]> {
    const usedOff = this.layout.usedOffset;
    const idxAddr = this.pseudo(usedOff + 2);
    const commit = timeoutMs ? { timeoutMs } : {};
    let idx = decodeU16(await this.mem.read(idxAddr, 2, commit));
    const out: Harvested<T>[] = [];
    for (let round = 0; round < 4 && idx !== this.lastUsed; round++) {
      const n = u16(idx - this.lastUsed);
      if (n > this.size) {
        throw new Dom0Error(
          'BLK_BAD_STATUS',
          `used.idx jumped ${n} entries ahead (queue size ${this.size})`,
        );
      }
      const b = this.mem.batch();
      const elems: number[] = [];
      for (let i = 0; i < n; i++) {
        const slot = u16(this.lastUsed + i) & (this.size - 1);
        elems.push(b.read(this.pseudo(usedOff + usedElemOffset(slot)), 8));
      }
      if (this.opts.eventIdx) {
        // virtqueue_enable_cb_prepare: interrupt me when used.idx passes what I have seen.
        b.write(
          this.pseudo(this.layout.availOffset + splitRingLayout(this.size).avail.usedEvent),
          encodeU16(idx),
        );
      }
      const again = b.read(idxAddr, 2);
      const r = await b.commit({
        ...commit,
        ioIds: [...this.inFlight.values()].map((e) => e.token).slice(0, 64),
      });
      for (const h of elems) {
        const { id, len } = decodeUsedElem(r.get(h));
        const e = id < this.size ? this.inFlight.get(id) : undefined;
        if (e === undefined) {
          this.bogusUsed++;
          continue;
        }
        this.inFlight.delete(id);
        this.release(e.descs);
        out.push({ token: e.token, len });
      }
      this.lastUsed = idx;
      idx = decodeU16(r.get(again));
    }
    return out;
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
