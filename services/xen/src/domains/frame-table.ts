// Xen's frame table reduced to what nestlab needs: the owner of every machine
// frame. Stored as a sorted run-length interval map (a start and an owner per
// run), so a 2 GiB or a 64 TiB machine costs a few hundred entries, not one
// per frame.
import type { FrameRun } from './machine-ram.js';

/** Frame owners as on the wire (FrameOwner in @nestlab/protocol). */
export type Owner = 'xen' | 'free' | 'none' | `dom${number}`;

export const domOwner = (domain: number): Owner => `dom${domain}`;

export class FrameTable {
  // Run i covers [starts[i], starts[i + 1] ?? frames); neighbours never share an owner.
  private starts: number[] = [0];
  private owners: Owner[];

  /** `frames`: one past the highest machine frame; everything starts as `initial`. */
  constructor(
    readonly frames: number,
    initial: Owner = 'none',
  ) {
    this.owners = [initial];
  }

  /** Index of the run holding `mfn` (0 <= mfn < frames). */
  private runIndex(mfn: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= mfn) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  }

  private splitAt(mfn: number): void {
    if (mfn <= 0 || mfn >= this.frames) return;
    const i = this.runIndex(mfn);
    if (this.starts[i] === mfn) return;
    this.starts.splice(i + 1, 0, mfn);
    this.owners.splice(i + 1, 0, this.owners[i]!);
  }

  /** Gives [first, first + count) to `owner`; the part beyond the table is ignored. */
  set(first: number, count: number, owner: Owner): void {
    const lo = Math.max(0, first);
    const hi = Math.min(this.frames, first + count);
    if (hi <= lo) return;
    this.splitAt(lo);
    this.splitAt(hi);
    const i = this.runIndex(lo);
    let j = i;
    while (j < this.starts.length && this.starts[j]! < hi) j++;
    this.starts.splice(i, j - i, lo);
    this.owners.splice(i, j - i, owner);
    // Merge with the next run, then with the previous one.
    if (this.owners[i + 1] === owner) {
      this.starts.splice(i + 1, 1);
      this.owners.splice(i + 1, 1);
    }
    if (i > 0 && this.owners[i - 1] === owner) {
      this.starts.splice(i, 1);
      this.owners.splice(i, 1);
    }
  }

  /** Frames beyond the table (beyond RAM) are 'none'. */
  ownerOf(mfn: number): Owner {
    if (!Number.isSafeInteger(mfn) || mfn < 0 || mfn >= this.frames) return 'none';
    return this.owners[this.runIndex(mfn)]!;
  }

  /** Every run, ascending. */
  runs(): { first: number; count: number; owner: Owner }[] {
    return this.starts.map((first, i) => ({
      first,
      count: (this.starts[i + 1] ?? this.frames) - first,
      owner: this.owners[i]!,
    }));
  }

  /** The runs `owner` holds, ascending. */
  runsOf(owner: Owner): FrameRun[] {
    return this.runs()
      .filter((r) => r.owner === owner)
      .map(({ first, count }) => ({ first, count }));
  }

  /** True when every frame of [first, first + count) belongs to `owner`. */
  allOwnedBy(first: number, count: number, owner: Owner): boolean {
    if (first < 0 || first + count > this.frames) return false;
    let at = first;
    while (at < first + count) {
      const i = this.runIndex(at);
      if (this.owners[i] !== owner) return false;
      at = this.starts[i + 1] ?? this.frames;
    }
    return true;
  }

  /**
   * The lowest free run of `count` frames starting at a multiple of `align`:
   * first fit from the bottom, as an allocation with a low address limit
   * (swiotlb-xen's XENMEM_exchange with address_bits) tends to land.
   */
  findFree(count: number, align = 1): number | undefined {
    for (const r of this.runs()) {
      if (r.owner !== 'free') continue;
      const start = Math.ceil(r.first / align) * align;
      if (start + count <= r.first + r.count) return start;
    }
    return undefined;
  }

  /** Frames per owner. */
  summary(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.runs()) out[r.owner] = (out[r.owner] ?? 0) + r.count;
    return out;
  }

  get runCount(): number {
    return this.starts.length;
  }
}
