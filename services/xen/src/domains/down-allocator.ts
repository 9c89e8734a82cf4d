// Hands out machine frames from the top of RAM downwards, as Xen's heap
// allocator does when it builds dom0 (construct_dom0 takes the highest free
// memory first: the measured dom0 sat at 0x40000000..0x78000000 of 2 GiB).
import { alignDown, runEnd, type FrameRun } from './machine-ram.js';

export class DownAllocator {
  private idx: number;
  private cursor: number;

  /** `runs`: RAM ascending; nothing below `floor` is ever handed out. */
  constructor(
    private readonly runs: readonly FrameRun[],
    private readonly floor: number,
  ) {
    this.idx = runs.length - 1;
    const last = runs[this.idx];
    this.cursor = last ? runEnd(last) : 0;
  }

  /**
   * Takes `count` frames; returns the extents in the order taken (descending
   * addresses). With `boundary`, no extent crosses a multiple of it, so each
   * extent becomes its own P2M region as on the measured layout.
   * Returns undefined (and takes nothing) when RAM runs out.
   */
  take(count: number, boundary?: number): FrameRun[] | undefined {
    const saved = { idx: this.idx, cursor: this.cursor };
    const out: FrameRun[] = [];
    let left = count;
    while (left > 0) {
      const run = this.runs[this.idx];
      if (!run) {
        this.idx = saved.idx;
        this.cursor = saved.cursor;
        return undefined;
      }
      const lo = Math.max(run.first, this.floor);
      if (this.cursor <= lo) {
        this.idx--;
        const below = this.runs[this.idx];
        this.cursor = below ? runEnd(below) : 0;
        continue;
      }
      const segLo = boundary ? Math.max(lo, alignDown(this.cursor - 1, boundary)) : lo;
      const n = Math.min(left, this.cursor - segLo);
      out.push({ first: this.cursor - n, count: n });
      this.cursor -= n;
      left -= n;
    }
    return out;
  }

  /** RAM not yet handed out, above the floor, ascending. */
  remaining(): FrameRun[] {
    const out: FrameRun[] = [];
    for (let i = 0; i <= this.idx; i++) {
      const run = this.runs[i]!;
      const lo = Math.max(run.first, this.floor);
      const hi = i === this.idx ? Math.min(this.cursor, runEnd(run)) : runEnd(run);
      if (hi > lo) out.push({ first: lo, count: hi - lo });
    }
    return out;
  }
}
