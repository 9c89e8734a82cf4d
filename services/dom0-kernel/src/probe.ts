// The probe, step by step (Linux virtio_pci_probe or virtio_mmio's vm_probe →
// virtio_dev_probe → virtblk_probe): read the P2M, find the device on PCI or
// where the platform description puts it (virtio-mmio), negotiate features,
// set up the DMA policy, read the capacity, bind the MSI-X vectors, bring up
// the queue, DRIVER_OK. Each step is one function; `ProbeRun` keeps how far
// it got, so a failed probe still reports the status and features it reached.
import { P2mGet } from '@nestlab/protocol';
import { FeatureSet, VIRTIO_F, VIRTIO_STATUS } from '@nestlab/virtio';
import type { Logger } from 'pino';
import type { Tracer } from '@opentelemetry/api';
import type { BusPort } from './bus-port.js';
import { createDmaPolicy } from './dma/create.js';
import { effectiveDmaPolicy } from './dma/generation.js';
import { ringInDeviceMemory } from './virtio/device-ring-memory.js';
import type { DriverConfig } from './driver-config.js';
import type { DmaLedger } from './dma/ledger.js';
import type { DmaPolicyImpl } from './dma/policy.js';
import type { Dom0Metrics } from './metrics.js';
import { CpuMemory, DOM0_DOMID } from './mm/cpu-memory.js';
import { P2mCopy } from './mm/p2m-copy.js';
import { PageAllocator } from './mm/page-allocator.js';
import { findVirtioBlk, probeVirtioPci } from './pci/enumerate.js';
import {
  bindLine,
  bindVectors,
  CONFIG_VECTOR,
  type InterruptRouting,
} from './virtio/interrupts.js';
import { MmioRegs, parseMmioDevice } from './virtio/mmio.js';
import type { VirtioRegs } from './virtio/regs.js';
import { driverOk, negotiate, type InitProgress } from './virtio/init.js';
import { ModernRegs } from './virtio/pci-modern.js';
import { Virtqueue } from './virtio/virtqueue.js';

export interface ProbeDeps {
  readonly bus: BusPort;
  readonly tracer: Tracer;
  readonly log: Logger;
  readonly metrics: Dom0Metrics;
  readonly ledger: DmaLedger;
  readonly config: DriverConfig;
  /** IOMMU unmaps sent before the I/O completes (NESTLAB_IOMMU_STRICT). */
  readonly iommuStrict: boolean;
}

/** How far one probe got: a failed probe's reply shows it, and FAILED is set only past features. */
export class ProbeRun {
  readonly progress: InitProgress = {
    status: 0,
    offered: FeatureSet.EMPTY,
    negotiated: FeatureSet.EMPTY,
  };
  p2m: P2mCopy | null = null;
  bdf: string | null = null;
  regs: VirtioRegs | null = null;
  featuresDone = false;
}

/** What a successful probe hands the driver. */
export interface ProbedDevice {
  readonly bdf: string;
  readonly regs: VirtioRegs;
  readonly cpu: CpuMemory;
  readonly p2m: P2mCopy;
  readonly pages: PageAllocator;
  readonly policy: DmaPolicyImpl;
  readonly negotiated: FeatureSet;
  readonly routing: InterruptRouting;
  readonly queue: Virtqueue<string>;
  readonly capacitySectors: bigint | null;
}

export async function probeDevice(d: ProbeDeps, run: ProbeRun): Promise<ProbedDevice> {
  const { p2m, pages, cpu } = await readMemoryMap(d.bus);
  run.p2m = p2m;
  const { bdf, regs } = await findDevice(d, cpu, run);
  await negotiate(regs, d.config.wanted, d.config.generation, run.progress);
  run.featuresDone = true;
  const negotiated = run.progress.negotiated;
  const policy = createDmaPolicy(
    effectiveDmaPolicy(d.config.policy, d.config.generation, negotiated),
    { bus: d.bus, p2m, pages, ledger: d.ledger, bdf },
    d.iommuStrict,
  );
  await policy.init();
  const capacitySectors = await readCapacity(regs);
  const routing = await routeInterrupts(d, regs, bdf);
  const shm = regs instanceof ModernRegs ? regs.dev.shm : null;
  const queue = await Virtqueue.bringUp<string>({
    ...(d.config.rings === 'device-memory'
      ? { ringIn: (bytes: number) => ringInDeviceMemory(shm, bytes, p2m) }
      : {}),
    cpu,
    regs,
    policy,
    bdf,
    wantedSize: d.config.queueSize,
    indirect: negotiated.has(VIRTIO_F.INDIRECT_DESC),
    eventIdx: negotiated.has(VIRTIO_F.EVENT_IDX),
    tracer: d.tracer,
    onDeviceError: (code, detail) => {
      d.metrics.deviceErrors.inc({ code });
      d.log.warn({ code, detail }, 'device misbehaved');
    },
  });
  await driverOk(regs, run.progress);
  return { bdf, regs, cpu, p2m, pages, policy, negotiated, routing, queue, capacitySectors };
}

/** virtio_dev_probe: a driver that gives up after touching the device marks it FAILED. */
export async function markFailed(run: ProbeRun, code: string): Promise<void> {
  if (run.regs === null || !run.featuresDone || code === 'TIMEOUT' || code === 'NO_RESPONDERS')
    return;
  run.progress.status |= VIRTIO_STATUS.FAILED;
  await run.regs.write('device_status', run.progress.status).catch(() => undefined);
}

/** The first virtio-mmio device the platform names (vm_probe), else the virtio-blk function on PCI. */
async function findDevice(
  d: ProbeDeps,
  cpu: CpuMemory,
  run: ProbeRun,
): Promise<{ bdf: string; regs: VirtioRegs }> {
  const platform = d.config.mmioDevices[0];
  if (platform) {
    const regs = new MmioRegs(cpu, parseMmioDevice(platform.device));
    await regs.probe();
    run.bdf = platform.bdf;
    run.regs = regs;
    return { bdf: platform.bdf, regs };
  }
  const bdf = (run.bdf = await findVirtioBlk(d.bus));
  const regs = (run.regs = new ModernRegs(cpu, await probeVirtioPci(d.bus, bdf)));
  return { bdf, regs };
}

/** Linux reads its P2M at boot; here at probe time so a reconfigured Xen is seen. */
async function readMemoryMap(
  bus: BusPort,
): Promise<{ p2m: P2mCopy; pages: PageAllocator; cpu: CpuMemory }> {
  const reply = await bus.request(P2mGet, { domain: DOM0_DOMID });
  const p2m = new P2mCopy(reply.head.ranges);
  return { p2m, pages: new PageAllocator(p2m.pfnRuns()), cpu: new CpuMemory(bus, () => p2m) };
}

/** virtio-blk config `capacity` (sectors), read as two 32-bit halves; null without device config. */
async function readCapacity(regs: VirtioRegs): Promise<bigint | null> {
  const lo = await regs.readDeviceCfg(0, 4);
  const hi = await regs.readDeviceCfg(4, 4);
  return lo === null || hi === null ? null : (BigInt(hi) << 32n) | BigInt(lo);
}

/** vp_find_vqs_msix: vectors first (event channels), then the config vector; the queue's comes with it. */
async function routeInterrupts(
  d: ProbeDeps,
  regs: VirtioRegs,
  bdf: string,
): Promise<InterruptRouting> {
  if (regs instanceof MmioRegs) return bindLine(d.bus, bdf, regs.window.irq);
  const routing = await bindVectors(d.bus, bdf);
  await regs.write('config_msix_vector', CONFIG_VECTOR);
  if ((await regs.read('config_msix_vector')) !== CONFIG_VECTOR) {
    d.log.warn({ bdf }, 'device did not take config_msix_vector 0');
  }
  return routing;
}
