// The virtio-blk driver's lifecycle: configure, probe (PCI → init → DMA
// policy → queue → DRIVER_OK), interrupts, reset. Owns the per-run state.
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
import { INDIRECT_ENTRIES, SplitRingDriver } from './virtio/split-ring-driver.js';

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

interface Live {
  readonly bdf: string;
  readonly regs: ModernRegs;
  readonly ring: SplitRingDriver;
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

  constructor(private readonly d: DriverDeps) {}

  get block(): BlockDevice | null {
    return this.live?.block ?? null;
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
    this.live = null;
    this.brokenReason = null;
    this.lastProbe = null;
  }

  async probe(): Promise<ProbeReply> {
    this.reset('driver re-probed');
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
      const ring = new SplitRingDriver(cpu, {
        size,
        ring: ringRegion,
        indirectPool,
        eventIdx: progress.negotiated.has(VIRTIO_F.EVENT_IDX),
        notify: regs.notifyAddr(notifyOff),
        queueIndex: 0,
        chainKeyPrefix: `${deviceToken(bdf)}.q0`,
        tracer: this.d.tracer,
      });
      const zero = cpu.batch();
      ring.zeroStores(zero);
      await zero.commit();
      const addrs = ring.busAddrs;
      await regs.write('queue_desc', addrs.desc);
      await regs.write('queue_driver', addrs.driver);
      await regs.write('queue_device', addrs.device);
      await regs.write('queue_msix_vector', QUEUE_VECTOR);
      if ((await regs.read('queue_msix_vector')) !== QUEUE_VECTOR) {
        throw new Dom0Error('QUEUE_UNAVAILABLE', 'device did not take queue_msix_vector 1');
      }
      await regs.write('queue_enable', 1);
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
      const live: Live = { bdf, regs, ring, block, routing, policy, pages, capacitySectors };
      ring.completions.onUsed = (done) => {
        if (this.live === live) for (const h of done) block.onUsed(h);
      };
      ring.completions.onError = (err) =>
        this.d.log.warn(
          { err: errorInfo(err) },
          'used ring re-read after enabling callbacks failed',
        );
      this.live = live;
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
    if (role === 'queue') {
      await live.ring.interrupt();
      return;
    }
    // vp_config_changed → virtio_config_changed; NEEDS_RESET fails everything in flight.
    const status = await live.regs.read('device_status');
    if (status & VIRTIO_STATUS.NEEDS_RESET && this.live === live) {
      this.brokenReason = `device ${live.bdf} set NEEDS_RESET (status 0x${status.toString(16)})`;
      this.tracker.failAll('DEVICE_NEEDS_RESET', this.brokenReason);
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
            capacitySectors: l.capacitySectors?.toString() ?? null,
          }
        : {}),
    };
  }
}
