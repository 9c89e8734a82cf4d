import { errorFamily } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import { configureLayers } from '../run/configure.js';
import type { Scenario } from '../scenarios/scenario.js';

/** Why an experiment could not run (not: the stack misbehaved — that is a verdict). */
export const ExperimentError = errorFamily('ExperimentError', {
  EXPERIMENT_UNKNOWN: 'input',
  SCENARIO_NOT_RUNNABLE: 'input',
  /** More I/Os (and FLUSHes) than one job report carries: the judges need every record. */
  HISTORY_TOO_LONG: 'input',
  /** The driver did not come up on the configured stack. */
  PROBE_FAILED: 'transient',
  JOB_FAILED: 'transient',
  /** A step this fleet cannot carry out (it does not own its nats-server, say). */
  STEP_FAILED: 'input',
});
export type ExperimentError = InstanceType<typeof ExperimentError>;

/** The disk every experiment runs on: small, so the image is read back whole. */
export const EXPERIMENT_DISK_BYTES = 16 * 2 ** 20;

/**
 * Configures the four layers as the scenario says, on a fresh disk, and
 * probes the driver; an experiment needs it up. The services persist this
 * themselves: after a crash they come back with it, the lab sends nothing again.
 */
export async function configureStack(bus: Bus, s: Scenario, seed: number): Promise<void> {
  const probe = await configureLayers(bus, s, seed, EXPERIMENT_DISK_BYTES);
  if (!probe.ok)
    throw new ExperimentError(
      'PROBE_FAILED',
      `the driver did not come up on ${s.id}: ${probe.error?.code ?? 'status'} ${probe.error?.message ?? probe.status}`,
    );
}
