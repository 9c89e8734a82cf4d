// Test harness: a real nats-server, the L0 module started in-process on its
// own connection (as runService would), and a client Bus for the test's side.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { trace, type Tracer } from '@opentelemetry/api';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { Msi, decodeRequest, subjectOf } from '@nestlab/protocol';
import type { MessageDef, ReplyOf, RequestOf } from '@nestlab/protocol';
import {
  Bus,
  DomainFaults,
  MetricsRegistry,
  type SendOptions,
  type ServiceModule,
} from '@nestlab/service-kit';
import { startNatsServer, type NatsServerHandle } from '@nestlab/testing';
import { pino } from 'pino';
import { createL0Hypervisor, type L0Options } from '../app.js';

/** The test's side of the bus: requests to L0, and the MSIs it publishes. */
export interface L0Client {
  readonly stack: string;
  readonly client: Bus;
  readonly clientNc: NatsConnection;
  /** Every Msi the device published, in order. */
  readonly msis: { bdf: string; vector: number }[];
  request<M extends MessageDef>(
    def: M,
    head: RequestOf<M>,
    opts?: SendOptions,
  ): Promise<{ head: ReplyOf<M>; data: Uint8Array }>;
  stop(): Promise<void>;
}

export interface L0Harness extends L0Client {
  readonly dataDir: string;
  readonly nats: NatsServerHandle;
  readonly module: ServiceModule;
  /** The service's registry: what /metrics would show. */
  readonly metrics: MetricsRegistry;
  /** The service's domain-fault switchboard (what FaultControl.l0.inject / list reach). */
  readonly faults: DomainFaults;
}

export async function startClient(natsUrl: string, stack: string): Promise<L0Client> {
  const clientNc = await connect({ servers: natsUrl });
  const client = new Bus(
    clientNc,
    stack,
    trace.getTracer('l0-test-client'),
    pino({ level: 'silent' }),
    new MetricsRegistry(),
  );
  const msis: { bdf: string; vector: number }[] = [];
  clientNc.subscribe(subjectOf(Msi, stack), {
    callback: (_err, msg) => {
      try {
        msis.push(decodeRequest(Msi, msg.data).head);
      } catch {
        // a malformed MSI would fail the test's expectations anyway
      }
    },
  });
  await clientNc.flush();
  return {
    stack,
    client,
    clientNc,
    msis,
    request: (def, head, o) => client.request(def, head, o),
    async stop() {
      await client.close();
      await clientNc.close();
    },
  };
}

export async function startL0(
  opts: L0Options & { stack?: string; nats?: NatsServerHandle; tracer?: Tracer } = {},
): Promise<L0Harness> {
  const stack = opts.stack ?? 't1';
  const dataDir = opts.dataDir ?? (await mkdtemp(join(tmpdir(), 'nestlab-l0-')));
  const ownNats = !opts.nats;
  const nats = opts.nats ?? (await startNatsServer());
  const log = pino({ level: 'silent' });
  const tracer = opts.tracer ?? trace.getTracer('l0-test');
  const svcNc = await connect({ servers: nats.url });
  const metrics = new MetricsRegistry();
  const svcBus = new Bus(svcNc, stack, tracer, log, metrics);
  const module = createL0Hypervisor({ ...opts, dataDir });
  const faults = new DomainFaults('l0-hypervisor');
  await module.start({
    config: {
      service: 'l0-hypervisor',
      natsUrl: nats.url,
      stack,
      adminHost: '127.0.0.1',
      adminPort: 0,
      logLevel: 'silent',
    },
    bus: svcBus,
    log,
    metrics,
    tracer,
    faults,
  });
  await svcNc.flush();

  const c = await startClient(nats.url, stack);
  return {
    ...c,
    dataDir,
    nats,
    module,
    metrics,
    faults,
    async stop() {
      await module.stop?.();
      await svcBus.close();
      await svcNc.close();
      await c.stop();
      if (ownNats) await nats.stop();
      if (!opts.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** Sum of the series of one counter whose labels include `labels` (0 when none). */
export function metricValue(
  reg: MetricsRegistry,
  name: string,
  labels: Record<string, string> = {},
): number {
  return reg.value(name, labels);
}
