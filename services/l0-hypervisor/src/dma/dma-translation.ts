// The bus → machine half of a device access: which devices the IOMMU
// translates, the IOTLB in front of it, and misses merged while a
// translation that may cover them is out (docs/ARCHITECTURE.md, one write, step 9).
import {
  PAGE_SHIFT,
  busAsMachineBypass,
  busAsMachineDirect,
  crossing,
  machineAddr,
} from '@nestlab/addr';
import type { BusAddr, MachineAddr, Translation } from '@nestlab/addr';
import type { DmaVerdict, IommuAttachment } from '@nestlab/protocol';
import { MAX_TRANSLATE_RUN, isCodedError } from '@nestlab/protocol';
import type { Iotlb } from './iotlb.js';

/** What the engine needs to know about the device doing the access. */
export interface DmaDevice {
  readonly bdf: string;
  readonly iommu: IommuAttachment;
  /** VIRTIO_F_ACCESS_PLATFORM was negotiated. */
  accessPlatform(): boolean;
  /** The device's own memory covering [addr, addr+len) (rings in its BAR), else null. */
  ownMemory?(addr: bigint, len: number): Uint8Array | null;
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

/** One page span's bus → machine outcome. */
export interface ToMachine {
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

/** Whether the device's accesses go through the IOMMU (else bus = machine). */
export const translated = (dev: DmaDevice): boolean =>
  dev.iommu === 'physical' ||
  dev.iommu === 'virtio-translated-bus' ||
  ((dev.iommu === 'virtio' || dev.iommu === 'virtio-exempt') && dev.accessPlatform());

export class DmaTranslation {
  /** Translations out, with the pages their answer may fill (never rejects). */
  private readonly fills: { bdf: string; first: bigint; end: bigint; done: Promise<void> }[] = [];

  constructor(
    private readonly iotlb: Iotlb,
    private readonly translateFn: IommuTranslateFn,
  ) {}

  /** The crossing when it needs no IOMMU round trip; null on an IOTLB miss. */
  local(dev: DmaDevice, bus: BusAddr, write: boolean): ToMachine | null {
    if (dev.iommu === 'none') return { verdict: 'direct', tr: busAsMachineDirect(bus) };
    if (!translated(dev)) return { verdict: 'bypass', tr: busAsMachineBypass(bus) };
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
  async remote(dev: DmaDevice, bus: BusAddr, write: boolean): Promise<ToMachine> {
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
}
