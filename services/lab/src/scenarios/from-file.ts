import {
  BLK_FEATURE_NAMES,
  COMMON_FEATURE_NAMES,
  VIRTIO_BLK_F,
  VIRTIO_F,
  VIRTIO_F_PROPOSAL_2014,
} from '@nestlab/virtio';
import type { IommuAttachment } from '@nestlab/protocol';
import type { ScenarioFile } from './file-schema.js';
import { DEVICE_BDF, busOf, type Scenario } from './scenario.js';

const BIT_OF = new Map<string, number>([
  ...[...COMMON_FEATURE_NAMES].map(([bit, name]) => [name, bit] as const),
  ...[...BLK_FEATURE_NAMES].map(([bit, name]) => [name, bit] as const),
]);
const bits = (names: readonly string[]) =>
  names.map((n) => BIT_OF.get(n) ?? -1).filter((b) => b >= 0);

/** What a driver would take when the file does not narrow it; dom0 drops what its generation never heard of. */
const KNOWN = [
  VIRTIO_F.VERSION_1,
  VIRTIO_F.EVENT_IDX,
  VIRTIO_F.INDIRECT_DESC,
  VIRTIO_F.ACCESS_PLATFORM,
  VIRTIO_F_PROPOSAL_2014.USE_BUS_MAPPING,
  VIRTIO_BLK_F.SEG_MAX,
  VIRTIO_BLK_F.BLK_SIZE,
  VIRTIO_BLK_F.FLUSH,
];

const SIZE = { KiB: 2 ** 10, MiB: 2 ** 20, GiB: 2 ** 30 } as const;
function bytes(text: string | undefined, fallback: number): number {
  if (!text) return fallback;
  const m = /^(\d+)(KiB|MiB|GiB)$/.exec(text);
  return m ? Number(m[1]) * SIZE[m[2] as keyof typeof SIZE] : fallback;
}

function attachment(f: ScenarioFile): IommuAttachment {
  if (!f.iommu.present) return 'none';
  if (f.device.kind === 'physical') return 'physical';
  const buses = f.iommu.virtioExemptBuses;
  if (buses) return buses.includes(busOf(DEVICE_BDF)) ? 'virtio-exempt' : 'virtio-translated-bus';
  return f.iommu.exemptsVirtio ? 'virtio-exempt' : 'virtio';
}

/** The runnable form of a scenario file, with defaults filled in. */
export function toScenario(f: ScenarioFile): Scenario {
  const w = f.workload ?? {};
  return {
    id: f.id,
    title: f.title,
    expected: f.expected,
    explanation: f.explanation.trim(),
    transport: f.transport,
    mmioVersion: f.mmioVersion ?? 2,
    domain: f.stack.domain,
    events: f.events ?? [],
    stack: {
      xen: f.stack.layers === 'l0+xen',
      machineBytes: bytes(f.stack.machine, 2 * SIZE.GiB),
      dom0Bytes: bytes(f.stack.dom0, 1 * SIZE.GiB),
    },
    device: {
      offer: bits(f.device.offer),
      requireAccessPlatform: f.device.requireAccessPlatform,
      iommu: attachment(f),
      queueSize: f.device.queueSize ?? 256,
      ringMemoryBytes: bytes(f.device.ringMemory, 0),
    },
    iommu: {
      mode: f.iommu.present ? (f.iommu.mode ?? 'translate') : 'off',
      virtioExemptBuses: f.iommu.virtioExemptBuses ?? [],
    },
    driver: {
      generation: f.driver.generation,
      policy: f.driver.dma === 'grant' ? 'legacy' : f.driver.dma,
      wanted: f.driver.wants ? bits(f.driver.wants) : KNOWN,
      rings: f.driver.rings ?? 'ram',
    },
    workload: {
      ios: w.ios ?? 200,
      iodepth: w.iodepth ?? 8,
      bs: w.bs ?? 4096,
      rw: (w.rw ?? 'randrw') as Scenario['workload']['rw'],
      verify: w.verify ?? true,
      deadlineMs: w.deadlineMs ?? 10_000,
    },
    checks: {
      allTranslated: f.checks?.allTranslated ?? false,
      allBypassed: f.checks?.allBypassed ?? false,
      rogueProbe: f.checks?.rogueProbe ?? false,
      nothingTouched: f.checks?.nothingTouched ?? false,
    },
  };
}

/** Why the runner cannot run this scenario yet, or null when it can. */
export function notRunnable(f: ScenarioFile): string | null {
  if (f.stack.domain === 'pv-domu' || f.driver.dma === 'grant')
    return 'grant-based DMA from a domU is not emulated yet';
  if (f.events?.length) return 'run-time events (balloon) are not emulated yet';
  if (f.driver.rings === 'device-memory' && (f.transport !== 'pci' || !f.device.ringMemory))
    return 'rings in device memory need a PCI device with ringMemory';
  if (f.stack.domain === 'pv-dom0' && f.stack.layers !== 'l0+xen')
    return 'a PV dom0 needs layers l0+xen';
  return null;
}
