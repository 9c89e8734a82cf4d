// The transport-independent core of one emulated virtio device: status and
// feature negotiation, its queues, NEEDS_RESET, its epoch and its disposal.
// A Transport (virtio-pci today) owns the registers and raises the
// interrupts; a DeviceModel (virtio-blk today) serves the chains; the queue
// processor between them reaches memory through the DMA engine.
import { toHex } from '@nestlab/addr';
import type { DeviceSetup, DeviceState, IommuAttachment, ReplyOf } from '@nestlab/protocol';
import { deviceToken } from '@nestlab/protocol';
import { DeviceQueue, FeatureSet, VIRTIO_F } from '@nestlab/virtio';
import type { RamBackingCheck, VirtioError } from '@nestlab/virtio';
import type { Tracer } from '@opentelemetry/api';
import type { DmaEngine } from '../dma/dma-engine.js';
import type { L0Metrics } from '../metrics.js';
import { forgetChainTraces } from './chain-traces.js';
import { DeviceStatus } from './device-status.js';
import { QueueProcessor, type DeviceModel, type QueueOwner } from './queue-processor.js';
import type { DeviceInterrupts } from './transport.js';

export interface VirtioDeviceDeps {
  readonly dma: DmaEngine;
  readonly tracer: Tracer;
  readonly metrics: L0Metrics;
}

const NO_INTERRUPTS: DeviceInterrupts = { queue: () => undefined, config: () => undefined };

export class VirtioDevice implements QueueOwner {
  readonly token: string;
  readonly iommu: IommuAttachment;
  readonly status: DeviceStatus;
  readonly queues: DeviceQueue[];
  /** Bumped on every reset and at disposal: work started before it must not write back. */
  epoch = 0;
  disposed = false;
  interrupts: DeviceInterrupts = NO_INTERRUPTS;
  /** The device's own memory at a bus address (a card's ring BAR), else null: set by the transport. */
  ownMemory: (addr: bigint, len: number) => Uint8Array | null = () => null;
  private readonly processor: QueueProcessor;
  private readonly ramBacked: RamBackingCheck;

  constructor(
    readonly bdf: string,
    setup: DeviceSetup,
    readonly model: DeviceModel,
    private readonly deps: VirtioDeviceDeps,
  ) {
    this.token = deviceToken(bdf);
    this.iommu = setup.iommu;
    this.status = new DeviceStatus(FeatureSet.parseHex(setup.offer), setup.requireAccessPlatform);
    this.queues = [new DeviceQueue(0, setup.queueSizeMax)];
    this.processor = new QueueProcessor(this, deps.dma, deps.tracer, deps.metrics);
    this.ramBacked = deps.dma.ramBacked(this);
  }

  accessPlatform(): boolean {
    return this.status.has(VIRTIO_F.ACCESS_PLATFORM);
  }

  /** A queue notification: resolves once the queue has drained (see QueueProcessor). */
  notify(queue: number): Promise<void> {
    return this.processor.notify(queue);
  }

  /** Device reset (spec 2.4): status, features and queues back to power-on. */
  reset(): void {
    this.epoch++;
    this.status.reset();
    for (const q of this.queues) q.reset();
    // Chains the driver named for the old rings will never be popped.
    forgetChainTraces(this);
  }

  /** queue_enable: the queue's checks, the RAM backing of its areas among them. */
  enableQueue(q: DeviceQueue): void {
    const r = q.enable(this.ramBacked);
    if (!r.ok) this.fail(r.error);
  }

  /** A hostile or broken ring: NEEDS_RESET, the reason kept, a config interrupt (QEMU virtio_error). */
  fail(error: VirtioError | { code: string; message: string }): void {
    if (!this.status.markBroken({ code: error.code, message: error.message })) return;
    this.deps.metrics.ringErrors.inc({ code: error.code });
    this.interrupts.config();
  }

  get brokenReason(): string | null {
    const b = this.status.broken;
    return b ? `${b.code}: ${b.message}` : null;
  }

  /** Power-off: no more write-back, in-flight work settled, the backend closed. */
  async dispose(): Promise<void> {
    this.disposed = true;
    this.epoch++;
    this.interrupts = NO_INTERRUPTS;
    forgetChainTraces(this);
    await this.processor.idle();
    await this.model.close();
  }

  state(): ReplyOf<typeof DeviceState> {
    return {
      status: this.status.status,
      offered: this.status.offer.toHex(),
      negotiated: this.status.negotiated.toHex(),
      queues: this.queues.map((q) => ({
        index: q.index,
        size: q.size,
        enabled: q.ready,
        desc: toHex(q.desc),
        driver: toHex(q.driver),
        device: toHex(q.device),
        lastAvail: q.nextAvail,
        used: q.nextUsed,
      })),
      brokenReason: this.brokenReason,
      requests: { ...this.model.requests },
    };
  }

  /** /state view: the reply plus feature names. */
  inspect() {
    return {
      bdf: this.bdf,
      iommu: this.iommu,
      ...this.state(),
      offeredNames: this.status.offer.names(),
      negotiatedNames: this.status.negotiated.names(),
      driverFeatures: this.status.driverFeatures.toHex(),
      featuresRefusal: this.status.refusal,
      ...this.model.inspect(),
    };
  }
}
