// Configures the four layers as a scenario says, on a fresh disk, and probes
// the driver. Runs and experiments both start here; the services persist the
// configuration themselves, so after a crash they come back with it.
import {
  Dom0Configure,
  DriverProbe,
  IommuConfigure,
  L0Configure,
  XenConfigure,
  type ReplyOf,
} from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import { FeatureSet } from '@nestlab/virtio';
import { DEVICE_BDF, type Scenario } from '../scenarios/scenario.js';

export { DEVICE_BDF };

export const features = (bits: readonly number[]) => FeatureSet.of(...bits).toHex();

/** The platform description of L0's virtio-mmio devices, as a kernel command line gives it. */
export function mmioDevicesOf(
  reply: ReplyOf<typeof L0Configure>,
): { device: string; bdf: string }[] {
  return reply.devices.flatMap((d) =>
    d.mmio
      ? [{ device: `0x${d.mmio.bytes.toString(16)}@${d.mmio.addr}:${d.mmio.irq}`, bdf: d.bdf }]
      : [],
  );
}

/** The probe's answer: whether the driver came up (a scenario may expect it not to). */
export async function configureLayers(
  bus: Bus,
  s: Scenario,
  seed: number,
  diskBytes: number,
  progress: (line: string) => void = () => undefined,
): Promise<ReplyOf<typeof DriverProbe>> {
  const slow = { timeoutMs: 30_000 };
  progress(`configuring the stack for ${s.id} (seed ${seed})`);
  await bus.request(IommuConfigure, { mode: s.iommu.mode }, slow);
  const l0 = await bus.request(
    L0Configure,
    {
      ramBytes: s.stack.machineBytes,
      devices: [
        {
          bdf: DEVICE_BDF,
          transport: s.transport,
          ...(s.transport === 'mmio' ? { mmioVersion: s.mmioVersion } : {}),
          offer: features(s.device.offer),
          requireAccessPlatform: s.device.requireAccessPlatform,
          iommu: s.device.iommu,
          queueSizeMax: s.device.queueSize,
          ...(s.device.ringMemoryBytes > 0 ? { ringMemoryBytes: s.device.ringMemoryBytes } : {}),
          diskBytes,
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
      mmioDevices: mmioDevicesOf(l0.head),
      rings: s.driver.rings,
    },
    slow,
  );
  progress('dom0: probing the virtio-blk device');
  return (await bus.request(DriverProbe, {}, slow)).head;
}
