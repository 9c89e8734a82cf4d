// Hands out runs of pseudo-physical pages from the pfns dom0's P2M maps;
// runs never straddle a hole in the P2M.
import { pfn, pseudoPhysOfFrame, type Pfn, type PseudoPhysAddr } from '@nestlab/addr';
import { RunAllocator, type Run } from './run-allocator.js';

/** 512 MiB: rings and buffers land in the big second range of a real dom0 layout (docs/DOMAIN.md, "Xen side"). */
export const DEFAULT_FIRST_PFN = 0x20000;
/** Never below 1 MiB, where a PV kernel keeps its start-of-day structures. */
const LOWEST_PFN = 0x100;

export interface PageRun {
  readonly pfn: Pfn;
  readonly pages: number;
  readonly addr: PseudoPhysAddr;
}

const clip = (runs: readonly Run[], from: number): Run[] =>
  runs
    .map((r) => {
      const first = Math.max(r.first, from);
      return { first, count: r.first + r.count - first };
    })
    .filter((r) => r.count > 0);

export class PageAllocator {
  private readonly runs: RunAllocator;

  /** `runs`: mapped pfn runs (P2mCopy.pfnRuns). Uses pfns ≥ firstPfn, or ≥ 1 MiB if none are. */
  constructor(runs: readonly Run[], firstPfn = DEFAULT_FIRST_PFN) {
    const high = clip(runs, firstPfn);
    this.runs = new RunAllocator(
      high.length > 0 ? high : clip(runs, LOWEST_PFN),
      'pseudo-physical pages',
    );
  }

  get freePages(): number {
    return this.runs.freeCount;
  }

  get usedPages(): number {
    return this.runs.usedCount;
  }

  alloc(pages: number): PageRun {
    const first = pfn(this.runs.alloc(pages));
    return { pfn: first, pages, addr: pseudoPhysOfFrame(first) };
  }

  release(run: { pfn: number; pages: number }): void {
    this.runs.release(run.pfn, run.pages);
  }
}
