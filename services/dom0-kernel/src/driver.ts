// The virtio-blk driver's lifecycle: configure, probe (PCI → init → DMA
// policy → queue → DRIVER_OK), interrupts, reset. Owns the per-run state.
// Recovery (what a real driver does when its device stops answering): a
// hung queue is first polled (a lost MSI leaves completions in the used
// ring), then the device is reset, re-initialized and its queue set up
// again on the same ring memory; every I/O not yet completed is resubmitted
// (recovery.ts). NEEDS_RESET, a device found reset (L0 restarted) and a
// broken used ring take the same path.
import {
  P2mGet,
  deviceToken,
  type DriverGeneration,
  type DmaPolicy,
  type ReplyOf,
  type DriverProbe,
} from '@nestlab/protocol';
import { FeatureSet, VIRTIO_F, VIRTIO_STATUS, legacyRingLayout, DESC_SIZE } from '@nestlab/virtio';
import type { Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { BusPort } from './bus-port.js';
import { BlockDevice, type Completion } from './block/block-device.js';
import { RequestTracker } from './block/request-tracker.js';
import { createDmaPolicy } from './dma/create.js';
import { DmaLedger } from './dma/ledger.js';
import type { DmaPolicyImpl } from './dma/policy.js';
import { Dom0Error, errorInfo } from './errors.js';
import type { Dom0Metrics } from './metrics.js';
import { CpuMemory, DOM0_DOMID } from './mm/cpu-memory.js';
import { P2mCopy } from './mm/p2m-copy.js';
import { PageAllocator } from './mm/page-allocator.js';
import { findVirtioBlk, probeVirtioPci } from './pci/enumerate.js';
import {
  bindVectors,
  CONFIG_VECTOR,
  QUEUE_VECTOR,
  type InterruptRouting,
} from './virtio/interrupts.js';
import { driverOk, negotiate, type InitProgress } from './virtio/init.js';
import { ModernRegs } from './virtio/pci-modern.js';
import {
  INDIRECT_ENTRIES,
  type RingOptions,
  type SplitRingDriver,
} from './virtio/split-ring-driver.js';
import { HangWatch, type RecoveryStats } from './recovery.js';
import { setupQueue } from './virtio/queue-setup.js';

export interface DriverConfig {
  generation: DriverGeneration;
  policy: DmaPolicy;
  wanted: FeatureSet;
  queueSize: number;
}

export const DEFAULT_CONFIG: DriverConfig = {
  generation: 'modern',
  policy: 'xen-swiotlb',
  wanted: FeatureSet.of(
    VIRTIO_F.VERSION_1,
    VIRTIO_F.ACCESS_PLATFORM,
    VIRTIO_F.INDIRECT_DESC,
    VIRTIO_F.EVENT_IDX,
  ),
  queueSize: 256,
};

export type ProbeReply = ReplyOf<typeof DriverProbe>;

export interface Live {
  readonly bdf: string;
  readonly regs: ModernRegs;
  readonly cpu: CpuMemory;
  /** Replaced by each device reset. */
  ring: SplitRingDriver;
  readonly ringOpts: RingOptions;
  readonly negotiated: FeatureSet;
  readonly block: BlockDevice;
  readonly routing: InterruptRouting;
  readonly policy: DmaPolicyImpl;
  readonly pages: PageAllocator;
  readonly capacitySectors: bigint | null;
}

export interface DriverDeps {
  readonly bus: BusPort;
  readonly tracer: Tracer;
  readonly log: Logger;
  readonly metrics: Dom0Metrics;
  /** Hung-queue timeout; default min(1000 ms, the shortest in-flight deadline / 4). */
  readonly hangMs?: number;
}

const floorPow2 = (n: number) => 2 ** Math.floor(Math.log2(n));
const DRIVER_GONE = { code: 'DRIVER_RESET', message: 'the driver was reset or re-probed' } as const;

export class BlkDriver {
  config: DriverConfig = DEFAULT_CONFIG;
  readonly ledger = new DmaLedger();
  readonly tracker = new RequestTracker<Completion>();
  private live: Live | null = null;
  private brokenReason: string | null = null;
  private p2m: P2mCopy | null = null;
  lastProbe: ProbeReply | null = null;
  unknownEvents = 0;
  private readonly watch: HangWatch;

  constructor(private readonly d: DriverDeps) {
    this.watch = new HangWatch({
      live: () => this.live,
      metrics: d.metrics,
      log: d.log,
      config: () => this.config,
      ...(d.hangMs !== undefined ? { hangMs: d.hangMs } : {}),
      wire: (live, ring) => this.wire(live, ring),
      giveUp: (live, reason) => this.giveUp(live, reason),
    });
  }

  get recovery(): RecoveryStats {
    return this.watch.stats;
  }

  /** Routes a ring's completions and errors to the block layer and the recovery path. */
  private wire(live: Live, ring: SplitRingDriver): void {
    ring.completions.onUsed = (done) => {
      if (this.live === live && live.ring === ring) for (const h of done) live.block.onUsed(h);
    };
    ring.completions.onError = (err) => {
      if (this.live === live && live.ring === ring) this.ringError(live, err);
    };
  }

  /** A used-ring read failed: a broken ring fails everything in flight at once and resets. */
  private ringError(live: Live, err: unknown): void {
    const e = errorInfo(err);
    if (e.code === 'DEVICE_BROKEN') {
      this.tracker.failAll('DEVICE_BROKEN', e.message);
      void this.watch.recover(live, 'device-broken');
      return;
    }
    this.d.log.warn({ err: e }, 'used ring read failed');
  }

  /** Recovery cannot bring the device back as it was: fail and refuse I/O until re-probed. */
  private giveUp(live: Live, reason: string): void {
    if (this.live !== live) return;
    this.brokenReason = reason;
    this.tracker.failAll('DEVICE_NEEDS_RESET', reason);
  }

  /**
   * Before a job: a device found in reset (L0 restarted) or NEEDS_RESET is
   * brought back first, so the job does not wait out a hang timeout.
   */
  async ensureLive(): Promise<void> {
    const live = this.live;
    if (live === null || this.brokenReason !== null) return;
    await this.watch.checkDevice(live);
  }

  get block(): BlockDevice | null {
    return this.live?.block ?? null;
  }
  /** The features of the live device, or null before a successful probe. */
  get negotiated(): FeatureSet | null {
    return this.live?.negotiated ?? null;
  }
  get capacityBytes(): bigint | null {
    const c = this.live?.capacitySectors;
    return c === null || c === undefined ? null : c * 512n;
  }

  private brokenState(): { code: string; message: string } | null {
    return this.brokenReason === null
      ? null
      : { code: 'DEVICE_NEEDS_RESET', message: this.brokenReason };
  }

  configure(cfg: DriverConfig): void {
    this.reset('driver reconfigured');
    this.config = cfg;
    this.ledger.clear();
  }

  reset(reason: string): void {
    this.tracker.failAll('DRIVER_RESET', reason);
    this.live?.ring.close(reason);
    this.watch.stop();
    this.live = null;
    this.brokenReason = null;
    this.lastProbe = null;
  }

  /** Probes run one at a time: two must never interleave their register writes. */
  private probing: Promise<unknown> = Promise.resolve();

  probe(): Promise<ProbeReply> {
    const run = this.probing.then(() => this.probeOnce());
    this.probing = run.catch(() => undefined);
    return run;
  }

  private async probeOnce(): Promise<ProbeReply> {
    this.reset('driver re-probed');
    await this.watch.settle();
    const { bus } = this.d;
    const progress: InitProgress = {
      status: 0,
      offered: FeatureSet.EMPTY,
      negotiated: FeatureSet.EMPTY,
    };
    let bdf: string | null = null;
    let regs: ModernRegs | null = null;
    let featuresDone = false;
    const reply = (extra: Pick<ProbeReply, 'ok' | 'error' | 'ring'>): ProbeReply =>
      (this.lastProbe = {
        bdf,
        status: progress.status & 0xff,
        offered: progress.offered.toHex(),
        negotiated: progress.negotiated.toHex(),
        ...extra,
      });
    try {
      // Linux reads its P2M at boot; here at probe time so a reconfigured Xen is seen.
      const p2mReply = await bus.request(P2mGet, { domain: DOM0_DOMID });
      const p2m = new P2mCopy(p2mReply.head.ranges);
      this.p2m = p2m;
      const pages = new PageAllocator(p2m.pfnRuns());
      const cpu = new CpuMemory(bus, () => p2m);

      bdf = await findVirtioBlk(bus);
      const dev = await probeVirtioPci(bus, bdf);
      regs = new ModernRegs(cpu, dev);
      await negotiate(regs, this.config.wanted, this.config.generation, progress);
      featuresDone = true;

      const policy = createDmaPolicy(this.config.policy, {
        bus,
        p2m,
        pages,
        ledger: this.ledger,
        bdf,
      });
      await policy.init();
      const capLo = await regs.readDeviceCfg(0, 4);
      const capHi = await regs.readDeviceCfg(4, 4);
      const capacitySectors =
        capLo === null || capHi === null ? null : (BigInt(capHi) << 32n) | BigInt(capLo);

      // vp_find_vqs_msix: vectors first, then the queue.
      const routing = await bindVectors(bus, bdf);
      await regs.write('config_msix_vector', CONFIG_VECTOR);
      if ((await regs.read('config_msix_vector')) !== CONFIG_VECTOR) {
        this.d.log.warn({ bdf }, 'device did not take config_msix_vector 0');
      }
      await regs.write('queue_select', 0);
      const max = await regs.read('queue_size');
      if (max === 0) throw new Dom0Error('QUEUE_UNAVAILABLE', 'queue 0 has size 0');
      const size = floorPow2(Math.min(this.config.queueSize, max));
      await regs.write('queue_size', size);
      const ringRegion = await policy.allocCoherent(legacyRingLayout(size).totalBytes);
      const indirectPool = progress.negotiated.has(VIRTIO_F.INDIRECT_DESC)
        ? await policy.allocCoherent(size * INDIRECT_ENTRIES * DESC_SIZE)
        : null;
      const notifyOff = await regs.read('queue_notify_off');
      const ringOpts: RingOptions = {
        size,
        ring: ringRegion,
        indirectPool,
        eventIdx: progress.negotiated.has(VIRTIO_F.EVENT_IDX),
        notify: regs.notifyAddr(notifyOff),
        queueIndex: 0,
        chainKeyPrefix: `${deviceToken(bdf)}.q0`,
        tracer: this.d.tracer,
        onDeviceError: (code, detail) => {
          this.d.metrics.deviceErrors.inc({ code });
          this.d.log.warn({ code, detail }, 'device misbehaved');
        },
      };
      const ring = await setupQueue(cpu, regs, ringOpts);
      await driverOk(regs, progress);

      const block: BlockDevice = new BlockDevice({
        tracer: this.d.tracer,
        cpu,
        policy,
        pages,
        ring,
        tracker: this.tracker,
        metrics: this.d.metrics,
        broken: () => (this.live?.block === block ? this.brokenState() : DRIVER_GONE),
        onError: (err, what) => this.d.log.warn({ err: errorInfo(err), what }, 'I/O path error'),
      });
      const live: Live = {
        bdf,
        regs,
        cpu,
        ring,
        ringOpts,
        negotiated: progress.negotiated,
        block,
        routing,
        policy,
        pages,
        capacitySectors,
      };
      this.wire(live, ring);
      this.live = live;
      this.watch.start();
      return reply({ ok: true, error: null, ring: ring.describe() });
    } catch (err) {
      const e = errorInfo(err);
      if (e.kind === 'internal') this.d.log.error({ err }, 'probe failed');
      // virtio_dev_probe: a driver that gives up after touching the device marks it FAILED.
      if (regs !== null && featuresDone && e.code !== 'TIMEOUT' && e.code !== 'NO_RESPONDERS') {
        progress.status |= VIRTIO_STATUS.FAILED;
        await regs.write('device_status', progress.status).catch(() => undefined);
      }
      return reply({ ok: false, error: { code: e.code, message: e.message }, ring: null });
    }
  }

  /** An event channel fired. */
  async onEvent(port: number): Promise<void> {
    const live = this.live;
    const role = live?.routing.ports.get(port);
    if (live === null || role === undefined) {
      this.unknownEvents++;
      return;
    }
    this.d.metrics.interrupts.inc({
      vector: role === 'queue' ? String(QUEUE_VECTOR) : String(CONFIG_VECTOR),
    });
    // Never throw into the event handler: a failed harvest or status read is handled here.
    if (role === 'queue') {
      const ring = live.ring;
      await ring.interrupt().catch((err: unknown) => {
        if (this.live === live && live.ring === ring) this.ringError(live, err);
      });
      return;
    }
    // vp_config_changed → virtio_config_changed; NEEDS_RESET: reset, re-init, resubmit.
    const status = await live.regs.read('device_status').catch(() => null);
    if (status !== null && status & VIRTIO_STATUS.NEEDS_RESET && this.live === live) {
      void this.watch.recover(live, 'needs-reset');
    }
  }

  state(): unknown {
    const l = this.live;
    return {
      config: { ...this.config, wanted: this.config.wanted.toHex() },
      probe: this.lastProbe,
      broken: this.brokenReason,
      p2mPages: this.p2m?.pages ?? null,
      ledgerEntries: this.ledger.size,
      tracker: {
        inFlight: this.tracker.inFlight,
        late: this.tracker.late,
        duplicate: this.tracker.duplicate,
      },
      unknownEvents: this.unknownEvents,
      recovery: {
        ...this.watch.stats,
        resubmitted: l?.block.resubmitted ?? 0,
        retries: l?.block.retries ?? 0,
      },
      ...(l
        ? {
            ring: {
              ...l.ring.describe(),
              inFlight: l.ring.inFlightCount,
              freeDescs: l.ring.freeDescs,
              kicks: l.ring.kicks,
              kicksSuppressed: l.ring.kicksSuppressed,
              kickReads: l.ring.kickReads,
              polls: l.ring.completions.polls,
              bogusUsed: l.ring.bogusUsed,
            },
            pages: { used: l.pages.usedPages, free: l.pages.freePages },
            buffersHeld: l.block.buffersHeld,
            unknownCompletions: l.block.unknownCompletions,
            capacitySectors: l.capacitySectors?.toString() ?? null,
          }
        : {}),
    };
  }
}
