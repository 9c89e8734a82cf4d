// For driver tests: the test itself plays the device's side of one request,
// reading the ring the driver wrote through the shared untrusting walker
// (@nestlab/virtio popAvail) over the register double's RAM.
import { busAddr, type BusAddr } from '@nestlab/addr';
import { EventChannel } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import {
  VIRTIO_BLK_T,
  decodeBlkHeader,
  popAvail,
  splitBlkRequest,
  unwrap,
  usedElemWrite,
  usedIdxWrite,
  type RingMemory,
  type SplitQueue,
} from '@nestlab/virtio';
import type { L0RegsDouble } from './l0-regs-double.js';
import type { XenDouble } from './xen-double.js';

export class DevicePlay {
  lastAvail = 0;
  usedIdx = 0;
  /** The backing store: what survives the device (L0) dying. */
  readonly disk = new Map<bigint, Uint8Array>();
  /**
   * A volatile write-back cache (like L0's): writes land here and reach `disk`
   * only with a FLUSH; reads see the cache first. Off: writes go to `disk`.
   */
  volatileCache = false;
  readonly cache = new Map<bigint, Uint8Array>();
  readonly mem: RingMemory;

  constructor(
    private readonly l0: L0RegsDouble,
    private readonly xen: XenDouble,
    private readonly viaIommu: boolean,
  ) {
    this.mem = { read: async (a, len) => this.read(a, len) };
  }

  private at(a: BusAddr): bigint {
    return this.xen.deviceAddr(a, this.viaIommu);
  }

  read(a: BusAddr, len: number): Uint8Array {
    const out = new Uint8Array(len);
    for (let done = 0; done < len;) {
      const cur = busAddr(a + BigInt(done));
      const n = Math.min(len - done, 4096 - Number(cur & 0xfffn));
      out.set(this.l0.ram.readSync(this.at(cur), n), done);
      done += n;
    }
    return out;
  }

  write(a: BusAddr, bytes: Uint8Array): void {
    for (let done = 0; done < bytes.byteLength;) {
      const cur = busAddr(a + BigInt(done));
      const n = Math.min(bytes.byteLength - done, 4096 - Number(cur & 0xfffn));
      this.l0.ram.write(this.at(cur), bytes.subarray(done, done + n));
      done += n;
    }
  }

  get queue(): SplitQueue {
    const q = this.l0.queue;
    return {
      size: q.size,
      desc: busAddr(q.desc),
      avail: busAddr(q.driver),
      used: busAddr(q.device),
    };
  }

  /** What a SIGKILL of L0 does to the cache: completed, unflushed writes are gone. */
  loseCache(): number {
    const n = this.cache.size;
    this.cache.clear();
    return n;
  }

  /** How many chains the driver has published that this device has not taken. */
  pending(): number {
    const idx = new DataView(this.read(busAddr(this.queue.avail + 2n), 2).buffer).getUint16(
      0,
      true,
    );
    return (idx - this.lastAvail) & 0xffff;
  }

  /** Serves the next chain like a virtio-blk device, without sending the interrupt. */
  async serveOne(
    status = 0,
  ): Promise<{ type: number; sector: bigint; indirect: boolean; head: number; buffers: bigint[] }> {
    const q = this.queue;
    const chain = unwrap(await popAvail(this.mem, q, this.lastAvail));
    if (chain === null) throw new Error('nothing available');
    this.lastAvail = chain.nextAvailIdx;
    const req = unwrap(splitBlkRequest(chain.buffers));
    const hdrBytes = new Uint8Array(16);
    let off = 0;
    for (const s of req.header) {
      hdrBytes.set(this.read(s.addr, s.len), off);
      off += s.len;
    }
    const hdr = unwrap(decodeBlkHeader(hdrBytes));
    let pos = 0;
    for (const s of req.data) {
      const sector = hdr.sector + BigInt(pos / 512);
      if (hdr.type === VIRTIO_BLK_T.OUT)
        (this.volatileCache ? this.cache : this.disk).set(sector, this.read(s.addr, s.len));
      else
        this.write(
          s.addr,
          this.cache.get(sector) ?? this.disk.get(sector) ?? new Uint8Array(s.len),
        );
      pos += s.len;
    }
    if (hdr.type === VIRTIO_BLK_T.FLUSH && status === 0) {
      for (const [sector, bytes] of this.cache) this.disk.set(sector, bytes);
      this.cache.clear();
    }
    this.write(req.status, new Uint8Array([status]));
    const elem = usedElemWrite(
      q,
      this.usedIdx,
      chain.headIndex,
      hdr.type === VIRTIO_BLK_T.IN ? req.dataLen + 1 : 1,
    );
    this.write(elem.addr, elem.bytes);
    this.usedIdx = (this.usedIdx + 1) & 0xffff;
    const idx = usedIdxWrite(q, this.usedIdx);
    this.write(idx.addr, idx.bytes);
    return {
      type: hdr.type,
      sector: hdr.sector,
      indirect: chain.indirect,
      head: chain.headIndex,
      buffers: chain.buffers.map((b) => b.addr),
    };
  }

  /** MSI → Xen → event channel, as Xen would deliver it. */
  interrupt(bus: Bus, port: number): void {
    bus.publish(EventChannel, { port }, { params: { port: String(port) } });
  }
}
