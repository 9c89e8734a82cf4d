import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Bus } from '@nestlab/service-kit';
import { startFleet, type Fleet } from '../fleet/fleet.js';
import { runningFleet } from '../fleet/registry.js';
import { labBus } from './lab-bus.js';
import { startLabTelemetry } from '../run/lab-telemetry.js';
import { onTeardown } from '../fleet/teardown.js';

export interface SessionOptions {
  /** A running fleet's NATS; without it a private fleet is started and stopped. */
  natsUrl?: string;
  stack?: string;
  /** Start a private fleet even when `nestlab up` is running. */
  private?: boolean;
  progress: (line: string) => void;
}

/** The session options the fleet flags of a command (`--nats-url`, `--stack`, `--private`) ask for. */
export function sessionFromFlags(
  values: { 'nats-url'?: string; stack?: string; private?: boolean },
  progress: (line: string) => void,
): SessionOptions {
  return {
    ...(values['nats-url'] ? { natsUrl: values['nats-url'] } : {}),
    ...(values.stack ? { stack: values.stack } : {}),
    private: values.private ?? false,
    progress,
  };
}

export interface SessionInfo {
  /** The console that receives this fleet's traces, when there is one. */
  consoleUrl: string | null;
}

/** Runs `work` against a fleet: the given one, or a fresh private one torn down afterwards. */
export async function withFleet<T>(
  opts: SessionOptions,
  work: (bus: Bus, info: SessionInfo) => Promise<T>,
): Promise<T> {
  let fleet: Fleet | null = null;
  let scratch: string | null = null;
  let natsUrl = opts.natsUrl;
  let consoleUrl: string | null = null;
  const announced = !natsUrl && !opts.private ? runningFleet() : null;
  if (announced) {
    natsUrl = announced.natsUrl;
    consoleUrl = announced.consoleUrl;
    opts.progress(
      `using the running fleet (nats ${announced.natsUrl}, console ${announced.consoleUrl})`,
    );
  }
  const stack = opts.stack ?? announced?.stack ?? (natsUrl ? 's1' : 'run');
  if (!natsUrl) {
    scratch = mkdtempSync(join(tmpdir(), 'nestlab-run-'));
    opts.progress('starting nats-server and the four services');
    fleet = await startFleet({
      stack,
      natsPort: 0,
      adminBasePort: 0,
      logDir: join(scratch, 'logs'),
      env: { NESTLAB_DATA_DIR: join(scratch, 'data'), LOG_LEVEL: 'warn' },
      auth: true,
    });
    natsUrl = fleet.natsUrl;
    const [started, dir] = [fleet, scratch];
    onTeardown(() => started.stop().then(() => rmSync(dir, { recursive: true, force: true })));
  }
  const telemetry = consoleUrl ? startLabTelemetry(consoleUrl, stack) : null;
  const { bus, close } = await labBus(natsUrl, stack, fleet?.labAuth ?? announced?.labAuth);
  try {
    return await work(bus, { consoleUrl });
  } finally {
    await close();
    await telemetry?.shutdown();
    if (fleet) await fleet.stop();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  }
}
