// One real fleet (nats-server and the four services) per e2e suite, with the
// lab's bus on it, in a scratch folder removed afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import type { Bus } from '@nestlab/service-kit';
import { startNatsServer, type NatsServerHandle } from '@nestlab/testing';
import { labBus } from '../cli/lab-bus.js';
import { startFleet, type Fleet } from '../fleet/fleet.js';

/** Registers before/after hooks; `bus()` is the lab's bus once the suite started. */
export function suiteFleet(stack: string): { bus: () => Bus } {
  let nats: NatsServerHandle | undefined;
  let fleet: Fleet | undefined;
  let lab: { bus: Bus; close: () => Promise<void> } | undefined;
  const scratch = mkdtempSync(join(tmpdir(), `nestlab-${stack}-`));
  before(async () => {
    nats = await startNatsServer();
    fleet = await startFleet({
      natsUrl: nats.url,
      stack,
      adminBasePort: 0,
      logDir: join(scratch, 'logs'),
      env: { NESTLAB_DATA_DIR: join(scratch, 'data'), LOG_LEVEL: 'warn' },
    });
    lab = await labBus(nats.url, stack);
  });
  after(async () => {
    await lab?.close();
    await fleet?.stop();
    await nats?.stop();
    rmSync(scratch, { recursive: true, force: true });
  });
  return {
    bus: () => {
      if (!lab) throw new Error('the suite fleet is not up yet');
      return lab.bus;
    },
  };
}
