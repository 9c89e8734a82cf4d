// One real fleet (its own nats-server and the four services) per suite, with
// the lab's seat on it, in a scratch folder removed afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import type { Bus } from '@nestlab/service-kit';
import { startFleet, type Fleet } from '../fleet/fleet.js';
import { labSeat } from '../fleet/lab-seat.js';

export interface SuiteFleetOptions {
  /** A NATS user per service and one for the lab (FleetOptions.auth). */
  auth?: boolean;
  /** The services' LOG_LEVEL (default warn). */
  logLevel?: string;
  readyTimeoutMs?: number;
}

export interface SuiteFleet {
  /** The lab's bus once the suite started. */
  bus(): Bus;
  /** The fleet once the suite started. */
  fleet(): Fleet;
  /** The suite's scratch folder (logs/ and data/ are the fleet's). */
  readonly scratch: string;
}

/** Registers before/after hooks that start and stop one fleet for the suite. */
export function suiteFleet(stack: string, opts: SuiteFleetOptions = {}): SuiteFleet {
  let fleet: Fleet | undefined;
  let lab: { bus: Bus; close: () => Promise<void> } | undefined;
  const scratch = mkdtempSync(join(tmpdir(), `nestlab-${stack}-`));
  before(async () => {
    fleet = await startFleet({
      stack,
      natsPort: 0,
      adminBasePort: 0,
      auth: opts.auth ?? false,
      ...(opts.readyTimeoutMs === undefined ? {} : { readyTimeoutMs: opts.readyTimeoutMs }),
      logDir: join(scratch, 'logs'),
      env: { NESTLAB_DATA_DIR: join(scratch, 'data'), LOG_LEVEL: opts.logLevel ?? 'warn' },
    });
    lab = await labSeat(fleet.natsUrl, stack, fleet.labAuth);
  });
  after(async () => {
    await lab?.close();
    await fleet?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });
  return {
    scratch,
    bus: () => started(lab, 'bus').bus,
    fleet: () => started(fleet, 'fleet'),
  };
}

function started<T>(v: T | undefined, what: string): T {
  if (v === undefined) throw new Error(`the suite's ${what} is not up yet`);
  return v;
}
