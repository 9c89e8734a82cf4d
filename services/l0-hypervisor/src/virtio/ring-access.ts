import { toHex } from '@nestlab/addr';
import type { BusAddr } from '@nestlab/addr';
import { splitRingLayout } from '@nestlab/virtio';
import type { QueueMemory, SplitQueue } from '@nestlab/virtio';
import type { DmaDevice, DmaEngine, DmaWhat } from '../dma/dma-engine.js';
import type { TraceBudget } from '../dma/dma-trace.js';
import type { BufferIo } from './device-model.js';
import { L0Error } from '../errors.js';

const TRANSIENT = new Set(['TIMEOUT', 'NO_RESPONDERS']);

/**
 * The device's view of guest memory for one request: every access goes
 * through the DMA engine, labelled with the ring part it touches (an address
 * outside the three areas can only be an indirect table the walker reads).
 */
export class DeviceRingMemory implements QueueMemory {
  private readonly areas: [DmaWhat, bigint, bigint][];

  constructor(
    private readonly dma: DmaEngine,
    private readonly dev: DmaDevice,
    q: SplitQueue,
    private readonly budget?: TraceBudget,
    /** False once the device was reset: an abandoned request does no more DMA. */
    private readonly live: () => boolean = () => true,
  ) {
    const l = splitRingLayout(q.size);
    this.areas = [
      ['desc', q.desc, q.desc + BigInt(l.desc.bytes)],
      ['avail', q.avail, q.avail + BigInt(l.avail.bytes)],
      ['used', q.used, q.used + BigInt(l.used.bytes)],
    ];
  }

  private what(addr: bigint): DmaWhat {
    return this.areas.find(([, lo, hi]) => addr >= lo && addr < hi)?.[0] ?? 'indirect';
  }

  /** QueueMemory: a fault rejects, and the walker turns it into MEMORY_UNREACHABLE. */
  async read(addr: BusAddr, len: number): Promise<Uint8Array> {
    const what = this.what(addr);
    const own = this.dev.ownMemory?.(addr, len);
    const r = own
      ? this.dma.local(this.dev, addr, own, what, undefined, this.budget)
      : await this.dma.read(this.dev, addr, len, what, this.budget);
    if (!r.ok) {
      const fault = r.fault ?? 'INTERNAL';
      throw new L0Error('DMA_FAULT', `${what} ${toHex(addr)}: ${fault}`, {
        kind: TRANSIENT.has(fault) ? 'transient' : 'guest',
      });
    }
    return r.data;
  }

  /** QueueMemory: false when the write faulted. */
  async write(addr: BusAddr, bytes: Uint8Array): Promise<boolean> {
    const own = this.dev.ownMemory?.(addr, bytes.byteLength);
    if (own) return this.dma.local(this.dev, addr, own, this.what(addr), bytes, this.budget).ok;
    return (await this.dma.write(this.dev, addr, bytes, this.what(addr), this.budget)).ok;
  }

  /** BufferIo for request buffers (header, data, status). */
  buffers(): BufferIo {
    return {
      read: async (addr, len) => {
        if (!this.live()) return null;
        const r = await this.dma.read(this.dev, addr, len, 'buffer', this.budget);
        return r.ok ? r.data : null;
      },
      write: async (addr, bytes) =>
        this.live() && (await this.dma.write(this.dev, addr, bytes, 'buffer', this.budget)).ok,
    };
  }
}
