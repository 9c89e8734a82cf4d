/** Cache granularity: a page, what a host page cache would track. */
export const CACHE_BLOCK = 4096;

/** Spare blocks kept for reuse: what one batch of requests evicts. */
const MAX_SPARE = 256;

/** Dirty blocks to write back, coalesced into runs of adjacent blocks. */
export interface WriteBackRun {
  readonly block: number;
  readonly bytes: Uint8Array;
}

/**
 * The dirty blocks of a volatile write cache, oldest first. Map insertion
 * order is the age: a rewritten block moves to the back, so a block the
 * guest keeps rewriting stays cached while cold ones are written back.
 */
export class WriteCache {
  private readonly dirty = new Map<number, Uint8Array>();
  /** Blocks written back and handed back (release): reused, so a steady write stream allocates none. */
  private readonly spare: Uint8Array[] = [];

  constructor(private readonly limitBytes: number) {}

  get dirtyBytes(): number {
    return this.dirty.size * CACHE_BLOCK;
  }

  /**
   * Caches `data` at byte `offset`. A block only partly written is first
   * read from the file (`load`), as a page cache does on a partial write.
   */
  put(offset: number, data: Uint8Array, load: (block: number) => Uint8Array): void {
    const end = offset + data.byteLength;
    for (let b = Math.floor(offset / CACHE_BLOCK); b * CACHE_BLOCK < end; b++) {
      const start = b * CACHE_BLOCK;
      const from = Math.max(offset, start);
      const to = Math.min(end, start + CACHE_BLOCK);
      let block = this.dirty.get(b);
      if (block) this.dirty.delete(b);
      else if (to - from === CACHE_BLOCK) block = this.spare.pop() ?? new Uint8Array(CACHE_BLOCK);
      else block = load(b);
      block.set(data.subarray(from - offset, to - offset), from - start);
      this.dirty.set(b, block);
    }
  }

  /** Whether every block of [offset, offset + len) is cached, so a read needs no file I/O. */
  covers(offset: number, len: number): boolean {
    if (this.dirty.size === 0 || len <= 0) return false;
    const end = offset + len;
    for (let b = Math.floor(offset / CACHE_BLOCK); b * CACHE_BLOCK < end; b++)
      if (!this.dirty.has(b)) return false;
    return true;
  }

  /** Copies the cached parts of [offset, offset + out.length) over `out`. */
  overlay(offset: number, out: Uint8Array): void {
    if (this.dirty.size === 0) return;
    const end = offset + out.byteLength;
    for (let b = Math.floor(offset / CACHE_BLOCK); b * CACHE_BLOCK < end; b++) {
      const block = this.dirty.get(b);
      if (!block) continue;
      const start = b * CACHE_BLOCK;
      const from = Math.max(offset, start);
      const to = Math.min(end, start + CACHE_BLOCK);
      out.set(block.subarray(from - start, to - start), from - offset);
    }
  }

  /** Removes and returns every dirty block (FLUSH, shutdown). */
  takeAll(): WriteBackRun[] {
    if (this.dirty.size === 0) return [];
    const blocks = [...this.dirty.keys()].sort((a, b) => a - b);
    const runs = coalesce(blocks, this.dirty);
    this.dirty.clear();
    return runs;
  }

  /**
   * Takes back blocks of takeOverLimit once they are written: nothing else
   * holds them, and a new block overwrites a spare one whole.
   */
  release(runs: readonly WriteBackRun[]): void {
    for (const r of runs) {
      if (r.bytes.byteLength === CACHE_BLOCK && this.spare.length < MAX_SPARE)
        this.spare.push(r.bytes);
    }
  }

  /** Removes and returns the oldest blocks beyond the limit, so memory stays bounded. */
  takeOverLimit(): WriteBackRun[] {
    const out: WriteBackRun[] = [];
    for (const [block, bytes] of this.dirty) {
      if (this.dirtyBytes <= this.limitBytes) break;
      this.dirty.delete(block);
      out.push({ block, bytes });
    }
    return out;
  }
}

function coalesce(
  sorted: readonly number[],
  dirty: ReadonlyMap<number, Uint8Array>,
): WriteBackRun[] {
  const runs: WriteBackRun[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i + 1;
    while (j < sorted.length && sorted[j] === sorted[j - 1]! + 1) j++;
    const bytes = new Uint8Array((j - i) * CACHE_BLOCK);
    for (let k = i; k < j; k++) bytes.set(dirty.get(sorted[k]!)!, (k - i) * CACHE_BLOCK);
    runs.push({ block: sorted[i]!, bytes });
    i = j;
  }
  return runs;
}
