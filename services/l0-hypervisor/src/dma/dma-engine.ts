// The device's path to memory (ARCHITECTURE §4 step 4): bus address → machine
// by the device's IOMMU attachment, then machine → host-phys by memslot, one
// 4 KiB span at a time, each span logged as a DmaRecord.
import {
  busAsMachineBypass,
  busAsMachineDirect,
  crossing,
  machineAddr,
  pageSpans,
  toHex,
} from '@nestlab/addr';
import type { BusAddr, MachineAddr, Translation } from '@nestlab/addr';
import type { DmaRecord, DmaVerdict, IommuAttachment } from '@nestlab/protocol';
import { isCodedError } from '@nestlab/protocol';
import type { MachineMemory } from '../memory/machine-memory.js';
import type { L0Metrics } from '../metrics.js';
import type { DmaLog } from './dma-log.js';
import type { Iotlb } from './iotlb.js';
import type { DmaTracer } from './dma-trace.js';
import { type TraceBudget } from './dma-trace.js';

export type DmaWhat = 'desc' | 'indirect' | 'avail' | 'used' | 'buffer' | 'rogue';

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
}
/** An IommuTranslate request; throws a coded error (IOMMU_FAULT_*, TIMEOUT, …) on a fault. */
export type IommuTranslateFn = (bdf: string, iova: BusAddr, write: boolean) => Promise<IommuAnswer>;

export interface DmaResult {
  ok: boolean;
  /** Bytes read (reads only; partial up to the failing span). */
  data: Uint8Array;
  records: DmaRecord[];
  /** Code of the first failing span. */
  fault?: string;
}

interface SpanOutcome {
  dev: DmaDevice;
  what: DmaWhat;
  write: boolean;
  budget: TraceBudget | undefined;
  bus: BusAddr;
  len: number;
  verdict: DmaVerdict;
  fault: string | undefined;
  tr?: Translation<MachineAddr> | null;
  host?: bigint | null;
  startedAt?: number;
}

const viaIommu = crossing({ fn: 'iommuTranslate', from: 'bus', to: 'machine', by: 'iommu' });
const viaPassthrough = crossing({
  fn: 'iommuPassthrough',
  from: 'bus',
  to: 'machine',
  by: 'identity',
});

export class DmaEngine {
  constructor(
    private readonly mem: MachineMemory,
    private readonly iotlb: Iotlb,
    private readonly log: DmaLog,
    private readonly metrics: L0Metrics,
    private readonly tracer: DmaTracer,
    private readonly translateFn: IommuTranslateFn,
  ) {}

  read(dev: DmaDevice, bus: BusAddr, len: number, what: DmaWhat, budget?: TraceBudget) {
    return this.access(dev, bus, len, what, undefined, budget);
  }

  write(dev: DmaDevice, bus: BusAddr, bytes: Uint8Array, what: DmaWhat, budget?: TraceBudget) {
    return this.access(dev, bus, bytes.byteLength, what, bytes, budget);
  }

  private async access(
    dev: DmaDevice,
    bus: BusAddr,
    len: number,
    what: DmaWhat,
    bytes: Uint8Array | undefined,
    budget: TraceBudget | undefined,
  ): Promise<DmaResult> {
    const write = bytes !== undefined;
    const out = new Uint8Array(write ? 0 : len);
    const records: DmaRecord[] = [];
    const base = { dev, what, write, budget };
    let spans: { addr: BusAddr; len: number; offset: number }[];
    try {
      spans = pageSpans(bus, len);
    } catch {
      const rec = this.finish({ ...base, bus, len, verdict: 'faulted', fault: 'ADDR_WRAP' });
      return { ok: false, data: out, records: [rec], fault: 'ADDR_WRAP' };
    }
    for (const span of spans) {
      const startedAt = Date.now();
      const { verdict, tr, fault } = await this.toMachine(dev, span.addr, write);
      // Then machine → host-phys by memslot; a machine address with no RAM is not accessed.
      const host = tr?.ok ? this.mem.memslots.translate(tr.addr, span.len) : null;
      const hostFault = fault ?? (host?.ok ? undefined : 'MEMORY_UNREACHABLE');
      const rec = this.finish({
        ...base,
        bus: span.addr,
        len: span.len,
        verdict,
        fault: hostFault,
        tr,
        host: host?.ok ? host.addr : null,
        startedAt,
      });
      records.push(rec);
      if (!host?.ok) return { ok: false, data: out, records, fault: hostFault ?? 'INTERNAL' };
      if (bytes) this.mem.ram.write(host.addr, bytes.subarray(span.offset, span.offset + span.len));
      else out.set(this.mem.ram.read(host.addr, span.len), span.offset);
    }
    return { ok: true, data: out, records };
  }

  /** The bus → machine crossing the device's attachment and features call for. */
  private async toMachine(
    dev: DmaDevice,
    bus: BusAddr,
    write: boolean,
  ): Promise<{ verdict: DmaVerdict; tr: Translation<MachineAddr> | null; fault?: string }> {
    const translate =
      dev.iommu === 'physical' ||
      ((dev.iommu === 'virtio' || dev.iommu === 'virtio-exempt') && dev.accessPlatform());
    if (dev.iommu === 'none') return { verdict: 'direct', tr: busAsMachineDirect(bus) };
    if (!translate) return { verdict: 'bypass', tr: busAsMachineBypass(bus) };

    const cached = this.iotlb.lookup(dev.bdf, bus, write);
    const offset = bus & 0xfffn;
    if (cached) {
      const c = cached.by === 'iommu' ? viaIommu : viaPassthrough;
      return { verdict: 'translated', tr: c.ok(bus, machineAddr(cached.machinePage + offset)) };
    }
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
      this.iotlb.insert(dev.bdf, bus, { ...a, machinePage: a.machine - offset });
      return { verdict: 'translated', tr: c.ok(bus, a.machine) };
    } catch (err) {
      // A fault, or no IOMMU answering (NO_RESPONDERS / TIMEOUT): the access is not performed.
      const code = isCodedError(err) ? err.code : 'INTERNAL';
      return { verdict: 'faulted', tr: viaIommu.fail(bus, code), fault: code };
    }
  }

  /** Logs, counts and traces one span's outcome. */
  private finish(o: SpanOutcome): DmaRecord {
    const { dev, what, write, bus, len, verdict, fault, budget } = o;
    const machine = o.tr?.ok ? o.tr.addr : null;
    const host = o.host ?? null;
    const ids = this.tracer.record(budget, {
      what,
      write,
      bus,
      machine,
      host,
      verdict,
      fault,
      by: o.tr?.step.by,
      fn: o.tr?.step.fn,
      startedAt: o.startedAt ?? Date.now(),
    });
    this.metrics.dmaAccesses.inc({ verdict, what });
    if (fault) this.metrics.dmaFaults.inc({ code: fault });
    return this.log.append({
      bdf: dev.bdf,
      what,
      write,
      bus: toHex(bus),
      len,
      machine: machine === null ? null : toHex(machine),
      hostPhys: host === null ? null : toHex(host),
      verdict,
      ...(fault ? { fault } : {}),
      ...ids,
    });
  }
}
