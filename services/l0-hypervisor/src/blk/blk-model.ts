// virtio-blk as a DeviceModel: the disk image behind the queue, the request
// parser in front of it, the request counters.
import { toHex } from '@nestlab/addr';
import { VIRTIO_BLK_F, VIRTIO_BLK_S, VIRTIO_ID } from '@nestlab/virtio';
import type { DescChain } from '@nestlab/virtio';
import type { L0Metrics } from '../metrics.js';
import type {
  BufferIo,
  DeviceModel,
  RequestCounts,
  ServeContext,
  ServeOutcome,
} from '../virtio/device-model.js';
import { DEVICE_ATTR } from '@nestlab/telemetry';
import { blkConfigBytes } from './blk-config.js';
import type { DiskBackend } from './disk-backend.js';
import { executeBlkRequest } from './request.js';

/** PCI_CLASS_STORAGE_SCSI, as QEMU's virtio-blk-pci reports (virtio_blk_pci_class_init). */
const PCI_CLASS_STORAGE_SCSI = 0x010000;
const BLK_TYPE_NAMES: Record<number, string> = { 0: 'in', 1: 'out', 4: 'flush', 8: 'get_id' };

type Done = ServeOutcome & { kind: 'done' };

export class VirtioBlkModel implements DeviceModel {
  readonly deviceId = VIRTIO_ID.BLOCK;
  readonly pciClass = PCI_CLASS_STORAGE_SCSI;
  readonly config: Uint8Array;
  readonly requests: RequestCounts = { done: 0, ioerr: 0, unsupp: 0 };
  /** What each served outcome was, until it is published (for the counters). */
  private readonly served = new WeakMap<Done, { type: number; status: number }>();

  constructor(
    readonly disk: DiskBackend,
    /** What GET_ID answers. */
    readonly serial: string,
    queueSizeMax: number,
    private readonly metrics: L0Metrics,
  ) {
    this.config = blkConfigBytes(disk.bytes, queueSizeMax);
  }

  async serve(chain: DescChain, io: BufferIo, ctx: ServeContext): Promise<ServeOutcome> {
    const out = await executeBlkRequest(chain, io, this.disk, this.serial, {
      // No VIRTIO_BLK_F_FLUSH: a write must be durable when it completes.
      writeThrough: !ctx.negotiated.has(VIRTIO_BLK_F.FLUSH),
      before: ctx.before,
    });
    if (out.kind === 'broken') return out;
    const done: Done = {
      kind: 'done',
      written: out.written,
      attributes: {
        [DEVICE_ATTR.blkType]: BLK_TYPE_NAMES[out.type] ?? String(out.type),
        [DEVICE_ATTR.blkSector]: toHex(out.sector),
        [DEVICE_ATTR.blkStatus]: out.status,
      },
    };
    this.served.set(done, { type: out.type, status: out.status });
    return done;
  }

  completed(outcome: Done): void {
    const s = this.served.get(outcome);
    if (!s) return;
    const r = this.requests;
    if (s.status === VIRTIO_BLK_S.OK) r.done++;
    else if (s.status === VIRTIO_BLK_S.IOERR) r.ioerr++;
    else r.unsupp++;
    this.metrics.blkRequests.inc({
      type: BLK_TYPE_NAMES[s.type] ?? 'other',
      status: String(s.status),
    });
  }

  inspect(): Record<string, unknown> {
    return { disk: { path: this.disk.path, bytes: this.disk.bytes }, serial: this.serial };
  }

  close(): Promise<void> {
    return this.disk.close();
  }
}
