// nestlab's virtio-blk device model as a vhost-user-blk back-end: QEMU (the
// front-end) keeps the PCI transport and the guest's RAM and hands this
// process the rest over the vhost-user protocol (QEMU docs/interop/vhost-user.rst).
// The device core, queue processor, DMA engine, DMA log, metrics and traces
// are the same as behind L0's PCI transport; only the transport differs: its
// registers are these messages, its doorbell a kick eventfd, its MSI a call
// eventfd, and guest memory is QEMU's shared memfd.
import { Socket } from 'node:net';
import { toHex } from '@nestlab/addr';
import type { Tracer } from '@opentelemetry/api';
import { recordStep } from '@nestlab/telemetry';
import type { DeviceSetup } from '@nestlab/protocol';
import { FeatureSet, VIRTIO_BLK_F, VIRTIO_F, VIRTIO_STATUS } from '@nestlab/virtio';
import { VirtioBlkModel } from '../blk/blk-model.js';
import { DiskBackend } from '../blk/disk-backend.js';
import { DmaEngine } from '../dma/dma-engine.js';
import type { DmaLog } from '../dma/dma-log.js';
import { DmaTracer } from '../dma/dma-trace.js';
import { Iotlb } from '../dma/iotlb.js';
import { L0Error } from '../errors.js';
import type { L0Metrics } from '../metrics.js';
import { VirtioDevice } from '../virtio/virtio-device.js';
import type { Message } from './connection.js';
import { DeviceIotlb } from './device-iotlb.js';
import { VhostUserError } from './errors.js';
import { KickPoller, closeQuietly, signalCall } from './eventfd.js';
import { FrontEndRam } from './front-end-ram.js';
import { VhostMemoryTable } from './memory-table.js';
import {
  IOTLB_TYPE,
  PROTOCOL_F,
  REQ,
  REQ_NAMES,
  VHOST_USER_F_PROTOCOL_FEATURES,
  VRING_IDX_MASK,
  decodeConfigRequest,
  decodeIotlbMsg,
  decodeMemTable,
  decodeVringAddr,
  decodeVringState,
  encodeConfigReply,
  u64Payload,
  type Payload,
} from './protocol.js';

/** The name the device goes by in the DMA log, traces and metrics. */
export const VHOST_USER_BDF = '0000:00:04.0';
/**
 * What the device offers. No FLUSH: every write is durable when it completes
 * (the disk image holds the bytes as soon as the guest sees them written).
 */
export const VHOST_BLK_OFFER = FeatureSet.of(
  VIRTIO_F.VERSION_1,
  VIRTIO_F.INDIRECT_DESC,
  VIRTIO_F.EVENT_IDX,
  VIRTIO_BLK_F.SEG_MAX,
  VIRTIO_BLK_F.BLK_SIZE,
);
const bit = (n: number) => 1n << BigInt(n);
const PROTOCOL_OFFER = bit(PROTOCOL_F.CONFIG);
/** QEMU refuses a back-end offering IOMMU_PLATFORM without REPLY_ACK and BACKEND_REQ. */
const PROTOCOL_OFFER_IOMMU =
  PROTOCOL_OFFER | bit(PROTOCOL_F.REPLY_ACK) | bit(PROTOCOL_F.BACKEND_REQ);
const F_PROTOCOL = 1n << BigInt(VHOST_USER_F_PROTOCOL_FEATURES);

export interface VhostBlkOptions {
  readonly diskPath: string;
  readonly diskBytes: number;
  readonly queueSizeMax: number;
  /**
   * 'none': no vIOMMU (every access direct). 'virtio': QEMU's vIOMMU in front
   * (iommu_platform=on): the device offers ACCESS_PLATFORM and, once it is
   * negotiated, translates every address through the device IOTLB.
   */
  readonly iommu: 'none' | 'virtio';
  readonly tracer: Tracer;
  readonly metrics: L0Metrics;
  readonly dmaLog: DmaLog;
  /** One line per notable event (connection, errors). */
  readonly log: (line: string) => void;
}

type Reply = { request: number; payload: Uint8Array } | null;

export class VhostUserBlkBackend {
  readonly ram = new FrontEndRam();
  readonly dev: VirtioDevice;
  readonly deviceIotlb = new DeviceIotlb(() => this.ram.table);
  private readonly iotlb: Iotlb;
  private readonly offer: FeatureSet;
  private readonly protocolOffer: bigint;
  private readonly kicks = new Map<number, KickPoller>();
  private readonly calls = new Map<number, number>();
  private protocolFeatures = 0n;
  /** SET_FEATURES carried VHOST_USER_F_PROTOCOL_FEATURES: rings start disabled until SET_VRING_ENABLE. */
  private protocolNegotiated = false;
  messages = 0;

  private constructor(
    readonly model: VirtioBlkModel,
    private readonly opts: VhostBlkOptions,
  ) {
    const viommu = opts.iommu === 'virtio';
    this.offer = viommu
      ? FeatureSet.fromBits(VHOST_BLK_OFFER.bits | bit(VIRTIO_F.ACCESS_PLATFORM))
      : VHOST_BLK_OFFER;
    this.protocolOffer = viommu ? PROTOCOL_OFFER_IOMMU : PROTOCOL_OFFER;
    this.iotlb = new Iotlb(opts.metrics.iotlbHits, opts.metrics.iotlbMisses);
    const dma = new DmaEngine(
      this.ram,
      this.iotlb,
      opts.dmaLog,
      opts.metrics,
      new DmaTracer(opts.tracer),
      viommu
        ? (_bdf, iova, write) => this.deviceIotlb.translate(iova, write)
        : // No vIOMMU in front: every access is direct and nothing asks for a translation.
          () => Promise.reject(new L0Error('DMA_FAULT', 'no IOMMU behind a vhost-user device')),
    );
    const setup: DeviceSetup = {
      bdf: VHOST_USER_BDF,
      transport: 'pci',
      offer: this.offer.toHex(),
      requireAccessPlatform: false,
      iommu: viommu ? 'virtio' : 'none',
      queueSizeMax: opts.queueSizeMax,
      diskBytes: opts.diskBytes,
      freshDisk: false,
    };
    this.dev = new VirtioDevice(VHOST_USER_BDF, setup, model, {
      dma,
      tracer: opts.tracer,
      metrics: opts.metrics,
    });
    this.dev.interrupts = {
      // The call eventfd is this transport's MSI: counted as the PCI transport counts its vectors.
      queue: (q) => {
        const fd = this.calls.get(q.index);
        if (fd !== undefined && signalCall(fd))
          opts.metrics.msis.inc({ vector: `call-${q.index}` });
      },
      // A config interrupt needs the back-end request channel, which is not offered.
      config: () => undefined,
    };
  }

  static async create(opts: VhostBlkOptions): Promise<VhostUserBlkBackend> {
    const disk = await DiskBackend.open(opts.diskPath, opts.diskBytes, false, {
      cacheLimitBytes: 0,
      unsafeFlush: false,
    });
    const model = new VirtioBlkModel(disk, 'nestlab-vhost', opts.queueSizeMax, opts.metrics);
    return new VhostUserBlkBackend(model, opts);
  }

  /** One message: its reply, if the request has one. Throws a VhostUserError for a bad one. */
  async handle(m: Message): Promise<Reply> {
    this.messages++;
    const span = this.opts.tracer.startSpan('l0.vhost-user.message', {
      attributes: { 'nestlab.vhost_user.request': REQ_NAMES[m.header.request] ?? m.header.request },
    });
    try {
      return await this.dispatch(m);
    } catch (err) {
      for (const fd of m.fds) closeQuietly(fd);
      throw err;
    } finally {
      span.end();
    }
  }

  private async dispatch({ header, payload: p, fds }: Message): Promise<Reply> {
    const r = header.request;
    const reply = (payload: Uint8Array): Reply => ({ request: r, payload });
    switch (r) {
      case REQ.GET_FEATURES:
        p.expect(0);
        return reply(u64Payload(this.offer.bits | F_PROTOCOL));
      case REQ.SET_FEATURES:
        return this.setFeatures(p.expect(8).u64(0));
      case REQ.GET_PROTOCOL_FEATURES:
        p.expect(0);
        return reply(u64Payload(this.protocolOffer));
      case REQ.SET_PROTOCOL_FEATURES:
        this.protocolFeatures = p.expect(8).u64(0) & this.protocolOffer;
        return null;
      case REQ.SET_BACKEND_REQ_FD:
        p.expect(0);
        this.deviceIotlb.channel?.destroy();
        this.deviceIotlb.channel = new Socket({ fd: fds[0]!, readable: false, writable: true });
        this.deviceIotlb.channel.on('error', (e) =>
          this.opts.log(`back-end channel: ${String(e)}`),
        );
        return null;
      case REQ.IOTLB_MSG:
        this.iotlbMsg(p);
        return null;
      case REQ.GET_QUEUE_NUM:
        return reply(u64Payload(BigInt(this.dev.queues.length)));
      case REQ.SET_OWNER:
      case REQ.RESET_OWNER:
        return null;
      case REQ.SET_MEM_TABLE:
        this.ram.replace(new VhostMemoryTable(decodeMemTable(p), fds));
        return null;
      case REQ.SET_VRING_NUM: {
        const s = decodeVringState(p);
        this.queue(s.index).configure('size', s.num);
        return null;
      }
      case REQ.SET_VRING_ADDR:
        this.setVringAddr(p);
        return null;
      case REQ.SET_VRING_BASE: {
        const s = decodeVringState(p);
        if (s.num > 0xffff) throw new VhostUserError('BAD_PAYLOAD', `vring base ${s.num}`);
        this.queue(s.index).restore({ nextAvail: s.num, nextUsed: s.num });
        return null;
      }
      case REQ.GET_VRING_BASE:
        return reply(await this.stopRing(decodeVringState(p).index));
      case REQ.SET_VRING_KICK:
        this.setKick(this.vringFd(p, fds));
        return null;
      case REQ.SET_VRING_CALL: {
        const { index, fd } = this.vringFd(p, fds);
        closeQuietly(this.calls.get(index) ?? null);
        if (fd === null) this.calls.delete(index);
        else this.calls.set(index, fd);
        return null;
      }
      case REQ.SET_VRING_ERR:
        closeQuietly(this.vringFd(p, fds).fd);
        return null;
      case REQ.SET_VRING_ENABLE: {
        const s = decodeVringState(p);
        if (s.num === 1) this.enable(s.index);
        else this.queue(s.index).ready = false;
        return null;
      }
      case REQ.GET_CONFIG: {
        const c = decodeConfigRequest(p);
        const config = new Uint8Array(256);
        config.set(this.model.config);
        return reply(encodeConfigReply(c.offset, config, c.size));
      }
      case REQ.SET_CONFIG:
        return null; // nothing in virtio-blk's config is writable without CONFIG_WCE
      default:
        throw new VhostUserError(
          'UNSUPPORTED_REQUEST',
          `request ${REQ_NAMES[r] ?? r} is not implemented`,
        );
    }
  }

  /** REPLY_ACK negotiated: a request flagged NEED_REPLY without a reply of its own gets a u64 0. */
  get replyAck(): boolean {
    return (this.protocolFeatures & bit(PROTOCOL_F.REPLY_ACK)) !== 0n;
  }

  private iotlbMsg(p: Payload): void {
    const m = decodeIotlbMsg(p);
    if (m.type === IOTLB_TYPE.UPDATE) this.deviceIotlb.update(m);
    else if (m.type === IOTLB_TYPE.INVALIDATE) {
      // A whole-space flush (a device-IOTLB invalidation of every address) comes
      // as size 0: QEMU's addr_mask + 1 wrapped past 2^64.
      const size = m.size === 0n ? (1n << 64n) - m.iova : m.size;
      this.deviceIotlb.invalidate(m.iova, size);
      const pages = (size + (m.iova & 0xfffn) + 0xfffn) >> 12n;
      if (pages > 1n << 20n) this.iotlb.clear();
      else this.iotlb.invalidate(VHOST_USER_BDF, m.iova, Number(pages));
    } else throw new VhostUserError('BAD_PAYLOAD', `IOTLB_MSG of type ${m.type}`);
  }

  private queue(index: number) {
    const q = this.dev.queues[index];
    if (!q) throw new VhostUserError('BAD_PAYLOAD', `no virtqueue ${index}`);
    return q;
  }

  private vringFd(p: Payload, fds: number[]): { index: number; fd: number | null } {
    const index = Number(p.expect(8).u64(0) & VRING_IDX_MASK);
    this.queue(index);
    return { index, fd: fds[0] ?? null };
  }

  /** The features the driver accepted (QEMU passes them on), as a FEATURES_OK write would. */
  private setFeatures(bits: bigint): Reply {
    this.protocolNegotiated = (bits & F_PROTOCOL) !== 0n;
    const virtio = FeatureSet.fromBits(bits & ~F_PROTOCOL);
    const s = this.dev.status;
    const wasRunning = s.status & VIRTIO_STATUS.DRIVER_OK;
    s.reset();
    s.writeDriverFeatures(0, virtio.word(0));
    s.writeDriverFeatures(1, virtio.word(1));
    s.write(
      VIRTIO_STATUS.ACKNOWLEDGE | VIRTIO_STATUS.DRIVER | VIRTIO_STATUS.FEATURES_OK | wasRunning,
    );
    if (s.refusal) this.opts.log(`features refused: ${s.refusal}`);
    return null;
  }

  /**
   * Ring addresses come in QEMU's address space: each is translated back to
   * guest-physical. Behind the vIOMMU they are IOVAs, bus addresses already.
   */
  private setVringAddr(p: Payload): void {
    const a = decodeVringAddr(p);
    const q = this.queue(a.index);
    if (this.dev.accessPlatform() && this.dev.iommu === 'virtio') {
      q.configure('desc', DeviceIotlb.ringIova(a.desc));
      q.configure('driver', DeviceIotlb.ringIova(a.avail));
      q.configure('device', DeviceIotlb.ringIova(a.used));
      this.logRingAddr(a.index, 'iova');
      return;
    }
    this.opts.tracer.startActiveSpan('l0.vhost-user.ring-addr', (span) => {
      try {
        for (const [field, user] of [
          ['desc', a.desc],
          ['driver', a.avail],
          ['device', a.used],
        ] as const) {
          const t = this.ram.table.ringAddr(user);
          recordStep(t.step, { 'nestlab.vhost_user.ring_part': field });
          if (!t.ok)
            throw new VhostUserError('UNMAPPED_ADDRESS', `${field}: ${t.step.reason ?? ''}`);
          q.configure(field, t.addr);
        }
      } finally {
        span.end();
      }
    });
    this.logRingAddr(a.index, 'guest-physical');
  }

  /** Where the ring now is, as the device will address it (the reference report reads this line). */
  private logRingAddr(index: number, space: 'iova' | 'guest-physical'): void {
    const q = this.queue(index);
    this.opts.log(
      `vring ${index} addr desc ${toHex(q.desc)} avail ${toHex(q.driver)} used ${toHex(q.device)} (${space})`,
    );
  }

  private setKick({ index, fd }: { index: number; fd: number | null }): void {
    this.kicks.get(index)?.stop();
    this.kicks.delete(index);
    if (fd === null) return;
    this.kicks.set(
      index,
      new KickPoller(
        fd,
        () => void this.dev.notify(index),
        (err) => this.opts.log(`kick fd of queue ${index}: ${String(err)}`),
      ),
    );
    // Without protocol features a ring starts as soon as its kick fd is set (vhost-user.rst "Ring states").
    if (!this.protocolNegotiated) this.enable(index);
  }

  private enable(index: number): void {
    const q = this.queue(index);
    if (q.ready) return;
    this.dev.enableQueue(q);
    this.dev.status.write(this.dev.status.status | VIRTIO_STATUS.DRIVER_OK);
    // Whatever the driver queued before the ring started.
    void this.dev.notify(index);
  }

  /** GET_VRING_BASE stops the ring; the reply carries the next avail index to resume at. */
  private async stopRing(index: number): Promise<Uint8Array> {
    const q = this.queue(index);
    q.ready = false;
    this.kicks.get(index)?.stop();
    this.kicks.delete(index);
    await this.dev.notify(index); // waits for a drain in progress; a stopped ring does no more
    const out = new Uint8Array(8);
    const v = new DataView(out.buffer);
    v.setUint32(0, index, true);
    v.setUint32(4, q.nextAvail, true);
    return out;
  }

  inspect(): Record<string, unknown> {
    return {
      messages: this.messages,
      iotlb: this.deviceIotlb.counts,
      protocolFeatures: `0x${this.protocolFeatures.toString(16)}`,
      memory: this.ram.table.inspect(),
      device: this.dev.inspect(),
    };
  }

  /** The front-end went away: pollers stopped, fds closed, the device powered off. */
  async close(): Promise<void> {
    for (const k of this.kicks.values()) k.stop();
    this.kicks.clear();
    for (const fd of this.calls.values()) closeQuietly(fd);
    this.calls.clear();
    await this.dev.dispose();
    this.deviceIotlb.close();
    this.ram.close();
  }
}
