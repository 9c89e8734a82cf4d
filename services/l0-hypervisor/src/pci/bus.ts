import type { VirtioMmioTransport } from '../virtio/mmio-transport.js';
import type { VirtioPciTransport } from '../virtio/pci-transport.js';
import type { VirtioDevice } from '../virtio/virtio-device.js';

/** One device L0 emulates: the device core and the transport in front of it. */
export interface PciFunction {
  readonly dev: VirtioDevice;
  readonly transport: VirtioPciTransport | VirtioMmioTransport;
}

/** Config access result for a slot with nothing in it: all ones, as a master abort gives. */
const ABSENT = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff } as const;

/**
 * The devices of the machine by name. PCI config space reaches only the
 * virtio-pci ones; a virtio-mmio device is found through its window alone.
 */
export class PciBus {
  private readonly fns = new Map<string, PciFunction>();

  add(fn: PciFunction): void {
    this.fns.set(fn.dev.bdf, fn);
  }

  get(bdf: string): PciFunction | undefined {
    return this.fns.get(bdf);
  }

  byToken(token: string): PciFunction | undefined {
    return [...this.fns.values()].find((f) => f.dev.token === token);
  }

  all(): PciFunction[] {
    return [...this.fns.values()];
  }

  clear(): PciFunction[] {
    const old = this.all();
    this.fns.clear();
    return old;
  }

  private configSpace(bdf: string) {
    const t = this.fns.get(bdf)?.transport;
    return t?.kind === 'pci' ? t.pci : undefined;
  }

  configRead(bdf: string, offset: number, size: 1 | 2 | 4): number {
    return this.configSpace(bdf)?.read(offset, size) ?? ABSENT[size];
  }

  /** Writes to an empty slot vanish, as on real hardware. */
  configWrite(bdf: string, offset: number, size: 1 | 2 | 4, value: number): void {
    this.configSpace(bdf)?.write(offset, size, value);
  }

  /** The device whose register window holds all of [addr, addr+len), with the offset inside it. */
  barAt(addr: bigint, len: number): { fn: PciFunction; offset: number } | undefined {
    for (const fn of this.fns.values()) {
      const w = fn.transport.window();
      if (w && addr >= w.base && addr + BigInt(len) <= w.base + BigInt(w.bytes)) {
        return { fn, offset: Number(addr - w.base) };
      }
    }
    return undefined;
  }

  /** Device memory (a card's ring BAR) holding all of [addr, addr+len): the bytes themselves. */
  memoryAt(addr: bigint, len: number): Uint8Array | undefined {
    for (const fn of this.fns.values()) {
      const t = fn.transport;
      if (t.kind !== 'pci' || t.ringMemory === null) continue;
      const w = t.memoryWindow();
      if (w && addr >= w.base && addr + BigInt(len) <= w.base + BigInt(w.bytes)) {
        const at = Number(addr - w.base);
        return t.ringMemory.subarray(at, at + len);
      }
    }
    return undefined;
  }

  /** Whether any byte of [addr, addr+len) is in a decoding window (a partial hit is an error). */
  overlapsBar(addr: bigint, len: number): boolean {
    // A loop, no arrays or closures: every CPU RAM op asks.
    const end = addr + BigInt(len);
    for (const fn of this.fns.values()) {
      const t = fn.transport;
      if (overlaps(t.window(), addr, end)) return true;
      if (t.kind === 'pci' && overlaps(t.memoryWindow(), addr, end)) return true;
    }
    return false;
  }
}

function overlaps(w: { base: bigint; bytes: number } | null, addr: bigint, end: bigint): boolean {
  return w !== null && addr < w.base + BigInt(w.bytes) && w.base < end;
}
