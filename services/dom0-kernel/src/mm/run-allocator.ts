// First-fit allocator of runs of frame numbers over a sorted free list; the
// page allocator (pfns) and the IOVA allocator (IOVA page numbers) share it.
import { Dom0Error } from '../errors.js';

export interface Run {
  first: number;
  count: number;
}

export class RunAllocator {
  private readonly free: Run[];
  private used = 0;

  constructor(
    runs: readonly Run[],
    private readonly what: string,
  ) {
    this.free = runs
      .filter((r) => r.count > 0)
      .map((r) => ({ ...r }))
      .sort((a, b) => a.first - b.first);
  }

  get freeCount(): number {
    return this.free.reduce((n, r) => n + r.count, 0);
  }

  get usedCount(): number {
    return this.used;
  }

  alloc(count: number): number {
    if (!Number.isInteger(count) || count < 1) {
      throw new Dom0Error('NO_MEMORY', `cannot allocate ${count} ${this.what}`, {
        kind: 'internal',
      });
    }
    const i = this.free.findIndex((r) => r.count >= count);
    const run = this.free[i];
    if (run === undefined) throw new Dom0Error('NO_MEMORY', `no run of ${count} free ${this.what}`);
    const first = run.first;
    run.first += count;
    run.count -= count;
    if (run.count === 0) this.free.splice(i, 1);
    this.used += count;
    return first;
  }

  release(first: number, count: number): void {
    const end = first + count;
    let i = this.free.findIndex((r) => r.first >= first);
    if (i === -1) i = this.free.length;
    const prev = this.free[i - 1];
    const next = this.free[i];
    if ((prev && prev.first + prev.count > first) || (next && next.first < end)) {
      throw new Dom0Error('NO_MEMORY', `double free of ${this.what} 0x${first.toString(16)}`, {
        kind: 'internal',
      });
    }
    this.used -= count;
    if (prev && prev.first + prev.count === first) {
      prev.count += count;
      if (next && next.first === end) {
        prev.count += next.count;
        this.free.splice(i, 1);
      }
    } else if (next && next.first === end) {
      next.first = first;
      next.count += count;
    } else {
      this.free.splice(i, 0, { first, count });
    }
  }
}
