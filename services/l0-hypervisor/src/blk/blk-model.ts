// virtio-blk as a DeviceModel: the disk image behind the queue, the request
// parser in front of it (executeBlkRequest, below), the request counters.
import type { Attributes } from '@opentelemetry/api';
import { toHex } from '@nestlab/addr';
import {
  SECTOR_SIZE,
  VIRTIO_BLK_F,
  VIRTIO_BLK_ID_BYTES,
  VIRTIO_BLK_S,
  VIRTIO_BLK_T,
  VIRTIO_ID,
  VirtioError,
  checkBlkDirection,
  decodeBlkHeader,
  splitBlkRequest,
} from '@nestlab/virtio';
import type { DescChain, Segment, VirtioBlkStatus } from '@nestlab/virtio';
import type { L0Metrics } from '../metrics.js';
import { TurnCounts } from '../turn-counts.js';
import type {
  BufferIo,
  DeviceModel,
  RequestCounts,
  ServeContext,
  ServeOutcome,
} from '../virtio/queue-processor.js';
import { DEVICE_ATTR } from '@nestlab/telemetry';
import { blkConfigBytes } from './blk-config.js';
import type { DiskBackend } from './disk-backend.js';

/** PCI_CLASS_STORAGE_SCSI, as QEMU's virtio-blk-pci reports (virtio_blk_pci_class_init). */
const PCI_CLASS_STORAGE_SCSI = 0x010000;
const BLK_TYPE_NAMES: Record<number, string> = { 0: 'in', 1: 'out', 4: 'flush', 8: 'get_id' };

/** Where unnamed request types are counted (no VIRTIO_BLK_T_* is this). */
const OTHER_TYPE = 0xffff;

type Done = ServeOutcome & { kind: 'done' };

/**
 * A served request: what the used element reports, and what the counters and
 * the request span need of it. Its span attributes are built only when a
 * recording span asks (an untraced I/O pays for no hex sector).
 */
class BlkDone implements Done {
  readonly kind = 'done';
  constructor(
    readonly written: number,
    readonly type: number,
    readonly status: number,
    private readonly sector: bigint,
  ) {}
  get attributes(): Attributes {
    return {
      [DEVICE_ATTR.blkType]: BLK_TYPE_NAMES[this.type] ?? String(this.type),
      [DEVICE_ATTR.blkSector]: toHex(this.sector),
      [DEVICE_ATTR.blkStatus]: this.status,
    };
  }
}

export class VirtioBlkModel implements DeviceModel {
  readonly deviceId = VIRTIO_ID.BLOCK;
  readonly pciClass = PCI_CLASS_STORAGE_SCSI;
  readonly config: Uint8Array;
  readonly requests: RequestCounts = { done: 0, ioerr: 0, unsupp: 0 };
  /** Published requests by type * 256 + status (an unnamed type as one), counted at the end of the turn. */
  private readonly published: TurnCounts<number>;

  constructor(
    readonly disk: DiskBackend,
    /** What GET_ID answers. */
    readonly serial: string,
    queueSizeMax: number,
    metrics: L0Metrics,
  ) {
    this.config = blkConfigBytes(disk.bytes, queueSizeMax);
    this.published = new TurnCounts((key, n) =>
      metrics.blkRequests.inc(
        { type: BLK_TYPE_NAMES[Math.floor(key / 256)] ?? 'other', status: String(key % 256) },
        n,
      ),
    );
  }

  async serve(chain: DescChain, io: BufferIo, ctx: ServeContext): Promise<ServeOutcome> {
    const out = await executeBlkRequest(chain, io, this.disk, this.serial, {
      // No VIRTIO_BLK_F_FLUSH: a write must be durable when it completes.
      writeThrough: !ctx.negotiated.has(VIRTIO_BLK_F.FLUSH),
      before: () => ctx.before,
    });
    if (out.kind === 'broken') return out;
    return new BlkDone(out.written, out.type, out.status, out.sector);
  }

  completed(outcome: Done): void {
    if (!(outcome instanceof BlkDone)) return;
    const s = outcome;
    const r = this.requests;
    if (s.status === VIRTIO_BLK_S.OK) r.done++;
    else if (s.status === VIRTIO_BLK_S.IOERR) r.ioerr++;
    else r.unsupp++;
    const type = BLK_TYPE_NAMES[s.type] === undefined ? OTHER_TYPE : s.type;
    this.published.add(type * 256 + s.status);
  }

  inspect(): Record<string, unknown> {
    return { disk: { path: this.disk.path, bytes: this.disk.bytes }, serial: this.serial };
  }

  close(): Promise<void> {
    return this.disk.close();
  }
}

// One virtio-blk request (spec 5.2.6) on top of a walked chain. The chain's
// shape was checked by the walker; here the header, data and status are cut
// out by byte position (splitBlkRequest) and served from the disk image.

/** A bound on one request's data, so a hostile length cannot make us allocate gigabytes. */
const MAX_REQUEST_BYTES = 4 << 20;

type BlkOutcome =
  | {
      kind: 'done';
      type: number;
      sector: bigint;
      status: VirtioBlkStatus;
      /** Bytes written into the chain's writable buffers (used.len). */
      written: number;
    }
  /** The request cannot even be answered: the device goes NEEDS_RESET (QEMU virtio_error). */
  | { kind: 'broken'; error: VirtioError };

const broken = (code: 'BAD_BLK_REQUEST' | 'MEMORY_UNREACHABLE', msg: string): BlkOutcome => ({
  kind: 'broken',
  error: new VirtioError(code, msg),
});

/** How a request relates to the others served with it. */
interface RequestOrder {
  /** No VIRTIO_BLK_F_FLUSH negotiated: a write must be durable when it completes. */
  readonly writeThrough?: boolean;
  /**
   * Settles when the requests taken from the ring before this one have: a
   * FLUSH covers every write made available before it, even one still
   * gathering its data (QEMU virtio_blk_handle_flush posts them first).
   */
  readonly before?: () => Promise<unknown>;
}

async function executeBlkRequest(
  chain: DescChain,
  io: BufferIo,
  disk: DiskBackend,
  serial: string,
  order: RequestOrder = {},
): Promise<BlkOutcome> {
  const layout = splitBlkRequest(chain.buffers);
  if (!layout.ok) return { kind: 'broken', error: layout.error };
  const { header, data, dataLen, status } = layout.value;

  const headerBytes = await gather(io, header, 16);
  if (!headerBytes) return broken('MEMORY_UNREACHABLE', 'cannot read the blk request header');
  const h = decodeBlkHeader(headerBytes);
  if (!h.ok) return { kind: 'broken', error: h.error };
  const { type, sector } = h.value;

  let result: { status: VirtioBlkStatus; written: number };
  if (!checkBlkDirection(type, data).ok) {
    // Data in the wrong direction: refuse this request, keep the device usable.
    result = { status: VIRTIO_BLK_S.IOERR, written: 0 };
  } else {
    result = await serve(type, sector, data, dataLen, io, disk, serial, order);
  }
  if (!(await io.write(status, Uint8Array.of(result.status)))) {
    return broken('MEMORY_UNREACHABLE', 'cannot write the blk status byte');
  }
  return { kind: 'done', type, sector, status: result.status, written: result.written + 1 };
}

async function serve(
  type: number,
  sector: bigint,
  data: readonly Segment[],
  dataLen: number,
  io: BufferIo,
  disk: DiskBackend,
  serial: string,
  order: RequestOrder,
): Promise<{ status: VirtioBlkStatus; written: number }> {
  const ioerr = { status: VIRTIO_BLK_S.IOERR, written: 0 } as const;
  try {
    switch (type) {
      case VIRTIO_BLK_T.IN:
      case VIRTIO_BLK_T.OUT: {
        const offset = inRange(sector, dataLen, disk.bytes);
        if (offset === null) return ioerr;
        if (type === VIRTIO_BLK_T.OUT) {
          const bytes = await gather(io, data, dataLen);
          if (!bytes) return ioerr;
          await disk.write(offset, bytes, order.writeThrough ?? false);
          return { status: VIRTIO_BLK_S.OK, written: 0 };
        }
        const bytes = await disk.read(offset, dataLen);
        const n = await scatter(io, data, bytes);
        return n === dataLen ? { status: VIRTIO_BLK_S.OK, written: n } : { ...ioerr, written: n };
      }
      case VIRTIO_BLK_T.FLUSH:
        await order.before?.();
        await disk.flush();
        return { status: VIRTIO_BLK_S.OK, written: 0 };
      case VIRTIO_BLK_T.GET_ID: {
        // QEMU virtio_blk_handle_request: the serial, NUL-padded, cut to the buffer.
        const id = new Uint8Array(VIRTIO_BLK_ID_BYTES);
        id.set(new TextEncoder().encode(serial).subarray(0, VIRTIO_BLK_ID_BYTES));
        const want = Math.min(dataLen, VIRTIO_BLK_ID_BYTES);
        const n = await scatter(io, data, id.subarray(0, want));
        return n === want ? { status: VIRTIO_BLK_S.OK, written: n } : { ...ioerr, written: n };
      }
      default:
        return { status: VIRTIO_BLK_S.UNSUPP, written: 0 };
    }
  } catch {
    // Disk errors reach the driver as IOERR, as a failing host disk would.
    return ioerr;
  }
}

/** Byte offset of the request, or null when it is not whole sectors inside the disk (QEMU virtio_blk_sect_range_ok). */
function inRange(sector: bigint, len: number, diskBytes: number): number | null {
  if (len % SECTOR_SIZE !== 0 || len > MAX_REQUEST_BYTES) return null;
  const start = sector * BigInt(SECTOR_SIZE);
  if (start + BigInt(len) > BigInt(diskBytes)) return null;
  return Number(start);
}

async function gather(
  io: BufferIo,
  segs: readonly Segment[],
  len: number,
): Promise<Uint8Array | null> {
  if (len > MAX_REQUEST_BYTES) return null;
  // One segment (a 4 KiB write's data): the DMA read's own bytes, not a 4 KiB copy.
  if (segs.length === 1 && segs[0]!.len === len) return io.read(segs[0]!.addr, len);
  const out = new Uint8Array(len);
  let at = 0;
  for (const s of segs) {
    const bytes = await io.read(s.addr, s.len);
    if (!bytes) return null;
    out.set(bytes, at);
    at += s.len;
  }
  return out;
}

/** Writes bytes across the segments in order; returns how many landed. */
async function scatter(io: BufferIo, segs: readonly Segment[], bytes: Uint8Array): Promise<number> {
  let at = 0;
  for (const s of segs) {
    if (at >= bytes.byteLength) break;
    const n = Math.min(s.len, bytes.byteLength - at);
    if (!(await io.write(s.addr, bytes.subarray(at, at + n)))) return at;
    at += n;
  }
  return at;
}
