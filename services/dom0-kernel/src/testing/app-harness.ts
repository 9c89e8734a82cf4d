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
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { Bus, DomainFaults, MetricsRegistry, type ServiceModule } from '@nestlab/service-kit';
import type { FeatureSet } from '@nestlab/virtio';
import { trace } from '@opentelemetry/api';
import { pino } from 'pino';
import { createDom0Kernel, type Dom0Options } from '../app.js';
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
  private xenSide: { nc: NatsConnection; bus: Bus } | null = null;

  private constructor(
    readonly h: Harness,
    readonly mod: ServiceModule,
    readonly stack: string,
  ) {}

  /** A bus of its own for the Xen double, so a test can take Xen away (NO_RESPONDERS) and back. */
  async xenBus(): Promise<Bus> {
    if (this.xenSide === null) {
      const nc = await connect({ servers: this.h.nats.url });
      const bus = new Bus(
        nc,
        this.stack,
        trace.getTracer('dom0-test'),
        pino({ level: 'silent' }),
        new MetricsRegistry(),
      );
      this.xenSide = { nc, bus };
    }
    return this.xenSide.bus;
  }

  /**
   * Tests that play the device by hand pass a long `hangMs`, so the hung-queue
   * watch does not reset the device under them; recovery tests pass a short one.
   */
  static async start(opts: Dom0Options = {}, stack = 'ut'): Promise<AppHarness> {
    const h = await startHarness(stack);
    const mod = createDom0Kernel(opts);
    await mod.start({
      config: {
        service: 'dom0-kernel',
        natsUrl: h.nats.url,
        stack,
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
    return new AppHarness(h, mod, stack);
  }

  async scenario(
    l0Opts: L0DoubleOptions,
    p2m: P2mRangeSpec[],
    viaIommu = false,
    xenOn: Bus = this.h.peer,
  ): Promise<Scenario> {
    await this.h.peer.close();
    if (this.xenSide !== null) await this.xenSide.bus.close();
    const l0 = new L0RegsDouble(l0Opts);
    const xen = new XenDouble(p2m);
    l0.serve(this.h.peer);
    xen.serve(xenOn);
    await flush(this.h);
    await xenOn.nc.flush();
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
    if (this.xenSide !== null) {
      await this.xenSide.bus.close();
      await this.xenSide.nc.close();
    }
    await this.h.close();
  }
}
