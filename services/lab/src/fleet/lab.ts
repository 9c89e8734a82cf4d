import { buildConsole } from '../console/app.js';
import { startLabTelemetry } from '../run/lab-telemetry.js';
import { startFleet, type Fleet, type FleetOptions } from './fleet.js';
import { labSeat } from './lab-seat.js';

export interface Lab {
  readonly fleet: Fleet;
  readonly consoleUrl: string;
  stop(): Promise<Record<string, number | string>>;
}

/**
 * The embedded lab: the console listens first (so the services' OTLP exporters
 * have somewhere to send), then the fleet starts with its traces pointed at it,
 * then the console gets a bus to run scenarios on.
 */
export async function startLab(opts: FleetOptions & { consolePort?: number }): Promise<Lab> {
  const consoleApp = buildConsole();
  const consoleUrl = await consoleApp.listen({ host: '127.0.0.1', port: opts.consolePort ?? 7700 });
  let fleet: Fleet;
  try {
    fleet = await startFleet({
      ...opts,
      env: { ...opts.env, OTEL_EXPORTER_OTLP_ENDPOINT: consoleUrl },
    });
  } catch (err) {
    await consoleApp.close();
    throw err;
  }
  const telemetry = startLabTelemetry(consoleUrl, fleet.stack);
  const { bus, close } = await labSeat(fleet.natsUrl, fleet.stack, fleet.labAuth);
  consoleApp.attachBus(bus);
  return {
    fleet,
    consoleUrl,
    stop: async () => {
      await close();
      const exits = await fleet.stop();
      await telemetry.shutdown();
      await consoleApp.close();
      return exits;
    },
  };
}
