import { connect } from '@nats-io/transport-node';
import { trace } from '@opentelemetry/api';
import { Bus, MetricsRegistry, createLogger } from '@nestlab/service-kit';

/** The CLI's own seat on NATS: the same validated, traced bus the services use. */
export async function labBus(
  natsUrl: string,
  stack: string,
): Promise<{ bus: Bus; close(): Promise<void> }> {
  // NATS_USER/NATS_PASS: credentials for servers with per-service permissions (compose).
  const user = process.env['NATS_USER'];
  const pass = process.env['NATS_PASS'];
  const nc = await connect({
    servers: natsUrl.split(','),
    name: `nestlab-cli@${stack}`,
    ...(user && pass ? { user, pass } : {}),
  });
  const bus = new Bus(
    nc,
    stack,
    trace.getTracer('nestlab.lab'),
    createLogger('lab', 'silent'),
    new MetricsRegistry(),
  );
  return {
    bus,
    close: async () => {
      await bus.close();
      await nc.close();
    },
  };
}
