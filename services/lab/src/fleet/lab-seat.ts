import { connect } from '@nats-io/transport-node';
import type { NatsCredential } from '@nestlab/nats-runner';
import { inboxPrefix } from '@nestlab/protocol';
import { trace } from '@opentelemetry/api';
import { Bus, MetricsRegistry, createLogger } from '@nestlab/service-kit';

/**
 * The lab's own seat on a stack's NATS: the same validated, traced bus the
 * services use. With `auth` (a fleet started with per-service users) it
 * signs in as the stack's lab user; without, NATS_USER/NATS_PASS from the
 * environment are used when set (a server configured elsewhere, e.g. compose).
 */
export async function labSeat(
  natsUrl: string,
  stack: string,
  auth?: NatsCredential | null,
): Promise<{ bus: Bus; close(): Promise<void> }> {
  const user = auth?.user ?? process.env['NATS_USER'];
  const pass = auth?.pass ?? process.env['NATS_PASS'];
  const inbox = inboxPrefix(stack, 'lab');
  const nc = await connect({
    servers: natsUrl.split(','),
    name: `nestlab-cli@${stack}`,
    inboxPrefix: inbox,
    // Like the services: an experiment may restart nats-server under the lab's feet.
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    ...(user && pass ? { user, pass } : {}),
  });
  const bus = new Bus(
    nc,
    stack,
    trace.getTracer('nestlab.lab'),
    createLogger('lab', 'silent'),
    new MetricsRegistry(),
    inbox,
  );
  return {
    bus,
    close: async () => {
      await bus.close();
      await nc.close();
    },
  };
}
