// The device's path to memory (docs/ARCHITECTURE.md, one write, step 9): bus
// address → machine by the device's IOMMU attachment (dma-translation.ts),
// then machine → host-phys by memslot, one 4 KiB span at a time, each span
// logged, traced and counted (dma-accounting.ts).
import { ADDR_MAX, PAGE_SIZE } from '@nestlab/addr';
import type { BusAddr, HostPhysAddr, MachineAddr, Translation } from '@nestlab/addr';
import type { RamBackingCheck } from '@nestlab/virtio';
import type { L0Metrics } from '../metrics.js';
import { DmaAccounting, type AccessLabel, type DmaResult, type DmaWhat } from './dma-accounting.js';
import type { DmaLog } from './dma-log.js';
import type { DmaTracer, TraceBudget } from './dma-trace.js';
import type { Iotlb } from './iotlb.js';
import {
  DmaTranslation,
  translated,
  type DmaDevice,
  type IommuTranslateFn,
  type ToMachine,
} from './dma-translation.js';

export type { DmaResult, DmaWhat } from './dma-accounting.js';
export { WHATS } from './dma-accounting.js';
export type { DmaDevice, IommuAnswer, IommuTranslateFn } from './dma-translation.js';

/** One access in progress. */
interface Access extends AccessLabel {
  /** Where it starts and how long it is. */
  readonly bus: BusAddr;
  readonly len: number;
  /** What a write stores; undefined for a read. */
  readonly bytes: Uint8Array | undefined;
  /** What a read returns (filled span by span). */
  readonly out: Uint8Array;
  /** Seqs of its records in the DMA log. */
  readonly logged: number[];
}

/** A finished access, or a promise of it when a span waits for the IOMMU (an IOTLB miss). */
export type DmaNow = DmaResult | Promise<DmaResult>;

const PAGE_MASK = BigInt(PAGE_SIZE - 1);
const EMPTY = new Uint8Array(0);

/**
 * The memory behind the engine: machine → host by memslot, and the RAM at a
 * host address. L0's MachineMemory, or a vhost-user front-end's shared RAM.
 */
export interface DmaMemory {
  readonly memslots: {
    translate(addr: MachineAddr, len: number): Translation<HostPhysAddr>;
    /** translate() without the recorded step, for the per-access path. */
    hostOf(addr: MachineAddr, len: number): HostPhysAddr | null;
    covers(addr: bigint, len: number): boolean;
  };
  readonly ram: {
    write(addr: HostPhysAddr, bytes: Uint8Array): void;
    readInto(addr: HostPhysAddr, len: number, out: Uint8Array, at: number): void;
  };
}

export class DmaEngine {
  private readonly translation: DmaTranslation;
  private readonly accounting: DmaAccounting;

  constructor(
    private readonly mem: DmaMemory,
    iotlb: Iotlb,
    log: DmaLog,
    metrics: L0Metrics,
    tracer: DmaTracer,
    translateFn: IommuTranslateFn,
  ) {
    this.translation = new DmaTranslation(iotlb, translateFn);
    this.accounting = new DmaAccounting(log, metrics, tracer);
  }

  read(
    dev: DmaDevice,
    bus: BusAddr,
    len: number,
    what: DmaWhat,
    budget?: TraceBudget,
  ): Promise<DmaResult> {
    return Promise.resolve(this.access(dev, bus, len, what, undefined, budget));
  }

  write(
    dev: DmaDevice,
    bus: BusAddr,
    bytes: Uint8Array,
    what: DmaWhat,
    budget?: TraceBudget,
  ): Promise<DmaResult> {
    return Promise.resolve(this.access(dev, bus, bytes.byteLength, what, bytes, budget));
  }

  /** read, done at once when every span translates locally; a promise only on an IOTLB miss. */
  readNow(dev: DmaDevice, bus: BusAddr, len: number, what: DmaWhat, budget?: TraceBudget): DmaNow {
    return this.access(dev, bus, len, what, undefined, budget);
  }

  /** write, done at once when every span translates locally; a promise only on an IOTLB miss. */
  writeNow(
    dev: DmaDevice,
    bus: BusAddr,
    bytes: Uint8Array,
    what: DmaWhat,
    budget?: TraceBudget,
  ): DmaNow {
    return this.access(dev, bus, bytes.byteLength, what, bytes, budget);
  }

  /**
   * An access to the device's own memory (`mem`, the span at `bus`): no bus
   * transaction, no IOMMU; logged as device-local so reports count it apart.
   */
  local(
    dev: DmaDevice,
    bus: BusAddr,
    mem: Uint8Array,
    what: DmaWhat,
    bytes: Uint8Array | undefined,
    budget?: TraceBudget,
  ): DmaResult {
    const startedAt = Date.now();
    const a: AccessLabel = { bdf: dev.bdf, what, write: bytes !== undefined, budget };
    if (bytes) mem.set(bytes);
    const rec = this.accounting.record(a, {
      bus,
      len: mem.byteLength,
      verdict: 'device-local',
      fault: undefined,
      machine: null,
      by: undefined,
      fn: undefined,
      host: null,
      startedAt,
    });
    return this.accounting.result(true, bytes ? EMPTY : mem.slice(), [rec]);
  }

  /**
   * Whether RAM backs [bus, bus+len) for this device. Known only when its bus
   * addresses are machine addresses; behind the IOMMU it is undefined (each
   * access is translated, and faults, on its own).
   */
  ramBacked(dev: DmaDevice): RamBackingCheck {
    return (bus, len) => (translated(dev) ? undefined : this.mem.memslots.covers(bus, len));
  }

  /**
   * Runs synchronously while every span translates locally (no IOMMU, bypass,
   * an IOTLB hit); only a miss that must ask the IOMMU makes it wait. Most
   * device accesses are local, and the ring path makes a dozen per request.
   */
  private access(
    dev: DmaDevice,
    bus: BusAddr,
    len: number,
    what: DmaWhat,
    bytes: Uint8Array | undefined,
    budget: TraceBudget | undefined,
  ): DmaNow {
    const a: Access = {
      bdf: dev.bdf,
      what,
      write: bytes !== undefined,
      bus,
      len,
      bytes,
      budget,
      out: bytes ? EMPTY : new Uint8Array(len),
      logged: [],
    };
    // Past 2^64 - 1 (a span would start beyond it): refused as a whole, nothing accessed.
    if (len > 0 && bus + BigInt(len - 1) > ADDR_MAX) {
      const rec = this.accounting.record(a, {
        bus,
        len,
        verdict: 'faulted',
        fault: 'ADDR_WRAP',
        machine: null,
        by: undefined,
        fn: undefined,
        host: null,
        startedAt: Date.now(),
      });
      return this.accounting.result(false, a.out, [rec], 'ADDR_WRAP');
    }
    return this.spans(dev, a, 0);
  }

  /** The page spans from byte `done` on, one 4 KiB page at a time. */
  private spans(dev: DmaDevice, a: Access, done: number): DmaNow {
    while (done < a.len) {
      const addr = (done === 0 ? a.bus : a.bus + BigInt(done)) as BusAddr;
      const len = Math.min(PAGE_SIZE - Number(addr & PAGE_MASK), a.len - done);
      const offset = done;
      const startedAt = Date.now();
      const local = this.translation.local(dev, addr, a.write);
      if (local === null) {
        // An IOTLB miss: ask the IOMMU, then carry on with the remaining spans.
        return this.translation.remote(dev, addr, a.write).then((m) => {
          const r = this.apply(a, addr, len, offset, m, startedAt);
          return r ?? this.spans(dev, a, offset + len);
        });
      }
      const r = this.apply(a, addr, len, offset, local, startedAt);
      if (r) return r;
      done += len;
    }
    return this.accounting.result(true, a.out, a.logged);
  }

  /** Machine → host-phys by memslot, the access itself, its record; a result when it failed. */
  private apply(
    a: Access,
    addr: BusAddr,
    len: number,
    offset: number,
    m: ToMachine,
    startedAt: number,
  ): DmaResult | undefined {
    // A machine address with no RAM is not accessed.
    const hostAddr = m.machine !== null ? this.mem.memslots.hostOf(m.machine, len) : null;
    const fault = m.fault ?? (hostAddr !== null ? undefined : 'MEMORY_UNREACHABLE');
    a.logged.push(
      this.accounting.record(a, {
        bus: addr,
        len,
        verdict: m.verdict,
        fault,
        machine: m.machine,
        by: m.by,
        fn: m.fn,
        host: hostAddr,
        startedAt,
      }),
    );
    if (hostAddr === null)
      return this.accounting.result(false, a.out, a.logged, fault ?? 'INTERNAL');
    if (a.bytes) {
      const part = len === a.bytes.byteLength ? a.bytes : a.bytes.subarray(offset, offset + len);
      this.mem.ram.write(hostAddr, part);
    } else this.mem.ram.readInto(hostAddr, len, a.out, offset);
    return undefined;
  }
}
