import { connect } from '@nats-io/transport-node';
import { trace } from '@opentelemetry/api';
import { Bus, MetricsRegistry, createLogger } from '@nestlab/service-kit';

/** The CLI's own seat on NATS: the same validated, traced bus the services use. */
export async function labBus(
  natsUrl: string,
  stack: string,
): Promise<{ bus: Bus; close(): Promise<void> }> {
  const nc = await connect({ servers: natsUrl, name: `nestlab-cli@${stack}` });
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
