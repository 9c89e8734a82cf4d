// Test harness: a real nats-server, and two Buses on separate connections —
// one for the code under test, one for the test's register-file doubles.
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { Bus, MetricsRegistry } from '@nestlab/service-kit';
import { startNatsServer, type NatsServerHandle } from '@nestlab/testing';
import { trace } from '@opentelemetry/api';
import { pino } from 'pino';

export interface Harness {
  readonly nats: NatsServerHandle;
  readonly bus: Bus;
  readonly peer: Bus;
  readonly metrics: MetricsRegistry;
  close(): Promise<void>;
}

export async function startHarness(stack = 'ut'): Promise<Harness> {
  const nats = await startNatsServer();
  const conns: NatsConnection[] = [];
  try {
    conns.push(await connect({ servers: nats.url }), await connect({ servers: nats.url }));
  } catch (err) {
    await nats.stop();
    throw err;
  }
  const log = pino({ level: 'silent' });
  const tracer = trace.getTracer('dom0-test');
  const metrics = new MetricsRegistry();
  const bus = new Bus(conns[0]!, stack, tracer, log, metrics);
  const peer = new Bus(conns[1]!, stack, tracer, log, new MetricsRegistry());
  return {
    nats,
    bus,
    peer,
    metrics,
    async close() {
      await bus.close();
      await peer.close();
      for (const c of conns) await c.close();
      await nats.stop();
    },
  };
}

/** Resolves once NATS has delivered our subscriptions to the server. */
export async function flush(h: Harness): Promise<void> {
  await h.bus.nc.flush();
  await h.peer.nc.flush();
}
