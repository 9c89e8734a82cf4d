// A split virtqueue as the device owns it (spec 2.7), in the spirit of
// rust-vmm virtio-queue's QueueT: the driver configures size and the three
// areas, enables it, and from then on the device pops chains, adds used
// elements, publishes used.idx and asks whether the driver wants an
// interrupt. The queue keeps next_avail / next_used; state() and restore()
// let a device be snapshotted and resumed mid-stream (migration).
//
// Memory is the device's (it may cross an IOMMU), passed per call so each
// access can be traced under the request it serves.
import { busAddr, toHex } from '@nestlab/addr';
import type { BusAddr } from '@nestlab/addr';
import { pendingAvailNow, walkChainNow } from './chain-walker.js';
import type { DescChain, WalkOptions } from './chain-walker.js';
import { VirtioError, fail, ok } from './errors.js';
import type { VirtioResult } from './errors.js';
import { isPending, readRing } from './ring-memory.js';
import type { Now, RingMemory } from './ring-memory.js';
import { availRingAddr, checkSplitQueue } from './split-queue.js';
import type { SplitQueue } from './split-queue.js';
import { decodeU16, isValidQueueSize, splitRingLayout } from './split-ring-layout.js';
import { availEventWrite, shouldInterrupt, usedElemWrite, usedIdxWrite } from './used-ring.js';
import type { RingWrite } from './used-ring.js';

/** Guest memory the device reads and writes; a write answers false when it faulted. */
export interface QueueMemory extends RingMemory {
  write(addr: BusAddr, bytes: Uint8Array): Promise<boolean>;
  /** The same write, answered at once when the memory can (see RingMemory.readNow). */
  writeNow?(addr: BusAddr, bytes: Uint8Array): Now<boolean>;
}

/**
 * Whether RAM backs all of [addr, addr+len) as the device addresses it;
 * undefined when that cannot be known at enable time (behind an IOMMU the
 * mapping is checked per access instead).
 */
export type RamBackingCheck = (addr: BusAddr, len: number) => boolean | undefined;

/** What a snapshot keeps of a running queue (the rest is configuration). */
export interface QueueState {
  /** The device's last_avail_idx: the next avail entry it will take. */
  readonly nextAvail: number;
  /** The device's used.idx shadow: the next used entry it will fill. */
  readonly nextUsed: number;
}

const u16 = (n: number): number => n & 0xffff;
const isU16 = (n: number): boolean => Number.isInteger(n) && n >= 0 && n <= 0xffff;

export class DeviceQueue {
  size: number;
  /** queue_enable: set once the configuration passed its checks. */
  ready = false;
  /** queue_desc, queue_driver, queue_device as the driver wrote them. */
  desc = 0n;
  driver = 0n;
  device = 0n;
  private next: QueueState = { nextAvail: 0, nextUsed: 0 };
  /** Used elements written but not yet published by a used.idx store. */
  private unpublished = 0;
  /** used.idx at the last notification decision (EVENT_IDX's old). */
  private signalled = 0;

  constructor(
    readonly index: number,
    readonly maxSize: number,
  ) {
    this.size = maxSize;
  }

  get nextAvail(): number {
    return this.next.nextAvail;
  }

  get nextUsed(): number {
    return this.next.nextUsed;
  }

  /** Writing 0 to device_status: back to power-on values. */
  reset(): void {
    this.size = this.maxSize;
    this.ready = false;
    this.desc = this.driver = this.device = 0n;
    this.restore({ nextAvail: 0, nextUsed: 0 });
  }

  /** A configuration write; false (ignored) once the queue is live (no moving a ring under the device). */
  configure(field: 'size' | 'desc' | 'driver' | 'device', value: number | bigint): boolean {
    if (this.ready) return false;
    if (field === 'size') this.size = Number(value);
    else this[field] = BigInt(value);
    return true;
  }

  /** The queue in the walker's terms, checked: size, alignment, no wrap (spec 2.7). */
  split(): VirtioResult<SplitQueue> {
    if (!isValidQueueSize(this.size) || this.size > this.maxSize) {
      return fail(
        'QUEUE_SIZE_INVALID',
        `queue ${this.index}: size ${this.size} is not a power of two up to ${this.maxSize}`,
      );
    }
    return checkSplitQueue({
      size: this.size,
      desc: busAddr(this.desc),
      avail: busAddr(this.driver),
      used: busAddr(this.device),
    });
  }

  /**
   * queue_enable = 1. Beyond split()'s checks, each area must be wholly RAM
   * (a ring that straddles a hole or the end of memory would work until the
   * device reaches its missing part); an error leaves the queue disabled and
   * the caller marks the device NEEDS_RESET.
   */
  enable(backed?: RamBackingCheck): VirtioResult<SplitQueue> {
    const sq = this.split();
    if (!sq.ok) return sq;
    const l = splitRingLayout(sq.value.size);
    const areas = [
      ['descriptor table', sq.value.desc, l.desc.bytes],
      ['avail ring', sq.value.avail, l.avail.bytes],
      ['used ring', sq.value.used, l.used.bytes],
    ] as const;
    for (const [what, addr, bytes] of areas) {
      if (backed?.(addr, bytes) === false) {
        return fail(
          'RING_NOT_IN_RAM',
          `queue ${this.index}: ${what} at ${toHex(addr)} + ${bytes} is not wholly RAM`,
        );
      }
    }
    this.ready = true;
    return sq;
  }

  state(): QueueState {
    return { ...this.next };
  }

  /** Resumes from a snapshot: the next pop reads avail.ring[nextAvail], the next used element goes to nextUsed. */
  restore(s: QueueState): void {
    if (!isU16(s.nextAvail) || !isU16(s.nextUsed)) {
      throw new VirtioError('INVALID_ARGUMENT', `queue state ${JSON.stringify(s)} is not two u16s`);
    }
    this.next = { nextAvail: s.nextAvail, nextUsed: s.nextUsed };
    this.unpublished = 0;
    this.signalled = s.nextUsed;
  }

  /** How many chains the driver has made available past nextAvail. */
  async pending(mem: RingMemory, sq: SplitQueue): Promise<VirtioResult<number>> {
    const got = pendingAvailNow(mem, sq, this.nextAvail);
    const p = isPending(got) ? await got : got;
    return p.ok ? ok(p.value.pending) : p;
  }

  /** The heads of the next `n` avail entries, one read per contiguous stretch of the ring. */
  async availHeads(mem: RingMemory, sq: SplitQueue, n: number): Promise<VirtioResult<number[]>> {
    const heads: number[] = [];
    while (heads.length < n) {
      const idx = u16(this.nextAvail + heads.length);
      const take = Math.min(n - heads.length, sq.size - (idx & (sq.size - 1)));
      const raw = await readRing(mem, availRingAddr(sq, idx), 2 * take, 'avail.ring entries');
      if (!raw.ok) return raw;
      for (let i = 0; i < take; i++) heads.push(decodeU16(raw.value, 2 * i));
    }
    return ok(heads);
  }

  /**
   * Walks the chain at `head` without consuming its avail entry: a device
   * that serves several chains at once consumes each with advanceAvail()
   * once it still owns the ring after the walk.
   */
  walk(
    mem: RingMemory,
    sq: SplitQueue,
    head: number,
    options: WalkOptions = {},
  ): Promise<VirtioResult<DescChain>> {
    return Promise.resolve(this.walkNow(mem, sq, head, options));
  }

  /** walk, answered at once when the memory answers at once (RingMemory.readNow). */
  walkNow(
    mem: RingMemory,
    sq: SplitQueue,
    head: number,
    options: WalkOptions = {},
  ): Now<VirtioResult<DescChain>> {
    return walkChainNow(mem, sq, head, options);
  }

  /** One avail entry consumed: nextAvail moves on (mod 2^16). */
  advanceAvail(): void {
    this.next = { ...this.next, nextAvail: u16(this.nextAvail + 1) };
  }

  /** Pops the next available chain, or null when there is none. */
  async pop(
    mem: RingMemory,
    sq: SplitQueue,
    options: WalkOptions = {},
  ): Promise<VirtioResult<DescChain | null>> {
    const p = await this.pending(mem, sq);
    if (!p.ok) return p;
    if (p.value === 0) return ok(null);
    const heads = await this.availHeads(mem, sq, 1);
    if (!heads.ok) return heads;
    const chain = await this.walk(mem, sq, heads.value[0]!, options);
    if (chain.ok) this.advanceAvail();
    return chain;
  }

  /** EVENT_IDX: avail_event = nextAvail, "notify me once you pass what I took" (QEMU virtqueue_pop). */
  async publishAvailEvent(mem: QueueMemory, sq: SplitQueue): Promise<VirtioResult<void>> {
    return write(mem, availEventWrite(sq, this.nextAvail), 'avail_event');
  }

  /** Writes the used element for `head` after those not yet published; visible at the next publishUsed. */
  addUsed(
    mem: QueueMemory,
    sq: SplitQueue,
    head: number,
    len: number,
  ): Promise<VirtioResult<void>> {
    try {
      return Promise.resolve(this.addUsedNow(mem, sq, head, len));
    } catch (err) {
      return Promise.reject(err as Error);
    }
  }

  /** addUsed, answered at once when the memory answers at once (QueueMemory.writeNow). */
  addUsedNow(mem: QueueMemory, sq: SplitQueue, head: number, len: number): Now<VirtioResult<void>> {
    const at = u16(this.nextUsed + this.unpublished);
    const r = writeNow(mem, usedElemWrite(sq, at, head, len), 'used elem');
    if (isPending(r)) {
      return r.then((done) => {
        if (done.ok) this.unpublished++;
        return done;
      });
    }
    if (r.ok) this.unpublished++;
    return r;
  }

  /** One used.idx store for every element added since the last; false when there was none. */
  async publishUsed(mem: QueueMemory, sq: SplitQueue): Promise<VirtioResult<boolean>> {
    if (this.unpublished === 0) return ok(false);
    const to = u16(this.nextUsed + this.unpublished);
    const r = await write(mem, usedIdxWrite(sq, to), 'used.idx');
    if (!r.ok) return r;
    this.unpublished = 0;
    this.next = { ...this.next, nextUsed: to };
    return ok(true);
  }

  /**
   * Whether the driver wants a used-buffer interrupt for what was published
   * since the last decision (spec "Used Buffer Notification Suppression").
   */
  async needsNotification(
    mem: RingMemory,
    sq: SplitQueue,
    eventIdx: boolean,
  ): Promise<VirtioResult<boolean>> {
    const old = this.signalled;
    const r = await shouldInterrupt(mem, sq, eventIdx, old, this.nextUsed);
    if (r.ok) this.signalled = this.nextUsed;
    return r;
  }
}

function write(mem: QueueMemory, w: RingWrite, what: string): Promise<VirtioResult<void>> {
  return Promise.resolve(writeNow(mem, w, what));
}

/** One ring write, never throwing; at once when the memory answers at once. */
function writeNow(mem: QueueMemory, w: RingWrite, what: string): Now<VirtioResult<void>> {
  const unreachable = (cause: unknown): VirtioResult<void> =>
    fail('MEMORY_UNREACHABLE', `cannot write ${what} at ${toHex(w.addr)}`, { cause });
  const outcome = (done: boolean): VirtioResult<void> =>
    done ? ok(undefined) : fail('MEMORY_UNREACHABLE', `cannot write ${what}`);
  let got: Now<boolean>;
  try {
    got = mem.writeNow ? mem.writeNow(w.addr, w.bytes) : mem.write(w.addr, w.bytes);
  } catch (cause) {
    return unreachable(cause);
  }
  return isPending(got) ? got.then(outcome, unreachable) : outcome(got);
}
