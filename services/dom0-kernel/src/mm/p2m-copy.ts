// dom0's copy of its own P2M (a PV guest keeps it mapped, Linux p2m.c): read
// once from Xen at probe time, patched by MemoryExchange replies.
import {
  PAGE_SHIFT,
  crossing,
  machineOfFrame,
  mfn,
  pageOffset,
  pfnOf,
  type MachineAddr,
  type Mfn,
  type Pfn,
  type PseudoPhysAddr,
  type Translation,
} from '@nestlab/addr';
import { Dom0Error } from '../errors.js';

/** pseudo-physical → machine through the guest's own P2M table (pfn_to_mfn). */
export const pvP2m = crossing({ fn: 'pvP2m', from: 'pseudo_phys', to: 'machine', by: 'p2m' });

export interface P2mRange {
  pfn: number;
  mfn: number;
  count: number;
}

/** Whether frames follow one another (a machine-contiguous region). */
export function consecutive(mfns: readonly number[]): boolean {
  for (let i = 1; i < mfns.length; i++) if (mfns[i] !== mfns[i - 1]! + 1) return false;
  return true;
}

export class P2mCopy {
  private readonly ranges: P2mRange[];
  /** Frames traded by MemoryExchange, which win over the ranges. */
  private readonly overrides = new Map<number, number>();

  constructor(ranges: readonly P2mRange[]) {
    this.ranges = ranges.filter((r) => r.count > 0).sort((a, b) => a.pfn - b.pfn);
    for (let i = 1; i < this.ranges.length; i++) {
      const prev = this.ranges[i - 1]!;
      if (prev.pfn + prev.count > this.ranges[i]!.pfn) {
        throw new Dom0Error(
          'BAD_REPLY',
          `P2M ranges overlap at pfn 0x${this.ranges[i]!.pfn.toString(16)}`,
        );
      }
    }
  }

  /** Mapped pfn runs, ascending: what the page allocator may hand out. */
  pfnRuns(): { first: number; count: number }[] {
    // Adjacent ranges are one pseudo-physical run, whatever machine frames back them.
    const runs: { first: number; count: number }[] = [];
    for (const r of this.ranges) {
      const last = runs[runs.length - 1];
      if (last && last.first + last.count === r.pfn) last.count += r.count;
      else runs.push({ first: r.pfn, count: r.count });
    }
    return runs;
  }

  get pages(): number {
    return this.ranges.reduce((n, r) => n + r.count, 0);
  }

  lookup(p: Pfn | number): Mfn | undefined {
    const o = this.overrides.get(p);
    if (o !== undefined) return mfn(o);
    let lo = 0;
    let hi = this.ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.ranges[mid]!;
      if (p < r.pfn) hi = mid - 1;
      else if (p >= r.pfn + r.count) lo = mid + 1;
      else return mfn(r.mfn + (p - r.pfn));
    }
    return undefined;
  }

  /** Like lookup, for a pfn the caller owns: a miss is a driver bug. */
  mfnOf(p: Pfn | number): Mfn {
    const m = this.lookup(p);
    if (m === undefined) {
      throw new Dom0Error('P2M_MISSING', `pfn 0x${p.toString(16)} is not in dom0's P2M`);
    }
    return m;
  }

  translate(addr: PseudoPhysAddr): Translation<MachineAddr> {
    const m = this.lookup(pfnOf(addr));
    return m === undefined
      ? pvP2m.fail(addr, 'pfn not in the P2M')
      : pvP2m.ok(addr, machineOfFrame(m, pageOffset(addr)));
  }

  /**
   * pvP2m for a CPU access, which records no step: the machine address, or
   * null when the pfn is not in the P2M. A CPU load or store is not traced
   * per access, and a step (two hex strings) per access was a visible share
   * of the hot path.
   */
  machineOf(addr: PseudoPhysAddr): MachineAddr | null {
    const m = this.lookup(pfnOf(addr));
    return m === undefined ? null : machineOfFrame(m, pageOffset(addr));
  }

  /** Machine frames behind [addr, addr+len), one per page touched. */
  mfnsOf(addr: PseudoPhysAddr, len: number): number[] {
    const first = Number(addr >> BigInt(PAGE_SHIFT));
    const last = Number((addr + BigInt(Math.max(len, 1)) - 1n) >> BigInt(PAGE_SHIFT));
    const out: number[] = [];
    for (let p = first; p <= last; p++) out.push(this.mfnOf(p));
    return out;
  }

  /** Whether consecutive pages of the region sit on consecutive machine frames. */
  machineContiguous(addr: PseudoPhysAddr, len: number): boolean {
    return consecutive(this.mfnsOf(addr, len));
  }

  /** ioremap of I/O memory in a PV domain: its frames get identity entries (pfn = mfn). */
  identity(first: Pfn | number, count: number): void {
    for (let p = first; p < first + count; p++) this.overrides.set(p, p);
  }

  /** Applies a MemoryExchange reply (xen_create_contiguous_region updates the P2M the same way). */
  applyExchange(updates: readonly { pfn: number; mfn: number }[]): void {
    for (const u of updates) this.overrides.set(u.pfn, u.mfn);
  }
}
