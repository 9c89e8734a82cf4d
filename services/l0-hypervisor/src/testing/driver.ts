// The driver side for device tests: PCI discovery through the capability
// list or a virtio-mmio window named by the platform, register access and
// ring images written through MemAccess (as Xen, unless another requester is
// given). Not the dom0 driver: just enough of one. Register access goes by
// common cfg field names on both transports, so one suite runs against both.
import { PAGE_SHIFT, PAGE_SIZE, toHex } from '@nestlab/addr';
import { DeviceState, MemAccess, PciConfig } from '@nestlab/protocol';
import type { ReplyOf, Requester } from '@nestlab/protocol';
import {
  FeatureSet,
  MMIO_FOR_COMMON_FIELD,
  PCI_CAP_ID_VNDR,
  VIRTIO_MMIO,
  VIRTIO_MMIO_INT,
  VIRTIO_MMIO_MAGIC,
  VIRTIO_MMIO_VERSION_MODERN,
  PCI_CFG,
  VIRTIO_PCI_CAP,
  VIRTIO_PCI_COMMON_CFG as F,
  VIRTIO_STATUS,
  decodeU16,
  decodeUsedElem,
  usedElemAddr,
  usedIdxAddr,
} from '@nestlab/virtio';
import type { VirtioMmioRegister, VirtioPciCommonField, VringUsedElem } from '@nestlab/virtio';
import type { RingImage, TestMemory } from '@nestlab/virtio/testing';
import type { L0Client } from './harness.js';
import { legacyNegotiateOps, legacyStartOps } from './mmio-legacy-ops.js';

/** A local mirror of what the test wrote; writes queue up until the next MemAccess. */
export class RemoteMemory implements TestMemory {
  private readonly pages = new Map<number, Uint8Array>();
  pending: { addr: bigint; bytes: Uint8Array }[] = [];

  write(addr: bigint, bytes: Uint8Array): void {
    this.pending.push({ addr, bytes: bytes.slice() });
    for (let i = 0; i < bytes.byteLength; i++) {
      const a = addr + BigInt(i);
      const page = Number(a >> BigInt(PAGE_SHIFT));
      let p = this.pages.get(page);
      if (!p) this.pages.set(page, (p = new Uint8Array(PAGE_SIZE)));
      p[Number(a & BigInt(PAGE_SIZE - 1))] = bytes[i] ?? 0;
    }
  }

  readSync(addr: bigint, len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let i = 0; i < len; i++) {
      const a = addr + BigInt(i);
      out[i] =
        this.pages.get(Number(a >> BigInt(PAGE_SHIFT)))?.[Number(a & BigInt(PAGE_SIZE - 1))] ?? 0;
    }
    return out;
  }
}

export interface Op {
  op: 'read' | 'write';
  addr: bigint;
  len?: number;
  bytes?: Uint8Array;
}

export interface VirtioLayout {
  bar: bigint;
  common: number;
  isr: number;
  device: number;
  notify: number;
  multiplier: number;
  caps: { at: number; type: number; bar: number; offset: number; length: number }[];
}

export const le = (value: number | bigint, len: number): Uint8Array => {
  const out = new Uint8Array(len);
  let v = BigInt(value);
  for (let i = 0; i < len; i++, v >>= 8n) out[i] = Number(v & 0xffn);
  return out;
};
function mmioField(field: VirtioPciCommonField) {
  if (!(field in MMIO_FOR_COMMON_FIELD)) throw new Error(`virtio-mmio has no ${field}`);
  return MMIO_FOR_COMMON_FIELD[field as keyof typeof MMIO_FOR_COMMON_FIELD];
}

const fromLe = (b: Uint8Array): bigint => b.reduceRight((acc, x) => (acc << 8n) | BigInt(x), 0n);

/** Where the device is: on PCI (found through config space) or a virtio-mmio window and line. */
export type DeviceAt =
  | { kind: 'pci' }
  /** `legacy`: a version 1 device (mmio-legacy-ops.ts). */
  | { kind: 'mmio'; base: bigint; irq: number; legacy?: boolean };
export const ON_PCI: DeviceAt = { kind: 'pci' };

/** PCI: vector 0 config, 1 queue (what start() programs); mmio: one line for both. */
export const interruptsOf = (at: DeviceAt): { config: number; queue: number } =>
  at.kind === 'pci' ? { config: 0, queue: 1 } : { config: at.irq, queue: at.irq };

export class TestDriver {
  readonly mem = new RemoteMemory();
  layout: VirtioLayout | undefined;

  constructor(
    readonly h: L0Client,
    readonly bdf = '0000:00:04.0',
    readonly requester: Requester = { kind: 'xen' },
    readonly at: DeviceAt = ON_PCI,
  ) {}

  /** The interrupt numbers L0 publishes for this device's config and queue interrupts. */
  get irqs(): { config: number; queue: number } {
    return interruptsOf(this.at);
  }

  async cfg(offset: number, size: 1 | 2 | 4, value?: number): Promise<number> {
    const r = await this.h.request(PciConfig, {
      bdf: this.bdf,
      op: value === undefined ? 'read' : 'write',
      offset,
      size,
      ...(value === undefined ? {} : { value }),
    });
    return r.head.value;
  }

  /** Walks the capability list from 0x34 (spec 4.1.4) and reads BAR 4/5; on mmio checks MagicValue and Version. */
  async discover(): Promise<VirtioLayout | undefined> {
    if (this.at.kind === 'mmio') {
      const magic = Number(fromLe(await this.read(this.mmioAddr('MAGIC_VALUE'), 4)));
      const version = Number(fromLe(await this.read(this.mmioAddr('VERSION'), 4)));
      const expected = this.at.legacy ? 1 : VIRTIO_MMIO_VERSION_MODERN;
      if (magic !== VIRTIO_MMIO_MAGIC || version !== expected)
        throw new Error(`no virtio-mmio v${expected} device at ${toHex(this.at.base)}`);
      return undefined;
    }
    return this.discoverPci();
  }

  async discoverPci(): Promise<VirtioLayout> {
    const caps: VirtioLayout['caps'] = [];
    let multiplier = 0;
    for (let at = await this.cfg(PCI_CFG.CAPABILITY_LIST, 1), n = 0; at !== 0 && n < 48; n++) {
      const id = await this.cfg(at, 1);
      if (id === PCI_CAP_ID_VNDR) {
        const type = await this.cfg(at + 3, 1);
        caps.push({
          at,
          type,
          bar: await this.cfg(at + 4, 1),
          offset: await this.cfg(at + 8, 4),
          length: await this.cfg(at + 12, 4),
        });
        if (type === VIRTIO_PCI_CAP.NOTIFY_CFG) multiplier = await this.cfg(at + 16, 4);
      }
      at = await this.cfg(at + 1, 1);
    }
    const find = (t: number) => caps.find((c) => c.type === t)?.offset ?? -1;
    const lo = await this.cfg(PCI_CFG.BAR0 + 16, 4);
    const hi = await this.cfg(PCI_CFG.BAR0 + 20, 4);
    this.layout = {
      bar: (BigInt(hi) << 32n) | BigInt((lo & ~0xf) >>> 0),
      common: find(VIRTIO_PCI_CAP.COMMON_CFG),
      isr: find(VIRTIO_PCI_CAP.ISR_CFG),
      device: find(VIRTIO_PCI_CAP.DEVICE_CFG),
      notify: find(VIRTIO_PCI_CAP.NOTIFY_CFG),
      multiplier,
      caps,
    };
    return this.layout;
  }

  private get l(): VirtioLayout {
    if (!this.layout) throw new Error('discover() first');
    return this.layout;
  }

  /** One MemAccess; returns each read's bytes. */
  async access(ops: Op[]): Promise<Uint8Array[]> {
    const data = ops.flatMap((o) => (o.op === 'write' && o.bytes ? [o.bytes] : []));
    const total = data.reduce((n, b) => n + b.byteLength, 0);
    const buf = new Uint8Array(total);
    data.reduce((at, b) => (buf.set(b, at), at + b.byteLength), 0);
    const r = await this.h.request(
      MemAccess,
      {
        requester: this.requester,
        // A read after a kick in the same message is a poll: it waits for the drain.
        afterDoorbell: 'drained',
        ops: ops.map((o) => ({
          op: o.op,
          addr: toHex(o.addr),
          len: o.bytes?.byteLength ?? o.len ?? 0,
        })),
      },
      { data: buf },
    );
    const out: Uint8Array[] = [];
    let at = 0;
    for (const n of r.head.readLens) {
      out.push(Uint8Array.from(r.data.subarray(at, at + n)));
      at += n;
    }
    return out;
  }

  async read(addr: bigint, len: number): Promise<Uint8Array> {
    const [b] = await this.access([{ op: 'read', addr, len }]);
    return b ?? new Uint8Array();
  }

  private mmioAddr(reg: VirtioMmioRegister): bigint {
    if (this.at.kind !== 'mmio') throw new Error('not a virtio-mmio device');
    return this.at.base + BigInt(VIRTIO_MMIO[reg]);
  }

  async readCommon(field: VirtioPciCommonField): Promise<bigint> {
    if (this.at.kind === 'mmio') {
      const reg = mmioField(field).read;
      if (!reg) throw new Error(`virtio-mmio has no readable ${field}`);
      return fromLe(await this.read(this.mmioAddr(reg), 4));
    }
    const f = F[field];
    return fromLe(await this.read(this.l.bar + BigInt(this.l.common + f.offset), f.width));
  }

  /** The register writes that set `field` (two 32-bit halves for a 64-bit field on mmio). */
  commonOp(field: VirtioPciCommonField, value: number | bigint): Op[] {
    if (this.at.kind === 'mmio') {
      const m = mmioField(field);
      if (!m.write) throw new Error(`virtio-mmio has no writable ${field}`);
      const v = BigInt(value);
      const ops: Op[] = [
        { op: 'write', addr: this.mmioAddr(m.write), bytes: le(v & 0xffff_ffffn, 4) },
      ];
      if ('high' in m)
        ops.push({ op: 'write', addr: this.mmioAddr(m.high), bytes: le(v >> 32n, 4) });
      return ops;
    }
    const f = F[field];
    return [
      {
        op: 'write',
        addr: this.l.bar + BigInt(this.l.common + f.offset),
        bytes: le(value, f.width),
      },
    ];
  }

  async writeCommon(field: VirtioPciCommonField, value: number | bigint): Promise<void> {
    await this.access(this.commonOp(field, value));
  }

  async status(): Promise<number> {
    return Number(await this.readCommon('device_status'));
  }

  /** The interrupt cause, cleared as the driver does: an ISR read on PCI, InterruptACK on mmio. */
  async readIsr(): Promise<number> {
    if (this.at.kind === 'pci')
      return (await this.read(this.l.bar + BigInt(this.l.isr), 1))[0] ?? 0;
    const status = Number(fromLe(await this.read(this.mmioAddr('INTERRUPT_STATUS'), 4)));
    if (status !== 0) {
      await this.access([
        { op: 'write', addr: this.mmioAddr('INTERRUPT_ACK'), bytes: le(status, 4) },
      ]);
    }
    return status & (VIRTIO_MMIO_INT.VRING | VIRTIO_MMIO_INT.CONFIG);
  }

  async deviceFeatures(): Promise<FeatureSet> {
    await this.writeCommon('device_feature_select', 0);
    const low = Number(await this.readCommon('device_feature'));
    await this.writeCommon('device_feature_select', 1);
    const high = Number(await this.readCommon('device_feature'));
    return FeatureSet.fromWords(low, high);
  }

  /** Spec 3.1.1 steps 1-6: returns the status re-read after setting FEATURES_OK. */
  async negotiate(features: FeatureSet): Promise<number> {
    await this.discover();
    if (this.at.kind === 'mmio' && this.at.legacy) {
      await this.access(legacyNegotiateOps(this.at.base, features));
      return this.status();
    }
    const S = VIRTIO_STATUS;
    await this.writeCommon('device_status', 0);
    await this.writeCommon('device_status', S.ACKNOWLEDGE);
    await this.writeCommon('device_status', S.ACKNOWLEDGE | S.DRIVER);
    await this.access([
      ...this.commonOp('driver_feature_select', 0),
      ...this.commonOp('driver_feature', features.word(0)),
      ...this.commonOp('driver_feature_select', 1),
      ...this.commonOp('driver_feature', features.word(1)),
      ...this.commonOp('device_status', S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK),
    ]);
    return this.status();
  }

  /** Queue 0 at the ring image's addresses, vectors config 0 / queue 1 (PCI), then DRIVER_OK. */
  async start(
    ring: RingImage,
    opts: { queueVector?: number; configVector?: number } = {},
  ): Promise<void> {
    const S = VIRTIO_STATUS;
    await this.flush();
    if (this.at.kind === 'mmio' && this.at.legacy) {
      await this.access(legacyStartOps(this.at.base, ring));
      return;
    }
    const pci = this.at.kind === 'pci';
    await this.access([
      ...(pci ? this.commonOp('config_msix_vector', opts.configVector ?? 0) : []),
      ...this.commonOp('queue_select', 0),
      ...this.commonOp('queue_size', ring.size),
      ...(pci ? this.commonOp('queue_msix_vector', opts.queueVector ?? 1) : []),
      ...this.commonOp('queue_desc', ring.queue.desc),
      ...this.commonOp('queue_driver', ring.queue.avail),
      ...this.commonOp('queue_device', ring.queue.used),
      ...this.commonOp('queue_enable', 1),
      ...this.commonOp('device_status', S.ACKNOWLEDGE | S.DRIVER | S.FEATURES_OK | S.DRIVER_OK),
    ]);
  }

  /** Sends queued memory writes (no doorbell). */
  async flush(): Promise<void> {
    const ops = this.takePending();
    for (let i = 0; i < ops.length; i += 1024) await this.access(ops.slice(i, i + 1024));
  }

  private takePending(): Op[] {
    const ops: Op[] = this.mem.pending.map((p) => ({ op: 'write', addr: p.addr, bytes: p.bytes }));
    this.mem.pending = [];
    return ops;
  }

  /** Posted ring writes and the doorbell in one MemAccess, ordered as on hardware. */
  async kick(queue = 0): Promise<void> {
    const ops = this.takePending();
    const doorbell: Op =
      this.at.kind === 'mmio'
        ? { op: 'write', addr: this.mmioAddr('QUEUE_NOTIFY'), bytes: le(queue, 4) }
        : {
            op: 'write',
            addr: this.l.bar + BigInt(this.l.notify + queue * this.l.multiplier),
            bytes: le(queue, 2),
          };
    await this.access([...ops, doorbell]);
  }

  async usedIdx(ring: RingImage): Promise<number> {
    return decodeU16(await this.read(usedIdxAddr(ring.queue), 2));
  }

  async usedElem(ring: RingImage, idx: number): Promise<VringUsedElem> {
    return decodeUsedElem(await this.read(usedElemAddr(ring.queue, idx), 8));
  }

  async state(): Promise<ReplyOf<typeof DeviceState>> {
    return (await this.h.request(DeviceState, { bdf: this.bdf })).head;
  }
}
