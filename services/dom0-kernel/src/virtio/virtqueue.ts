// The one owner of a virtqueue: its ring (a new SplitRingDriver after every
// device reset, on the same ring memory), the device epoch that ring talks
// to, bring-up (Linux vp_setup_vq) at probe and again after a reset, and the
// wait of posts while a reset runs. recovery.ts decides when to reset and
// drives suspend → setUpAgain → resume; the block layer subscribes to the
// completions and to the resets; the driver subscribes to ring errors.
import { deviceToken } from '@nestlab/protocol';
import { DESC_SIZE, LEGACY_VRING_ALIGN, legacyRingLayout } from '@nestlab/virtio';
import type { Tracer } from '@opentelemetry/api';
import type { CoherentRegion, DmaPolicyImpl } from '../dma/policy.js';
import { Dom0Error } from '../errors.js';
import type { CpuMemory } from '../mm/cpu-memory.js';
import { QUEUE_VECTOR } from './interrupts.js';
import type { VirtioRegs } from './regs.js';
import {
  INDIRECT_ENTRIES,
  SplitRingDriver,
  type ChainRequest,
  type DeviceErrorCode,
  type Harvested,
  type PostResult,
  type RingOptions,
} from './split-ring-driver.js';

export interface QueueSubscriber<T> {
  /** Chains the device completed, harvested from the current ring in device epoch `epoch`. */
  used?(done: readonly Harvested<T>[], epoch: number): void;
  /** A used-ring read of the current ring failed. */
  error?(err: unknown): void;
  /** The queue is live again on a reset device: repost what it held. Returns chains reposted. */
  reset?(epoch: number): number;
}

export interface VirtqueueDeps {
  readonly cpu: CpuMemory;
  readonly regs: VirtioRegs;
  readonly policy: DmaPolicyImpl;
  readonly bdf: string;
  /** The queue size the driver wants; the device's maximum may cut it. */
  readonly wantedSize: number;
  /** INDIRECT_DESC and EVENT_IDX as negotiated. */
  readonly indirect: boolean;
  readonly eventIdx: boolean;
  readonly tracer?: Tracer;
  /** Lays the ring out in device memory instead of dma_alloc_coherent (rings in the card's BAR). */
  readonly ringIn?: (bytes: number) => CoherentRegion;
  /** Device misbehaviour the ring caught and survived. */
  readonly onDeviceError?: (code: DeviceErrorCode, detail: string) => void;
}

const QUEUE_INDEX = 0;
const floorPow2 = (n: number) => 2 ** Math.floor(Math.log2(n));

export class Virtqueue<T extends string = string> {
  private current: SplitRingDriver<T>;
  /** A ring set up on the reset device, waiting for resume() (DRIVER_OK comes in between). */
  private next: SplitRingDriver<T> | null = null;
  /** While the device is being reset: posts wait here for the new ring. */
  private suspended: { promise: Promise<void>; resume: () => void } | null = null;
  private readonly subs: QueueSubscriber<T>[] = [];
  /**
   * Bumped by every device reset and re-init: the device instance the ring
   * talks to. A reset device may have lost its volatile write cache, so
   * completions of an older epoch are not covered by a FLUSH of this one.
   */
  epoch = 0;

  private constructor(
    private readonly d: VirtqueueDeps,
    private readonly opts: RingOptions,
  ) {
    this.current = new SplitRingDriver<T>(d.cpu, opts);
  }

  /** vp_setup_vq for queue 0, at probe: size, ring memory (dma_alloc_coherent), addresses, enable. */
  static async bringUp<T extends string = string>(d: VirtqueueDeps): Promise<Virtqueue<T>> {
    const { regs, policy } = d;
    await regs.write('queue_select', QUEUE_INDEX);
    const max = await regs.read('queue_size');
    if (max === 0) throw new Dom0Error('QUEUE_UNAVAILABLE', 'queue 0 has size 0');
    const size = floorPow2(Math.min(d.wantedSize, max));
    await regs.write('queue_size', size);
    const ringBytes = legacyRingLayout(size).totalBytes;
    const ring = d.ringIn ? d.ringIn(ringBytes) : await policy.allocCoherent(ringBytes);
    const indirectPool = d.indirect
      ? await policy.allocCoherent(size * INDIRECT_ENTRIES * DESC_SIZE)
      : null;
    const notifyOff = await regs.read('queue_notify_off');
    const q = new Virtqueue<T>(d, {
      size,
      ring,
      indirectPool,
      eventIdx: d.eventIdx,
      notify: regs.notifyAddr(notifyOff),
      notifyWidth: regs.notifyWidth,
      queueIndex: QUEUE_INDEX,
      chainKeyPrefix: `${deviceToken(d.bdf)}.q${QUEUE_INDEX}`,
      ...(d.tracer ? { tracer: d.tracer } : {}),
      ...(d.onDeviceError ? { onDeviceError: d.onDeviceError } : {}),
    });
    await q.program(q.current);
    q.wire(q.current);
    return q;
  }

  /** The ring in use now (replaced by each device reset). */
  get ring(): SplitRingDriver<T> {
    return this.current;
  }
  get size(): number {
    return this.opts.size;
  }
  /** Nothing is reading the used ring now. */
  get quiet(): boolean {
    return this.current.completions.quiet;
  }
  /** A device reset is under way: posts wait. */
  get resetting(): boolean {
    return this.suspended !== null;
  }

  subscribe(s: QueueSubscriber<T>): void {
    this.subs.push(s);
  }

  /** Resolves once no reset is holding posts back. */
  async ready(): Promise<void> {
    while (this.suspended !== null) await this.suspended.promise;
  }

  /**
   * Posts a chain on the current ring (call ready() first). Null when the ring
   * was reset under the post: the reset's subscribers post it again.
   */
  async post(
    chain: ChainRequest<T>,
    opts: { signal?: () => AbortSignal; timeoutMs?: number },
  ): Promise<PostResult | null> {
    const ring = this.current;
    try {
      return await ring.post(chain, opts);
    } catch (err) {
      const aborted = opts.signal !== undefined && opts.signal().reason === err;
      if (!aborted && (ring !== this.current || this.suspended !== null || ring.closed)) {
        return null;
      }
      throw err;
    }
  }

  /** A used-buffer interrupt: harvests; a failed read goes to the error subscribers, never thrown. */
  async interrupt(): Promise<void> {
    const ring = this.current;
    await ring.interrupt().catch((err: unknown) => {
      if (ring === this.current) this.raise(err);
    });
  }

  /**
   * Reads the used ring now (a hang's first step: a lost MSI leaves
   * completions there); they go to the subscribers. Returns how many, or null
   * when the ring was replaced meanwhile; throws when the read failed.
   */
  async poll(timeoutMs: number): Promise<number | null> {
    const ring = this.current;
    let found: Harvested<T>[];
    try {
      found = await ring.completions.harvest({ timeoutMs });
    } catch (err) {
      if (ring !== this.current) return null;
      throw err;
    }
    if (ring !== this.current || ring.closed) return null;
    if (found.length > 0) this.deliver(found);
    return found.length;
  }

  /** Tells the error subscribers a used-ring read failed. */
  raise(err: unknown): void {
    for (const s of this.subs) s.error?.(err);
  }

  /** The device is about to be reset: the ring is closed, posts wait for the new one. */
  suspend(reason: string): void {
    this.current.close(reason);
    if (this.suspended !== null) return;
    let resume!: () => void;
    const promise = new Promise<void>((r) => (resume = r));
    this.suspended = { promise, resume };
  }

  /**
   * After a device reset (features negotiated again): the same ring memory set
   * up again. It goes live with resume(). Returns why the queue cannot be set
   * up as before (the device came back smaller), or null.
   */
  async setUpAgain(): Promise<string | null> {
    const { regs } = this.d;
    await regs.write('queue_select', QUEUE_INDEX);
    const max = await regs.read('queue_size');
    if (max < this.size) return `after reset queue 0 holds ${max}, not ${this.size}`;
    await regs.write('queue_size', this.size);
    const ring = new SplitRingDriver<T>(this.d.cpu, this.opts);
    await this.program(ring);
    this.next?.close('superseded by another setup');
    this.next = ring;
    return null;
  }

  /** The reset was overtaken (the driver re-probed): the ring set up for it is dropped. */
  discard(reason: string): void {
    this.next?.close(reason);
    this.next = null;
  }

  /**
   * Ends a reset: the new ring (if one was set up) takes over in a new epoch,
   * the reset subscribers repost, waiting posts go on. Without a new ring
   * (the device came back different), the closed ring stays and posts fail.
   */
  resume(): number {
    if (this.next !== null) {
      this.current = this.next;
      this.next = null;
      this.wire(this.current);
    }
    this.epoch++;
    const sus = this.suspended;
    this.suspended = null;
    let reposted = 0;
    for (const s of this.subs) reposted += s.reset?.(this.epoch) ?? 0;
    sus?.resume();
    return reposted;
  }

  /** The driver lets go of the queue: nothing more goes out or is harvested. */
  close(reason: string): void {
    this.discard(reason);
    this.current.close(reason);
  }

  /** Counters for the driver's state page. */
  stats(): Record<string, unknown> {
    const r = this.current;
    return {
      ...r.describe(),
      inFlight: r.inFlightCount,
      freeDescs: r.freeDescs,
      kicks: r.kicks,
      kicksSuppressed: r.kicksSuppressed,
      kickReads: r.kickReads,
      polls: r.completions.polls,
      bogusUsed: r.bogusUsed,
    };
  }

  private deliver(done: readonly Harvested<T>[]): void {
    for (const s of this.subs) s.used?.(done, this.epoch);
  }

  private wire(ring: SplitRingDriver<T>): void {
    ring.completions.onUsed = (done) => {
      if (ring === this.current) this.deliver(done);
    };
    ring.completions.onError = (err) => {
      if (ring === this.current) this.raise(err);
    };
  }

  /** The end of vp_setup_vq: the zeroed ring, its three addresses, the MSI-X vector, enable. */
  private async program(ring: SplitRingDriver<T>): Promise<void> {
    const { cpu, regs } = this.d;
    const zero = cpu.batch();
    ring.zeroStores(zero);
    await zero.commit();
    const addrs = ring.busAddrs;
    // A legacy interface takes the ring as one page number, laid out as allocated.
    if (regs.legacy && regs.placeLegacyRing)
      return regs.placeLegacyRing(addrs.desc, LEGACY_VRING_ALIGN);
    await regs.write('queue_desc', addrs.desc);
    await regs.write('queue_driver', addrs.driver);
    await regs.write('queue_device', addrs.device);
    // virtio-mmio has no vectors: its one line carries every cause.
    if (regs.kind === 'pci') {
      await regs.write('queue_msix_vector', QUEUE_VECTOR);
      if ((await regs.read('queue_msix_vector')) !== QUEUE_VECTOR) {
        throw new Dom0Error('QUEUE_UNAVAILABLE', 'device did not take queue_msix_vector 1');
      }
    }
    await regs.write('queue_enable', 1);
  }
}
