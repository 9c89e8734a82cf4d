import type { VirtioPciTransport } from '../virtio/pci-transport.js';
import type { VirtioDevice } from '../virtio/virtio-device.js';
import { VIRTIO_BAR_SIZE } from './bar-layout.js';

/** One PCI function on the bus: the device and the virtio-pci transport in front of it. */
export interface PciFunction {
  readonly dev: VirtioDevice;
  readonly transport: VirtioPciTransport;
  /** A queue notify as the device receives it (a lost doorbell fault may eat it). */
  readonly doorbell: (queue: number) => Promise<void>;
}

/** Config access result for a slot with nothing in it: all ones, as a master abort gives. */
const ABSENT = { 1: 0xff, 2: 0xffff, 4: 0xffff_ffff } as const;

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

  configRead(bdf: string, offset: number, size: 1 | 2 | 4): number {
    const fn = this.fns.get(bdf);
    return fn ? fn.transport.pci.read(offset, size) : ABSENT[size];
  }

  /** Writes to an empty slot vanish, as on real hardware. */
  configWrite(bdf: string, offset: number, size: 1 | 2 | 4, value: number): void {
    this.fns.get(bdf)?.transport.pci.write(offset, size, value);
  }

  /** The function whose BAR holds all of [addr, addr+len), with the offset inside it. */
  barAt(addr: bigint, len: number): { fn: PciFunction; offset: number } | undefined {
    for (const fn of this.fns.values()) {
      const base = fn.transport.pci.barBase();
      if (base === null) continue;
      if (addr >= base && addr + BigInt(len) <= base + BigInt(VIRTIO_BAR_SIZE)) {
        return { fn, offset: Number(addr - base) };
      }
    }
    return undefined;
  }

  /** Whether any byte of [addr, addr+len) is in a decoding BAR (a partial hit is an error). */
  overlapsBar(addr: bigint, len: number): boolean {
    const end = addr + BigInt(len);
    return this.all().some((fn) => {
      const base = fn.transport.pci.barBase();
      return base !== null && addr < base + BigInt(VIRTIO_BAR_SIZE) && base < end;
    });
  }
}
