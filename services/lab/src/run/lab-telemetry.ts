import { startTelemetry, type Telemetry } from '@nestlab/telemetry';

let current: Telemetry | null = null;

/** The lab's own spans (its requests, the oracle's verdicts) go to the console too. */
export function startLabTelemetry(consoleUrl: string, stack: string): Telemetry {
  current ??= startTelemetry({ serviceName: 'lab', stack, otlpEndpoint: consoleUrl });
  return {
    ...current,
    shutdown: async () => {
      const t = current;
      current = null;
      await t?.shutdown();
    },
  };
}
