// Everything L0 emulates for one run: memory, CPU frame grants, the PCI bus
// with its devices, and the DMA engine they share.
import type { Tracer } from '@opentelemetry/api';
import { toHex } from '@nestlab/addr';
import type { ReplyOf, L0Configure, DeviceSetup } from '@nestlab/protocol';
import { FeatureSet, isValidQueueSize, SECTOR_SIZE } from '@nestlab/virtio';
import { DiskBackend, diskImagePath } from './blk/disk-backend.js';
import type { L0ConfigureRequest } from './config.js';
import { DmaEngine, type IommuTranslateFn } from './dma/dma-engine.js';
import { DmaLog } from './dma/dma-log.js';
import { DmaTracer } from './dma/dma-trace.js';
import { Iotlb } from './dma/iotlb.js';
import { L0Error } from './errors.js';
import { CpuFrames } from './memory/cpu-frames.js';
import { MachineMemory } from './memory/machine-memory.js';
import { Memslots } from './memory/memslots.js';
import type { L0Metrics } from './metrics.js';
import { FIRST_BAR_BASE, VIRTIO_BAR_INDEX, VIRTIO_BAR_SIZE } from './pci/bar-layout.js';
import { PciBus } from './pci/bus.js';
import { VirtioBlkDevice } from './virtio/blk-device.js';
import { VirtioPciTransport } from './virtio/pci-transport.js';
import { QueueProcessor } from './virtio/queue-processor.js';

export interface MachineOptions {
  readonly stack: string;
  readonly dataDir: string;
  readonly tracer: Tracer;
  readonly metrics: L0Metrics;
  readonly translate: IommuTranslateFn;
  raiseMsi(bdf: string, vector: number): void;
}

export class Machine {
  readonly mem = new MachineMemory(BigInt(2 ** 30));
  readonly frames = new CpuFrames();
  readonly pci = new PciBus();
  readonly iotlb: Iotlb;
  readonly dmaLog = new DmaLog();
  readonly dma: DmaEngine;
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: MachineOptions) {
    this.iotlb = new Iotlb(opts.metrics.iotlbHits, opts.metrics.iotlbMisses);
    this.dma = new DmaEngine(
      this.mem,
      this.iotlb,
      this.dmaLog,
      opts.metrics,
      new DmaTracer(opts.tracer),
      opts.translate,
    );
  }

  /** L0Configure: one at a time; RAM emptied, grants, IOTLB and DMA log dropped, devices rebuilt. */
  configure(req: L0ConfigureRequest): Promise<ReplyOf<typeof L0Configure>> {
    const run = this.queue.then(() => this.doConfigure(req));
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async doConfigure(req: L0ConfigureRequest): Promise<ReplyOf<typeof L0Configure>> {
    const memslots = new Memslots(BigInt(req.ramBytes));
    req.devices.forEach((d, i) => checkDevice(d, i, req.devices));
    await this.shutdownDevices();
    this.mem.reset(memslots);
    this.frames.clear();
    this.iotlb.clear();
    this.dmaLog.clear();
    const reply: ReplyOf<typeof L0Configure>['devices'] = [];
    for (const [i, setup] of req.devices.entries()) {
      const barBase = FIRST_BAR_BASE + BigInt(i * VIRTIO_BAR_SIZE);
      const path = diskImagePath(this.opts.dataDir, this.opts.stack, setup.bdf);
      const disk = await DiskBackend.open(path, setup.diskBytes, setup.freshDisk);
      const dev = new VirtioBlkDevice(setup.bdf, setup, barBase, disk, {
        metrics: this.opts.metrics,
        raiseMsi: (bdf, vector) => this.opts.raiseMsi(bdf, vector),
      });
      const processor = new QueueProcessor(
        dev,
        this.dma,
        disk,
        this.opts.tracer,
        this.opts.metrics,
      );
      const transport = new VirtioPciTransport(dev, this.opts.metrics, (q) => processor.notify(q));
      this.pci.add({ dev, transport, processor });
      reply.push({
        bdf: setup.bdf,
        bars: [{ index: VIRTIO_BAR_INDEX, addr: toHex(barBase), bytes: VIRTIO_BAR_SIZE }],
      });
    }
    return {
      memslots: memslots.slots.map((s) => ({
        machine: toHex(s.machine),
        hostPhys: toHex(s.hostPhys),
        bytes: Number(s.bytes),
      })),
      devices: reply,
    };
  }

  /** Stops old devices: no more write-back, in-flight work settled, images closed. */
  private async shutdownDevices(): Promise<void> {
    const old = this.pci.clear();
    for (const fn of old) {
      fn.dev.disposed = true;
      fn.dev.epoch++;
    }
    await Promise.all(old.map((fn) => fn.processor.idle()));
    await Promise.all(old.map((fn) => fn.dev.disk.close()));
  }

  async close(): Promise<void> {
    await this.queue;
    await this.shutdownDevices();
  }
}

function checkDevice(d: DeviceSetup, i: number, all: readonly DeviceSetup[]): void {
  const bad = (msg: string) => new L0Error('CONFIG_INVALID', `devices[${i}] ${d.bdf}: ${msg}`);
  if (all.findIndex((o) => o.bdf === d.bdf) !== i) throw bad('BDF used twice');
  try {
    FeatureSet.parseHex(d.offer);
  } catch {
    throw bad(`offer ${d.offer} is not a 64-bit feature set`);
  }
  if (!isValidQueueSize(d.queueSizeMax))
    throw bad(`queueSizeMax ${d.queueSizeMax} is not a power of two`);
  if (d.diskBytes % SECTOR_SIZE !== 0) throw bad(`diskBytes ${d.diskBytes} is not whole sectors`);
}
