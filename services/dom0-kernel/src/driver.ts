// The virtio-blk driver's lifecycle: configure, probe (PCI → init → DMA
// policy → queue → DRIVER_OK), interrupts, reset. Owns the per-run state.
// Recovery (what a real driver does when its device stops answering): a
// hung queue is first polled (a lost MSI leaves completions in the used
// ring), then the device is reset, re-initialized and its queue set up
// again on the same ring memory; every I/O not yet completed is resubmitted
// (recovery.ts). NEEDS_RESET, a device found reset (L0 restarted) and a
// broken used ring take the same path.
import type { ReplyOf, DriverProbe } from '@nestlab/protocol';
import { VIRTIO_MMIO_INT, VIRTIO_STATUS, type FeatureSet } from '@nestlab/virtio';
import type { Tracer } from '@opentelemetry/api';
import type { Logger } from 'pino';
import type { BusPort } from './bus-port.js';
import { BlockDevice, type Completion } from './block/block-device.js';
import { RequestTracker } from './block/request-tracker.js';
import { DmaLedger } from './dma/ledger.js';
import { DEFAULT_CONFIG, type DriverConfig } from './driver-config.js';
import { errorInfo } from './errors.js';
import type { Dom0Metrics } from './metrics.js';
import type { P2mCopy } from './mm/p2m-copy.js';
import { markFailed, probeDevice, ProbeRun, type ProbedDevice } from './probe.js';
import { MmioRegs } from './virtio/mmio.js';
import { HangWatch, type RecoverableDevice, type RecoveryStats } from './recovery.js';

export type ProbeReply = ReplyOf<typeof DriverProbe>;

/** A probed device and the block layer over its queue. */
export interface Live extends ProbedDevice {
  readonly block: BlockDevice;
}

export interface DriverDeps {
  readonly bus: BusPort;
  readonly tracer: Tracer;
  readonly log: Logger;
  readonly metrics: Dom0Metrics;
  /** Hung-queue timeout; default min(1000 ms, the shortest in-flight deadline / 4). */
  readonly hangMs?: number;
  /** IOMMU unmaps sent before the I/O completes (NESTLAB_IOMMU_STRICT). */
  readonly iommuStrict?: boolean;
}

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
      giveUp: (live, reason) => this.giveUp(live, reason),
    });
  }

  get recovery(): RecoveryStats {
    return this.watch.stats;
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
  private giveUp(live: RecoverableDevice, reason: string): void {
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
    this.live?.queue.close(reason);
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
    const run = new ProbeRun();
    const reply = (extra: Pick<ProbeReply, 'ok' | 'error' | 'ring'>): ProbeReply =>
      (this.lastProbe = {
        bdf: run.bdf,
        status: run.progress.status & 0xff,
        offered: run.progress.offered.toHex(),
        negotiated: run.progress.negotiated.toHex(),
        ...extra,
      });
    try {
      const dev = await probeDevice(
        {
          ...this.d,
          ledger: this.ledger,
          config: this.config,
          iommuStrict: this.d.iommuStrict === true,
        },
        run,
      );
      this.p2m = run.p2m ?? this.p2m;
      const block: BlockDevice = new BlockDevice({
        tracer: this.d.tracer,
        cpu: dev.cpu,
        policy: dev.policy,
        pages: dev.pages,
        queue: dev.queue,
        tracker: this.tracker,
        metrics: this.d.metrics,
        broken: () => (this.live?.block === block ? this.brokenState() : DRIVER_GONE),
        onError: (err, what) => this.d.log.warn({ err: errorInfo(err), what }, 'I/O path error'),
        // The half fix is Linux's driver with one change: no sentinel, so a
        // status byte the device wrote elsewhere reads as OK (issue 16, row 5).
        ...(dev.policy.name === 'xen-swiotlb-rings-only' ? { statusPreset: 0 } : {}),
      });
      const live: Live = { ...dev, block };
      dev.queue.subscribe({
        error: (err) => {
          if (this.live === live) this.ringError(live, err);
        },
      });
      this.live = live;
      this.watch.start();
      return reply({ ok: true, error: null, ring: dev.queue.ring.describe() });
    } catch (err) {
      this.p2m = run.p2m ?? this.p2m;
      const e = errorInfo(err);
      if (e.kind === 'internal') this.d.log.error({ err }, 'probe failed');
      await markFailed(run, e.code);
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
    this.d.metrics.interruptsBy[role].inc();
    // Never throw into the event handler: a failed harvest or status read is handled here.
    if (role === 'line') return this.onLine(live);
    if (role === 'queue') return live.queue.interrupt();
    return this.onConfigChange(live);
  }

  /** vm_interrupt: read InterruptStatus, acknowledge it, then the used ring and/or the config change. */
  private async onLine(live: Live): Promise<void> {
    if (!(live.regs instanceof MmioRegs)) return;
    const cause = await live.regs.takeInterrupt().catch(() => null);
    // A failed status read: harvest anyway, as a lost cause must not stall the ring.
    if (cause === null || cause & VIRTIO_MMIO_INT.VRING) await live.queue.interrupt();
    if (cause !== null && cause & VIRTIO_MMIO_INT.CONFIG) await this.onConfigChange(live);
  }

  private async onConfigChange(live: Live): Promise<void> {
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
            ring: l.queue.stats(),
            pages: { used: l.pages.usedPages, free: l.pages.freePages },
            buffersHeld: l.block.buffersHeld,
            unknownCompletions: l.block.unknownCompletions,
            capacitySectors: l.capacitySectors?.toString() ?? null,
          }
        : {}),
    };
  }
}
