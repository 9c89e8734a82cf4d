// The device's path to memory (docs/ARCHITECTURE.md, one write, step 9): bus
// address → machine by the device's IOMMU attachment (dma-translation.ts),
// then machine → host-phys by memslot, one 4 KiB span at a time, each span
// logged, traced and counted (dma-accounting.ts).
import { pageSpans } from '@nestlab/addr';
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
  /** What a write stores; undefined for a read. */
  readonly bytes: Uint8Array | undefined;
  /** What a read returns (filled span by span). */
  readonly out: Uint8Array;
  /** Seqs of its records in the DMA log. */
  readonly logged: number[];
}

type Span = { addr: BusAddr; len: number; offset: number };

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
    return this.access(dev, bus, len, what, undefined, budget);
  }

  write(
    dev: DmaDevice,
    bus: BusAddr,
    bytes: Uint8Array,
    what: DmaWhat,
    budget?: TraceBudget,
  ): Promise<DmaResult> {
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
    return this.accounting.result(true, bytes ? new Uint8Array(0) : mem.slice(), [rec]);
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
  ): Promise<DmaResult> {
    const a: Access = {
      bdf: dev.bdf,
      what,
      write: bytes !== undefined,
      bytes,
      budget,
      out: new Uint8Array(bytes ? 0 : len),
      logged: [],
    };
    let spans: Span[];
    try {
      spans = pageSpans(bus, len);
    } catch {
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
      return Promise.resolve(this.accounting.result(false, a.out, [rec], 'ADDR_WRAP'));
    }
    return this.spans(dev, a, spans, 0);
  }

  private spans(
    dev: DmaDevice,
    a: Access,
    spans: readonly Span[],
    from: number,
  ): Promise<DmaResult> {
    for (let i = from; i < spans.length; i++) {
      const span = spans[i]!;
      const startedAt = Date.now();
      const local = this.translation.local(dev, span.addr, a.write);
      if (local === null) {
        // An IOTLB miss: ask the IOMMU, then carry on with the remaining spans.
        return this.translation.remote(dev, span.addr, a.write).then((m) => {
          const r = this.apply(a, span, m, startedAt);
          return r ?? this.spans(dev, a, spans, i + 1);
        });
      }
      const r = this.apply(a, span, local, startedAt);
      if (r) return Promise.resolve(r);
    }
    return Promise.resolve(this.accounting.result(true, a.out, a.logged));
  }

  /** Machine → host-phys by memslot, the access itself, its record; a result when it failed. */
  private apply(a: Access, span: Span, m: ToMachine, startedAt: number): DmaResult | undefined {
    // A machine address with no RAM is not accessed.
    const hostAddr = m.machine !== null ? this.mem.memslots.hostOf(m.machine, span.len) : null;
    const fault = m.fault ?? (hostAddr !== null ? undefined : 'MEMORY_UNREACHABLE');
    a.logged.push(
      this.accounting.record(a, {
        bus: span.addr,
        len: span.len,
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
    if (a.bytes)
      this.mem.ram.write(hostAddr, a.bytes.subarray(span.offset, span.offset + span.len));
    else this.mem.ram.readInto(hostAddr, span.len, a.out, span.offset);
    return undefined;
  }
}
