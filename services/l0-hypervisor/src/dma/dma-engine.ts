// The device's path to memory (ARCHITECTURE §4 step 4): bus address → machine
// by the device's IOMMU attachment, then machine → host-phys by memslot, one
// 4 KiB span at a time, each span logged as a DmaRecord.
import {
  PAGE_SHIFT,
  busAsMachineBypass,
  busAsMachineDirect,
  crossing,
  machineAddr,
  pageSpans,
} from '@nestlab/addr';
import type { BusAddr, MachineAddr, Translation } from '@nestlab/addr';
import type { DmaRecord, DmaVerdict, IommuAttachment } from '@nestlab/protocol';
import { MAX_TRANSLATE_RUN, isCodedError, sharedClockMs } from '@nestlab/protocol';
import type { MachineMemory } from '../memory/machine-memory.js';
import type { L0Metrics } from '../metrics.js';
import { formatDmaRecord, type DmaLog, type RawDmaRecord } from './dma-log.js';
import type { Iotlb } from './iotlb.js';
import type { DmaTracer } from './dma-trace.js';
import { type TraceBudget } from './dma-trace.js';

export const WHATS = ['desc', 'indirect', 'avail', 'used', 'buffer', 'rogue'] as const;
export type DmaWhat = (typeof WHATS)[number];
const VERDICTS: readonly DmaVerdict[] = ['translated', 'bypass', 'direct', 'faulted'];

/** What the engine needs to know about the device doing the access. */
export interface DmaDevice {
  readonly bdf: string;
  readonly iommu: IommuAttachment;
  /** VIRTIO_F_ACCESS_PLATFORM was negotiated. */
  accessPlatform(): boolean;
}

export interface IommuAnswer {
  machine: MachineAddr;
  read: boolean;
  write: boolean;
  by: 'iommu' | 'identity';
  /** The mapped pages right after this one (the IOMMU's prefetch), machine page bases. */
  following?: readonly { machinePage: MachineAddr; read: boolean; write: boolean }[];
}
/** An IommuTranslate request; throws a coded error (IOMMU_FAULT_*, TIMEOUT, …) on a fault. */
export type IommuTranslateFn = (bdf: string, iova: BusAddr, write: boolean) => Promise<IommuAnswer>;

export interface DmaResult {
  readonly ok: boolean;
  /** Bytes read (reads only; partial up to the failing span). */
  readonly data: Uint8Array;
  /** The logged records of this access (formatted on first use: the ring path never asks). */
  readonly records: DmaRecord[];
  /** Code of the first failing span. */
  readonly fault?: string;
}

type Logged = { seq: number; raw: RawDmaRecord };

class Result implements DmaResult {
  private formatted: DmaRecord[] | undefined;
  constructor(
    readonly ok: boolean,
    readonly data: Uint8Array,
    private readonly logged: readonly Logged[],
    readonly fault?: string,
  ) {}
  get records(): DmaRecord[] {
    return (this.formatted ??= this.logged.map((l) => formatDmaRecord(l.seq, l.raw)));
  }
}

const result = (ok: boolean, data: Uint8Array, logged: readonly Logged[], fault?: string) =>
  new Result(ok, data, logged, fault);

/** One access in progress. */
interface Access {
  readonly dev: DmaDevice;
  readonly what: DmaWhat;
  /** What a write stores; undefined for a read. */
  readonly bytes: Uint8Array | undefined;
  readonly budget: TraceBudget | undefined;
  /** What a read returns (filled span by span). */
  readonly out: Uint8Array;
  readonly logged: Logged[];
}

interface ToMachine {
  verdict: DmaVerdict;
  tr: Translation<MachineAddr> | null;
  fault?: string;
}

const viaIommu = crossing({ fn: 'iommuTranslate', from: 'bus', to: 'machine', by: 'iommu' });
const viaPassthrough = crossing({
  fn: 'iommuPassthrough',
  from: 'bus',
  to: 'machine',
  by: 'identity',
});

export class DmaEngine {
  private readonly pending: number[] = new Array<number>(VERDICTS.length * WHATS.length).fill(0);
  private readonly faults = new Map<string, number>();
  private flushQueued = false;
  /** Translations out, with the pages their answer may fill (never rejects). */
  private readonly fills: { bdf: string; first: bigint; end: bigint; done: Promise<void> }[] = [];

  constructor(
    private readonly mem: MachineMemory,
    private readonly iotlb: Iotlb,
    private readonly log: DmaLog,
    private readonly metrics: L0Metrics,
    private readonly tracer: DmaTracer,
    private readonly translateFn: IommuTranslateFn,
  ) {}

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
      dev,
      what,
      bytes,
      budget,
      out: new Uint8Array(bytes ? 0 : len),
      logged: [],
    };
    let spans: { addr: BusAddr; len: number; offset: number }[];
    try {
      spans = pageSpans(bus, len);
    } catch {
      const rec = this.finish(a, bus, len, 'faulted', 'ADDR_WRAP', null, null, Date.now());
      return Promise.resolve(result(false, a.out, [rec], 'ADDR_WRAP'));
    }
    return this.spans(a, spans, 0);
  }

  private spans(
    a: Access,
    spans: readonly { addr: BusAddr; len: number; offset: number }[],
    from: number,
  ): Promise<DmaResult> {
    const write = a.bytes !== undefined;
    for (let i = from; i < spans.length; i++) {
      const span = spans[i]!;
      const startedAt = Date.now();
      const local = this.toMachineLocal(a.dev, span.addr, write);
      if (local === null) {
        // An IOTLB miss: ask the IOMMU, then carry on with the remaining spans.
        return this.toMachineRemote(a.dev, span.addr, write).then((m) => {
          const r = this.apply(a, span, m, startedAt);
          return r ?? this.spans(a, spans, i + 1);
        });
      }
      const r = this.apply(a, span, local, startedAt);
      if (r) return Promise.resolve(r);
    }
    return Promise.resolve(result(true, a.out, a.logged));
  }

  /** Machine → host-phys by memslot, the access itself, its record; a result when it failed. */
  private apply(
    a: Access,
    span: { addr: BusAddr; len: number; offset: number },
    m: ToMachine,
    startedAt: number,
  ): DmaResult | undefined {
    // A machine address with no RAM is not accessed.
    const host = m.tr?.ok ? this.mem.memslots.translate(m.tr.addr, span.len) : null;
    const fault = m.fault ?? (host?.ok ? undefined : 'MEMORY_UNREACHABLE');
    const hostAddr = host?.ok ? host.addr : null;
    const rec = this.finish(a, span.addr, span.len, m.verdict, fault, m.tr, hostAddr, startedAt);
    a.logged.push(rec);
    if (hostAddr === null) return result(false, a.out, a.logged, fault ?? 'INTERNAL');
    if (a.bytes)
      this.mem.ram.write(hostAddr, a.bytes.subarray(span.offset, span.offset + span.len));
    else this.mem.ram.readInto(hostAddr, span.len, a.out, span.offset);
    return undefined;
  }

  /** The bus → machine crossing when it needs no IOMMU round trip; null on an IOTLB miss. */
  private toMachineLocal(dev: DmaDevice, bus: BusAddr, write: boolean): ToMachine | null {
    if (dev.iommu === 'none') return { verdict: 'direct', tr: busAsMachineDirect(bus) };
    const translate =
      dev.iommu === 'physical' ||
      ((dev.iommu === 'virtio' || dev.iommu === 'virtio-exempt') && dev.accessPlatform());
    if (!translate) return { verdict: 'bypass', tr: busAsMachineBypass(bus) };
    return this.cached(dev, bus, write, true);
  }

  private cached(dev: DmaDevice, bus: BusAddr, write: boolean, count: boolean): ToMachine | null {
    const cached = this.iotlb.lookup(dev.bdf, bus, write, count);
    if (!cached) return null;
    const c = cached.by === 'iommu' ? viaIommu : viaPassthrough;
    return {
      verdict: 'translated',
      tr: c.ok(bus, machineAddr(cached.machinePage + (bus & 0xfffn))),
    };
  }

  /**
   * An IOTLB miss under a miss (a real IOTLB merges them): while a translation
   * whose run may cover the page is out, wait for its fill instead of asking
   * again. The chains of one batch then cost one request per run of pages.
   */
  private async toMachineRemote(dev: DmaDevice, bus: BusAddr, write: boolean): Promise<ToMachine> {
    const page = bus >> BigInt(PAGE_SHIFT);
    const fill = this.fills.find((f) => f.bdf === dev.bdf && page >= f.first && page < f.end);
    if (fill) {
      await fill.done;
      const filled = this.cached(dev, bus, write, false);
      if (filled) return filled;
    }
    const asked = this.translate(dev, bus, write);
    const mine = {
      bdf: dev.bdf,
      first: page,
      end: page + 1n + BigInt(MAX_TRANSLATE_RUN),
      done: asked.then(() => undefined),
    };
    this.fills.push(mine);
    try {
      return await asked;
    } finally {
      this.fills.splice(this.fills.indexOf(mine), 1);
    }
  }

  /** An IOTLB miss: the IOMMU translates (and the answer is cached), or the access faults. */
  private async translate(dev: DmaDevice, bus: BusAddr, write: boolean): Promise<ToMachine> {
    const offset = bus & 0xfffn;
    const generation = this.iotlb.generation;
    try {
      const a = await this.translateFn(dev.bdf, bus, write);
      const c = a.by === 'iommu' ? viaIommu : viaPassthrough;
      if (write ? !a.write : !a.read) {
        return {
          verdict: 'faulted',
          tr: c.fail(bus, 'permission'),
          fault: 'IOMMU_FAULT_PERMISSION',
        };
      }
      // An invalidation that came in while the request was out may be for these
      // very pages (it left the IOMMU after the answer): those are not cached,
      // and this access alone uses the answer.
      const page = { machinePage: a.machine - offset, read: a.read, write: a.write, by: a.by };
      const next = (a.following ?? []).map((f) => ({ ...f, by: a.by }));
      this.iotlb.insertRun(dev.bdf, bus, [page, ...next], generation);
      return { verdict: 'translated', tr: c.ok(bus, a.machine) };
    } catch (err) {
      // A fault, or no IOMMU answering (NO_RESPONDERS / TIMEOUT): the access is not performed.
      const code = isCodedError(err) ? err.code : 'INTERNAL';
      return { verdict: 'faulted', tr: viaIommu.fail(bus, code), fault: code };
    }
  }

  /** Counters are bumped once per turn of the event loop, not once per 4 KiB access. */
  private count(verdict: DmaVerdict, what: DmaWhat, fault: string | undefined): void {
    const k = VERDICTS.indexOf(verdict) * WHATS.length + WHATS.indexOf(what);
    this.pending[k] = (this.pending[k] ?? 0) + 1;
    if (fault) this.faults.set(fault, (this.faults.get(fault) ?? 0) + 1);
    if (this.flushQueued) return;
    this.flushQueued = true;
    setImmediate(() => this.flushCounts());
  }

  /** Moves the pending access counts into the metrics. */
  flushCounts(): void {
    this.flushQueued = false;
    this.pending.forEach((n, k) => {
      if (!n) return;
      const verdict = VERDICTS[Math.floor(k / WHATS.length)] ?? 'faulted';
      const what = WHATS[k % WHATS.length] ?? 'rogue';
      this.metrics.dmaAccesses.inc({ verdict, what }, n);
    });
    this.pending.fill(0);
    for (const [code, n] of this.faults) this.metrics.dmaFaults.inc({ code }, n);
    this.faults.clear();
  }

  /** Logs, counts and traces one span's outcome. */
  private finish(
    a: Access,
    bus: BusAddr,
    len: number,
    verdict: DmaVerdict,
    fault: string | undefined,
    tr: Translation<MachineAddr> | null,
    host: bigint | null,
    startedAt: number,
  ): Logged {
    const write = a.bytes !== undefined;
    const machine = tr?.ok ? tr.addr : null;
    const ids = this.tracer.record(a.budget, () => ({
      what: a.what,
      write,
      bus,
      machine,
      host,
      verdict,
      fault,
      by: tr?.step.by,
      fn: tr?.step.fn,
      startedAt,
    }));
    this.count(verdict, a.what, fault);
    const raw: RawDmaRecord = {
      bdf: a.dev.bdf,
      what: a.what,
      write,
      bus,
      len,
      machine,
      hostPhys: host,
      verdict,
      ...(fault ? { fault } : {}),
      ...(ids.traceId ? { traceId: ids.traceId, spanId: ids.spanId } : {}),
      at: sharedClockMs(),
    };
    return { seq: this.log.appendRaw(raw), raw };
  }
}
