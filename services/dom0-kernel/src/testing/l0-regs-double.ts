// A test double of L0's register file and RAM only (no device model): it
// answers PciConfig for one modern virtio-blk function and MemAccess for RAM
// (sparse, zero-filled) and the BAR's common config registers, recording
// every op. Tests play the device themselves when they need one.
import { MemAccess, PciConfig } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import { FeatureSet, VIRTIO_F, VIRTIO_PCI_COMMON_CFG as C, VIRTIO_STATUS } from '@nestlab/virtio';
import { SparseTestMemory } from '@nestlab/virtio/testing';

export const DOUBLE_BDF = '0000:00:04.0';
export const BAR_BASE = 0xfe00_0000n;
const BAR_SIZE = 0x4000n;

export interface RecordedOp {
  op: 'read' | 'write';
  addr: bigint;
  len: number;
  mmio: boolean;
  data?: Uint8Array;
}

export interface L0DoubleOptions {
  offer: FeatureSet;
  requireAccessPlatform?: boolean;
  queueSizeMax?: number;
  capacitySectors?: number;
}

function configSpace(): Uint8Array {
  const c = new Uint8Array(256);
  const v = new DataView(c.buffer);
  v.setUint16(0, 0x1af4, true);
  v.setUint16(2, 0x1042, true);
  v.setUint16(6, 0x10, true); // capability list
  v.setUint32(0x20, 0xfe00_0004, true); // BAR4: 64-bit memory
  v.setUint32(0x24, 0, true);
  c[0x34] = 0x40;
  const cap = (at: number, next: number, type: number, offset: number, len = 16) => {
    c[at] = 0x09;
    c[at + 1] = next;
    c[at + 2] = len;
    c[at + 3] = type;
    c[at + 4] = 4;
    v.setUint32(at + 8, offset, true);
    v.setUint32(at + 12, 0x1000, true);
  };
  cap(0x40, 0x50, 1, 0x0000);
  cap(0x50, 0x68, 2, 0x3000, 20);
  v.setUint32(0x50 + 16, 4, true);
  cap(0x68, 0x78, 3, 0x1000);
  cap(0x78, 0x88, 4, 0x2000);
  c[0x88] = 0x11; // MSI-X, table size 2
  c[0x89] = 0;
  v.setUint16(0x8a, 1, true);
  return c;
}

export class L0RegsDouble {
  readonly ram = new SparseTestMemory({ zeroFill: true });
  readonly ops: RecordedOp[] = [];
  readonly batches: RecordedOp[][] = [];
  readonly notifies: number[] = [];
  readonly config = configSpace();
  readonly regs = new Map<string, number>();
  driverFeatures = [0, 0];
  status = 0;
  queue = { size: 0, desc: 0n, driver: 0n, device: 0n, msix: 0xffff, enable: 0 };
  configMsix = 0xffff;

  constructor(private readonly o: L0DoubleOptions) {
    this.queue.size = o.queueSizeMax ?? 256;
  }

  serve(bus: Bus): void {
    bus.handle(PciConfig, ({ head }) => {
      if (head.bdf !== DOUBLE_BDF) return { body: { value: 0xffffffff } };
      const v = new DataView(this.config.buffer);
      if (head.op === 'write') {
        for (let i = 0; i < head.size; i++)
          this.config[head.offset + i] = ((head.value ?? 0) >>> (8 * i)) & 0xff;
        return { body: { value: 0 } };
      }
      const value =
        head.size === 1
          ? v.getUint8(head.offset)
          : head.size === 2
            ? v.getUint16(head.offset, true)
            : v.getUint32(head.offset, true);
      return { body: { value } };
    });
    bus.handle(MemAccess, ({ head, data }) => {
      const batch: RecordedOp[] = [];
      const out: Uint8Array[] = [];
      let at = 0;
      for (const op of head.ops) {
        const addr = BigInt(op.addr);
        const mmio = addr >= BAR_BASE && addr < BAR_BASE + BAR_SIZE;
        const rec: RecordedOp = { op: op.op, addr, len: op.len, mmio };
        if (op.op === 'write') {
          rec.data = new Uint8Array(data.subarray(at, at + op.len));
          at += op.len;
          if (mmio) this.mmioWrite(Number(addr - BAR_BASE), rec.data);
          else this.ram.write(addr, rec.data);
        } else {
          out.push(
            mmio ? this.mmioRead(Number(addr - BAR_BASE), op.len) : this.ram.readSync(addr, op.len),
          );
        }
        batch.push(rec);
        this.ops.push(rec);
      }
      this.batches.push(batch);
      const bytes = new Uint8Array(out.reduce((n, b) => n + b.byteLength, 0));
      let o = 0;
      for (const b of out) {
        bytes.set(b, o);
        o += b.byteLength;
      }
      return { body: { readLens: out.map((b) => b.byteLength) }, data: bytes };
    });
  }

  private mmioRead(off: number, len: number): Uint8Array {
    let value = 0n;
    if (off >= 0x2000 && off < 0x2008)
      value = BigInt(this.o.capacitySectors ?? 1 << 20) >> BigInt(8 * (off - 0x2000));
    else {
      const f =
        Object.entries(C).find(([, r]) => r.offset === off) ??
        Object.entries(C).find(([, r]) => r.width === 8 && r.offset + 4 === off);
      const name = f?.[0];
      const sel = this.regs.get('device_feature_select') ?? 0;
      const q = this.queue;
      const v: Record<string, number | bigint> = {
        device_feature: this.o.offer.word(sel),
        device_status: this.status,
        config_msix_vector: this.configMsix,
        num_queues: 1,
        queue_size: q.size,
        queue_msix_vector: q.msix,
        queue_enable: q.enable,
        queue_notify_off: 0,
        queue_desc: q.desc,
        queue_driver: q.driver,
        queue_device: q.device,
      };
      value = name === undefined ? 0n : BigInt(v[name] ?? this.regs.get(name) ?? 0);
      if (f && f[1].offset + 4 === off) value >>= 32n;
    }
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) out[i] = Number((value >> BigInt(8 * i)) & 0xffn);
    return out;
  }

  private mmioWrite(off: number, bytes: Uint8Array): void {
    let value = 0;
    for (let i = bytes.byteLength - 1; i >= 0; i--) value = value * 256 + bytes[i]!;
    if (off === 0x3000) {
      this.notifies.push(value);
      return;
    }
    const f =
      Object.entries(C).find(([, r]) => r.offset === off) ??
      Object.entries(C).find(([, r]) => r.width === 8 && r.offset + 4 === off);
    if (!f) return;
    const [name, r] = f;
    const high = r.width === 8 && r.offset + 4 === off;
    const set64 = (old: bigint) =>
      high ? (old & 0xffff_ffffn) | (BigInt(value) << 32n) : (old & ~0xffff_ffffn) | BigInt(value);
    switch (name) {
      case 'device_status':
        this.setStatus(value);
        return;
      case 'driver_feature':
        this.driverFeatures[this.regs.get('driver_feature_select') === 1 ? 1 : 0] = value;
        return;
      case 'config_msix_vector':
        this.configMsix = value;
        return;
      case 'queue_size':
        this.queue.size = value;
        return;
      case 'queue_msix_vector':
        this.queue.msix = value;
        return;
      case 'queue_enable':
        this.queue.enable = value;
        return;
      case 'queue_desc':
      case 'queue_driver':
      case 'queue_device': {
        const k = name === 'queue_desc' ? 'desc' : name === 'queue_driver' ? 'driver' : 'device';
        this.queue[k] = set64(this.queue[k]);
        return;
      }
      default:
        this.regs.set(name, value);
    }
  }

  get accepted(): FeatureSet {
    return FeatureSet.fromWords(this.driverFeatures[0]!, this.driverFeatures[1]!);
  }

  /** QEMU virtio_validate_features with iommu_platform=on refuses FEATURES_OK without bit 33. */
  private setStatus(value: number): void {
    if (value === 0) {
      this.status = 0;
      this.driverFeatures = [0, 0];
      return;
    }
    if (value & VIRTIO_STATUS.FEATURES_OK && !(this.status & VIRTIO_STATUS.FEATURES_OK)) {
      const refuse = this.o.requireAccessPlatform && !this.accepted.has(VIRTIO_F.ACCESS_PLATFORM);
      if (refuse || !this.accepted.isSubsetOf(this.o.offer)) value &= ~VIRTIO_STATUS.FEATURES_OK;
    }
    this.status = value;
  }

  /** Ops that touched RAM (anything but the BAR): DMA-able memory the driver wrote or read. */
  ramOps(): RecordedOp[] {
    return this.ops.filter((o) => !o.mmio);
  }
}
