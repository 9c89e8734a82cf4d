// Runs the dom0 service module on a test harness's bus, with fresh L0/Xen
// doubles per scenario, and sends it requests over real NATS.
import {
  DmaLedger,
  Dom0Configure,
  DriverProbe,
  JobRun,
  type ReplyOf,
  type RequestOf,
} from '@nestlab/protocol';
import { DomainFaults, type ServiceModule } from '@nestlab/service-kit';
import type { FeatureSet } from '@nestlab/virtio';
import { trace } from '@opentelemetry/api';
import { pino } from 'pino';
import { createDom0Kernel } from '../app.js';
import { DevicePlay } from './device-play.js';
import { flush, startHarness, type Harness } from './harness.js';
import { L0RegsDouble, type L0DoubleOptions } from './l0-regs-double.js';
import { XenDouble, type P2mRangeSpec } from './xen-double.js';

export interface Scenario {
  l0: L0RegsDouble;
  xen: XenDouble;
  device: DevicePlay;
}

export class AppHarness {
  private constructor(
    readonly h: Harness,
    readonly mod: ServiceModule,
  ) {}

  static async start(): Promise<AppHarness> {
    const h = await startHarness();
    const mod = createDom0Kernel();
    await mod.start({
      config: {
        service: 'dom0-kernel',
        natsUrl: h.nats.url,
        stack: 'ut',
        adminHost: '127.0.0.1',
        adminPort: 0,
        logLevel: 'silent',
      },
      bus: h.bus,
      log: pino({ level: 'silent' }),
      metrics: h.metrics,
      tracer: trace.getTracer('dom0-test'),
      faults: new DomainFaults('dom0-kernel'),
    });
    await flush(h);
    return new AppHarness(h, mod);
  }

  async scenario(
    l0Opts: L0DoubleOptions,
    p2m: P2mRangeSpec[],
    viaIommu = false,
  ): Promise<Scenario> {
    await this.h.peer.close();
    const l0 = new L0RegsDouble(l0Opts);
    const xen = new XenDouble(p2m);
    l0.serve(this.h.peer);
    xen.serve(this.h.peer);
    await flush(this.h);
    return { l0, xen, device: new DevicePlay(l0, xen, viaIommu) };
  }

  async configure(
    c: Omit<RequestOf<typeof Dom0Configure>, 'wanted'> & { wanted: FeatureSet },
  ): Promise<void> {
    await this.h.peer.request(Dom0Configure, { ...c, wanted: c.wanted.toHex() });
  }

  async probe(): Promise<ReplyOf<typeof DriverProbe>> {
    return (await this.h.peer.request(DriverProbe, {}, { timeoutMs: 10_000 })).head;
  }

  job(w: RequestOf<typeof JobRun>): Promise<ReplyOf<typeof JobRun>> {
    return this.h.peer.request(JobRun, w, { timeoutMs: 30_000 }).then((r) => r.head);
  }

  async ledger(): Promise<ReplyOf<typeof DmaLedger>> {
    return (await this.h.peer.request(DmaLedger, { since: 0, limit: 1000 })).head;
  }

  async close(): Promise<void> {
    await this.mod.stop?.();
    await this.h.close();
  }
}
