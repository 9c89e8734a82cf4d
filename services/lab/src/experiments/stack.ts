import type { Bus } from '@nestlab/service-kit';
import { configureLayers } from '../run/configure.js';
import type { Scenario } from '../scenarios/scenario.js';

export class ExperimentError extends Error {
  override readonly name = 'ExperimentError';
  constructor(
    readonly code:
      | 'EXPERIMENT_UNKNOWN'
      | 'SCENARIO_NOT_RUNNABLE'
      | 'PROBE_FAILED'
      | 'JOB_FAILED'
      | 'STEP_FAILED',
    message: string,
  ) {
    super(message);
  }
}

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
