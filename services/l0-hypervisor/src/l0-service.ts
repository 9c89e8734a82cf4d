// The L0 service: everything L0 emulates for one run (the machine) — memory,
// CPU frame grants, the PCI bus with its devices, and the DMA engine they share.
// Layout: app.ts wires it into service-kit, handlers/ answer its messages.
import { rm } from 'node:fs/promises';
import type { Tracer } from '@opentelemetry/api';
import { toHex } from '@nestlab/addr';
import type { ReplyOf, L0Configure, DeviceSetup, DomainFaultKind } from '@nestlab/protocol';
import { FeatureSet, isValidQueueSize, SECTOR_SIZE } from '@nestlab/virtio';
import { DiskBackend, diskImagePath, type DiskCacheOptions } from './blk/disk-backend.js';
import { memslotsOf, serialOf, type L0ConfigureRequest } from './config.js';
import { DmaEngine, type IommuTranslateFn } from './dma/dma-engine.js';
import { DmaLog } from './dma/dma-log.js';
import { DmaTracer } from './dma/dma-trace.js';
import { Iotlb } from './dma/iotlb.js';
import { L0Error } from './errors.js';
import { Countdown, type Bus } from '@nestlab/service-kit';
import { CpuFrames, type FrameRange } from './memory/cpu-frames.js';
import { MachineMemory } from './memory/machine-memory.js';
import type { Memslots } from './memory/memslots.js';
import { RamFile, ramFilePath, type RamBacking } from './memory/ram-file.js';
import type { L0Metrics } from './metrics.js';
import {
  FIRST_BAR_BASE,
  FIRST_MMIO_BASE,
  FIRST_MMIO_IRQ,
  FIRST_RING_BAR_BASE,
  RING_BAR_INDEX,
  RING_BAR_SLOT,
  VIRTIO_BAR_INDEX,
  VIRTIO_BAR_SIZE,
} from './pci/bar-layout.js';
import { PciBus } from './pci/bus.js';
import type { MemoryBar } from './pci/config-space.js';
import type { SavedL0State, StateFile } from './persist/state-file.js';
import { VirtioBlkModel } from './blk/blk-model.js';
import { VIRTIO_MMIO_WINDOW, VirtioMmioTransport } from './virtio/mmio-transport.js';
import { VirtioPciTransport } from './virtio/pci-transport.js';
import type { NotifyFaults, TransportPort } from './virtio/transport.js';
import { VirtioDevice } from './virtio/virtio-device.js';

export interface L0ServiceOptions {
  readonly stack: string;
  readonly dataDir: string;
  readonly tracer: Tracer;
  readonly metrics: L0Metrics;
  readonly translate: IommuTranslateFn;
  readonly disk: DiskCacheOptions;
  readonly ramBacking: RamBacking;
  /** Where the configuration and CPU frame grants are kept for a respawn; null: not kept. */
  readonly state: StateFile | null;
  /** Where the devices' interrupts go out (the transports publish Msi on it). */
  readonly bus: Pick<Bus, 'publish'>;
  /** A domain fault hit something (ServiceContext.faults.fired). */
  faultFired(kind: DomainFaultKind, detail: string): void;
}

export class L0Service implements NotifyFaults {
  readonly mem = new MachineMemory(BigInt(2 ** 30));
  readonly frames = new CpuFrames();
  readonly pci = new PciBus();
  readonly iotlb: Iotlb;
  readonly dmaLog = new DmaLog();
  readonly dma: DmaEngine;
  /** Domain faults armed against the devices' interrupts and doorbells. */
  readonly lostMsi = new Countdown();
  readonly lostDoorbell = new Countdown();
  private queue: Promise<unknown> = Promise.resolve();
  private config: L0ConfigureRequest | null = null;
  private readonly port: TransportPort;

  constructor(private readonly opts: L0ServiceOptions) {
    this.iotlb = new Iotlb(opts.metrics.iotlbHits, opts.metrics.iotlbMisses);
    this.dma = new DmaEngine(
      this.mem,
      this.iotlb,
      this.dmaLog,
      opts.metrics,
      new DmaTracer(opts.tracer),
      opts.translate,
    );
    this.port = { bus: opts.bus, metrics: opts.metrics, faults: this };
  }

  /** L0Configure: one at a time; RAM emptied, grants, IOTLB and DMA log dropped, devices rebuilt. */
  configure(req: L0ConfigureRequest): Promise<ReplyOf<typeof L0Configure>> {
    return this.serialized(async () => {
      const reply = await this.doConfigure(req, false);
      this.config = req;
      await this.persist();
      return reply;
    });
  }

  /**
   * A respawn after a crash: the crashed run's configuration again, with its
   * disk images and guest RAM as they were and its CPU frame grants; the
   * devices come up in reset state, as after power-on.
   */
  restore(saved: SavedL0State): Promise<ReplyOf<typeof L0Configure>> {
    return this.serialized(async () => {
      const config = {
        ...saved.config,
        devices: saved.config.devices.map((d) => ({ ...d, freshDisk: false })),
      };
      const reply = await this.doConfigure(config, true);
      for (const [domain, ranges] of Object.entries(saved.frames))
        this.frames.set(Number(domain), ranges);
      this.config = saved.config;
      return reply;
    });
  }

  /** CpuFrames: replaces a domain's grants, kept for a respawn before the reply goes out. */
  async setFrames(domain: number, ranges: readonly FrameRange[]): Promise<number> {
    const frames = this.frames.set(domain, ranges);
    await this.persist();
    return frames;
  }

  faultFired(kind: DomainFaultKind, detail: string): void {
    this.opts.faultFired(kind, detail);
  }

  /** NotifyFaults for the transports: the lose-msi domain fault. */
  msiLost(bdf: string, what: string): boolean {
    if (!this.lostMsi.hit()) return false;
    this.faultFired('lose-msi', `${bdf} ${what} not sent`);
    return true;
  }

  /** NotifyFaults for the transports: the lose-doorbell domain fault. */
  doorbellLost(bdf: string, queue: number): boolean {
    if (!this.lostDoorbell.hit()) return false;
    this.opts.metrics.notifiesDropped.inc({ reason: 'fault' });
    this.faultFired('lose-doorbell', `${bdf} queue ${queue} notify ignored`);
    return true;
  }

  private serialized<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.queue.then(fn);
    this.queue = run.catch(() => undefined);
    return run;
  }

  private async persist(): Promise<void> {
    if (!this.opts.state || !this.config) return;
    try {
      await this.opts.state.save({ config: this.config, frames: this.frames.export() });
    } catch (cause) {
      throw new L0Error('DISK_IO', `cannot save L0 state for a respawn: ${String(cause)}`, {
        cause,
      });
    }
  }

  private async doConfigure(
    req: L0ConfigureRequest,
    restored: boolean,
  ): Promise<ReplyOf<typeof L0Configure>> {
    const memslots = memslotsOf(req);
    req.devices.forEach((d, i) => checkDevice(d, i, req.devices, memslots));
    await this.shutdownDevices();
    const ramFile =
      this.opts.ramBacking === 'file'
        ? await RamFile.open(ramFilePath(this.opts.dataDir, this.opts.stack), !restored)
        : null;
    this.mem.reset(memslots, ramFile, restored);
    this.frames.clear();
    this.iotlb.clear();
    this.dmaLog.clear();
    const reply: ReplyOf<typeof L0Configure>['devices'] = [];
    for (const [i, setup] of req.devices.entries()) {
      const barBase = barBaseOf(i);
      const path = diskImagePath(this.opts.dataDir, this.opts.stack, setup.bdf);
      const disk = await DiskBackend.open(path, setup.diskBytes, setup.freshDisk, this.opts.disk);
      const model = new VirtioBlkModel(
        disk,
        serialOf(setup),
        setup.queueSizeMax,
        this.opts.metrics,
      );
      const dev = new VirtioDevice(setup.bdf, setup, model, {
        dma: this.dma,
        tracer: this.opts.tracer,
        metrics: this.opts.metrics,
      });
      if (setup.transport === 'mmio') {
        const irq = mmioIrqOf(i);
        const transport = new VirtioMmioTransport(
          dev,
          mmioBaseOf(i),
          irq,
          this.port,
          setup.mmioVersion,
        );
        this.pci.add({ dev, transport });
        reply.push({
          bdf: setup.bdf,
          bars: [],
          mmio: { addr: toHex(transport.base), bytes: VIRTIO_MMIO_WINDOW, irq },
        });
        continue;
      }
      const ringBar = ringBarOf(setup, i);
      const transport = new VirtioPciTransport(dev, barBase, this.port, ringBar);
      this.pci.add({ dev, transport });
      reply.push({
        bdf: setup.bdf,
        bars: [
          { index: VIRTIO_BAR_INDEX, addr: toHex(barBase), bytes: VIRTIO_BAR_SIZE },
          ...(ringBar
            ? [{ index: RING_BAR_INDEX, addr: toHex(ringBar.base), bytes: ringBar.bytes }]
            : []),
        ],
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

  /** Stops old devices: each disposes of itself (no more write-back, work settled, backend closed). */
  private async shutdownDevices(): Promise<void> {
    await Promise.all(this.pci.clear().map((fn) => fn.dev.dispose()));
  }

  /** The virtio-blk backends (for the write-cache gauge). */
  blkModels(): VirtioBlkModel[] {
    return this.pci
      .all()
      .flatMap((fn) => (fn.dev.model instanceof VirtioBlkModel ? [fn.dev.model] : []));
  }

  /** A clean stop (power-off): caches written back; nothing left for a respawn. */
  async close(): Promise<void> {
    await this.queue;
    await this.shutdownDevices();
    const ram = this.mem.ram.backing.file;
    this.mem.ram.clear();
    await this.opts.state?.remove();
    if (ram) await rm(ram, { force: true });
  }
}

function checkDevice(
  d: DeviceSetup,
  i: number,
  all: readonly DeviceSetup[],
  memslots: Memslots,
): void {
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
  const [base, bytes, what] =
    d.transport === 'mmio'
      ? [mmioBaseOf(i), VIRTIO_MMIO_WINDOW, 'virtio-mmio window']
      : [barBaseOf(i), VIRTIO_BAR_SIZE, 'BAR'];
  if (memslots.overlapsRam(base, bytes))
    throw bad(`its ${what} at ${toHex(base)} would overlap RAM of the memory map`);
  const ring = ringBarOf(d, i);
  if (ring && d.transport !== 'pci') throw bad('ring memory needs the PCI transport (a BAR)');
  if (ring && memslots.overlapsRam(ring.base, ring.bytes))
    throw bad(`its ring memory BAR at ${toHex(ring.base)} would overlap RAM of the memory map`);
}

/** Device i's ring memory BAR (a power of two of at least a page), when it asks for one. */
function ringBarOf(d: DeviceSetup, i: number): MemoryBar | null {
  if (d.ringMemoryBytes === undefined) return null;
  let bytes = 4096;
  while (bytes < d.ringMemoryBytes) bytes *= 2;
  return { base: FIRST_RING_BAR_BASE + BigInt(i * RING_BAR_SLOT), bytes };
}

/** Where device i's BAR goes (in the pc layout's PCI hole). */
const barBaseOf = (i: number): bigint => FIRST_BAR_BASE + BigInt(i * VIRTIO_BAR_SIZE);

/** Where device i's virtio-mmio window goes, and its interrupt line (QEMU microvm's layout: 0xfeb00000, GSI 5 on). */
const mmioBaseOf = (i: number): bigint => FIRST_MMIO_BASE + BigInt(i * VIRTIO_MMIO_WINDOW);
const mmioIrqOf = (i: number): number => FIRST_MMIO_IRQ + i;
