import {
  Dom0Configure,
  DriverProbe,
  IommuConfigure,
  L0Configure,
  XenConfigure,
} from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import { FeatureSet } from '@nestlab/virtio';
import { DEVICE_BDF } from '../run/orchestrator.js';
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

const features = (bits: readonly number[]) => FeatureSet.of(...bits).toHex();

/**
 * Configures the four layers as the scenario says, on a fresh disk, and
 * probes the driver. The services persist this themselves: after a crash
 * they come back with it, the lab sends nothing again.
 */
export async function configureStack(bus: Bus, s: Scenario, seed: number): Promise<void> {
  const slow = { timeoutMs: 30_000 };
  await bus.request(IommuConfigure, { mode: s.iommu.mode }, slow);
  await bus.request(
    L0Configure,
    {
      ramBytes: s.stack.machineBytes,
      devices: [
        {
          bdf: DEVICE_BDF,
          transport: 'pci',
          offer: features(s.device.offer),
          requireAccessPlatform: s.device.requireAccessPlatform,
          iommu: s.device.iommu,
          queueSizeMax: s.device.queueSize,
          diskBytes: EXPERIMENT_DISK_BYTES,
          freshDisk: true,
        },
      ],
    },
    slow,
  );
  await bus.request(
    XenConfigure,
    {
      present: s.stack.xen,
      machineBytes: s.stack.machineBytes,
      dom0Bytes: s.stack.dom0Bytes,
      seed,
      passthrough: [DEVICE_BDF],
    },
    slow,
  );
  await bus.request(
    Dom0Configure,
    {
      generation: s.driver.generation,
      policy: s.driver.policy,
      wanted: features(s.driver.wanted),
      queueSize: s.device.queueSize,
    },
    slow,
  );
  const probe = (await bus.request(DriverProbe, {}, slow)).head;
  if (!probe.ok)
    throw new ExperimentError(
      'PROBE_FAILED',
      `the driver did not come up on ${s.id}: ${probe.error?.code ?? 'status'} ${probe.error?.message ?? probe.status}`,
    );
}
