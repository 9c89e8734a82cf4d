import { L0Error } from '../errors.js';

interface Range {
  first: number;
  last: number;
}

/** A run of frames as CpuFrames carries it. */
export interface FrameRange {
  readonly first: number;
  readonly count: number;
}

/**
 * Which machine frames each domain's CPU may touch, as Xen last said with
 * CpuFrames (a full replacement per domain). Ranges are kept sorted and
 * merged so a check is a binary search.
 */
export class CpuFrames {
  private readonly byDomain = new Map<number, Range[]>();

  set(domain: number, ranges: readonly FrameRange[]): number {
    const sorted: Range[] = [];
    for (const r of ranges) {
      if (r.count === 0) continue;
      const last = r.first + r.count - 1;
      if (!Number.isSafeInteger(last)) {
        throw new L0Error('CONFIG_INVALID', `frame range ${r.first}+${r.count} overflows`);
      }
      sorted.push({ first: r.first, last });
    }
    sorted.sort((a, b) => a.first - b.first);
    const merged: Range[] = [];
    for (const r of sorted) {
      const top = merged[merged.length - 1];
      if (top && r.first <= top.last + 1) top.last = Math.max(top.last, r.last);
      else merged.push({ ...r });
    }
    this.byDomain.set(domain, merged);
    return merged.reduce((n, r) => n + (r.last - r.first + 1), 0);
  }

  /** Whether every frame of [first, last] is granted to the domain. */
  allows(domain: number, first: number, last: number): boolean {
    const ranges = this.byDomain.get(domain);
    if (!ranges) return false;
    let lo = 0;
    let hi = ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = ranges[mid];
      if (!r) return false;
      if (first < r.first) hi = mid - 1;
      else if (first > r.last) lo = mid + 1;
      else return last <= r.last; // ranges are merged: one range must hold it all
    }
    return false;
  }

  clear(): void {
    this.byDomain.clear();
  }

  /** Every domain's grants as CpuFrames ranges (what a respawned L0 sets again). */
  export(): Record<string, FrameRange[]> {
    const out: Record<string, FrameRange[]> = {};
    for (const [d, rs] of this.byDomain) {
      out[String(d)] = rs.map((r) => ({ first: r.first, count: r.last - r.first + 1 }));
    }
    return out;
  }

  summary(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [d, rs] of this.byDomain) {
      out[`dom${d}`] = rs.reduce((n, r) => n + (r.last - r.first + 1), 0);
    }
    return out;
  }
}
