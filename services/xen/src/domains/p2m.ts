// A PV domain's P2M (pfn -> mfn) as sorted ranges with binary search, plus the
// reverse M2P Xen keeps (machine_to_phys_mapping). Contiguous pfns are
// generally not contiguous mfns (docs/DOMAIN.md, "Xen side"); ranges merge whenever both are.
import {
  crossing,
  machineOfFrame,
  pageOffset,
  pfnOf,
  mfn as mfnBrand,
  type MachineAddr,
  type PseudoPhysAddr,
  type Translation,
} from '@nestlab/addr';

export interface P2mRange {
  readonly pfn: number;
  readonly mfn: number;
  readonly count: number;
}

/** The one crossing from a domain's pseudo-physical space to machine. */
export const p2mLookup = crossing({
  fn: 'p2mLookup',
  from: 'pseudo_phys',
  to: 'machine',
  by: 'p2m',
});

const end = (r: P2mRange) => r.pfn + r.count;

export class P2m {
  private ranges: P2mRange[] = [];
  private byMfn: P2mRange[] | null = null;
  private pageCount = 0;

  /** Index of the first range whose end is above `pfn`. */
  private firstEndingAbove(pfn: number): number {
    let lo = 0;
    let hi = this.ranges.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (end(this.ranges[mid]!) <= pfn) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  lookup(pfn: number): number | undefined {
    const r = this.ranges[this.firstEndingAbove(pfn)];
    return r && r.pfn <= pfn ? r.mfn + (pfn - r.pfn) : undefined;
  }

  /** Removes [pfn, pfn + count) from the map, splitting ranges at the edges. */
  unset(pfn: number, count: number): void {
    const hi = pfn + count;
    const i = this.firstEndingAbove(pfn);
    let j = i;
    const keep: P2mRange[] = [];
    while (j < this.ranges.length && this.ranges[j]!.pfn < hi) {
      const r = this.ranges[j]!;
      if (r.pfn < pfn) keep.push({ pfn: r.pfn, mfn: r.mfn, count: pfn - r.pfn });
      if (end(r) > hi) keep.push({ pfn: hi, mfn: r.mfn + (hi - r.pfn), count: end(r) - hi });
      this.pageCount -= Math.min(end(r), hi) - Math.max(r.pfn, pfn);
      j++;
    }
    if (j > i) this.ranges.splice(i, j - i, ...keep);
    this.byMfn = null;
  }

  /** Maps [pfn, pfn + count) to [mfn, mfn + count), replacing what was there. */
  set(pfn: number, count: number, mfn: number): void {
    if (count <= 0) return;
    this.unset(pfn, count);
    let i = this.firstEndingAbove(pfn);
    this.ranges.splice(i, 0, { pfn, mfn, count });
    this.pageCount += count;
    const joins = (a: P2mRange | undefined, b: P2mRange | undefined) =>
      a !== undefined && b !== undefined && end(a) === b.pfn && a.mfn + a.count === b.mfn;
    if (joins(this.ranges[i], this.ranges[i + 1])) {
      const a = this.ranges[i]!;
      this.ranges.splice(i, 2, {
        pfn: a.pfn,
        mfn: a.mfn,
        count: a.count + this.ranges[i + 1]!.count,
      });
    }
    if (i > 0 && joins(this.ranges[i - 1], this.ranges[i])) {
      const a = this.ranges[i - 1]!;
      this.ranges.splice(i - 1, 2, {
        pfn: a.pfn,
        mfn: a.mfn,
        count: a.count + this.ranges[i]!.count,
      });
      i--;
    }
    this.byMfn = null;
  }

  /** M2P: the pfn mapped to `mfn`, if any. */
  pfnOfMfn(mfn: number): number | undefined {
    this.byMfn ??= [...this.ranges].sort((a, b) => a.mfn - b.mfn);
    let lo = 0;
    let hi = this.byMfn.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      const r = this.byMfn[mid]!;
      if (r.mfn + r.count <= mfn) lo = mid + 1;
      else hi = mid;
    }
    const r = this.byMfn[lo];
    return r && r.mfn <= mfn ? r.pfn + (mfn - r.mfn) : undefined;
  }

  /** Pseudo-physical -> machine through this P2M, recorded as a TranslationStep. */
  translate(addr: PseudoPhysAddr): Translation<MachineAddr> {
    const frame = pfnOf(addr);
    const m = this.lookup(frame);
    if (m === undefined) return p2mLookup.fail(addr, `pfn 0x${frame.toString(16)} is not mapped`);
    return p2mLookup.ok(addr, machineOfFrame(mfnBrand(m), pageOffset(addr)));
  }

  all(): readonly P2mRange[] {
    return this.ranges;
  }

  get pages(): number {
    return this.pageCount;
  }

  get rangeCount(): number {
    return this.ranges.length;
  }
}
