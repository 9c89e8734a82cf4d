// One of a worker's long-lived stacks: a full fleet (its own nats-server with
// a user per service, stack token, data directory and admin ports) that runs
// sweep items one after another, configured afresh for each as `nestlab run`
// does on a running fleet. Stack traffic stays on the worker's machine; only
// work items and results cross the cluster.
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { startFleet, type Fleet } from '../fleet/fleet.js';
import { labSeat } from '../fleet/lab-seat.js';
import type { Bus } from '@nestlab/service-kit';

export interface HostedStack {
  readonly stack: string;
  readonly fleet: Fleet;
  readonly bus: Bus;
  readonly dataDir: string;
  readonly logDir: string;
  /** Every service and the stack's nats-server still running. */
  healthy(): boolean;
  /** Stops the fleet; its data goes, its logs stay. */
  stop(): Promise<void>;
}

export async function hostStack(
  stack: string,
  root: string,
  progress: (line: string) => void,
): Promise<HostedStack> {
  const dataDir = join(root, 'data');
  const logDir = join(root, 'logs');
  rmSync(dataDir, { recursive: true, force: true }); // a fresh power-on, whatever a crash left
  const fleet = await startFleet({
    stack,
    natsPort: 0,
    adminBasePort: 0,
    auth: true,
    readyTimeoutMs: 60_000,
    logDir,
    env: { NESTLAB_DATA_DIR: dataDir, LOG_LEVEL: 'warn' },
    onProgress: (line) => progress(`${stack}: ${line}`),
  });
  const seat = await labSeat(fleet.natsUrl, stack, fleet.labAuth).catch(async (err: unknown) => {
    await fleet.stop();
    throw err;
  });
  const alive = (p: { exitCode: number | null; signalCode: string | null }) =>
    p.exitCode === null && p.signalCode === null;
  return {
    stack,
    fleet,
    bus: seat.bus,
    dataDir,
    logDir,
    healthy: () =>
      fleet.services.every((s) => alive(s.process)) && (!fleet.nats || alive(fleet.nats.process)),
    stop: async () => {
      await seat.close().catch(() => undefined);
      await fleet.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
