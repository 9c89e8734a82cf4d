import type { DmaRecord } from '@nestlab/protocol';

export const DMA_LOG_CAPACITY = 200_000;

/**
 * Bounded log of device memory accesses for one run (L0Configure clears it
 * and restarts seq at 0); the oldest records are overwritten when full.
 */
export class DmaLog {
  private readonly buf: (DmaRecord | undefined)[];
  private nextSeq = 0;

  constructor(readonly capacity = DMA_LOG_CAPACITY) {
    this.buf = new Array<DmaRecord | undefined>(capacity);
  }

  clear(): void {
    this.buf.fill(undefined);
    this.nextSeq = 0;
  }

  append(r: Omit<DmaRecord, 'seq'>): DmaRecord {
    const rec: DmaRecord = { seq: this.nextSeq, ...r };
    this.buf[this.nextSeq % this.capacity] = rec;
    this.nextSeq++;
    return rec;
  }

  /** Seq of the oldest record still held. */
  get oldest(): number {
    return Math.max(0, this.nextSeq - this.capacity);
  }

  get size(): number {
    return this.nextSeq - this.oldest;
  }

  /**
   * Records with seq >= since, at most limit. `dropped` counts records at or
   * after `since` that were overwritten before this read; `next` is the
   * since for the following page.
   */
  page(since: number, limit: number): { records: DmaRecord[]; next: number; dropped: number } {
    const from = Math.max(since, this.oldest);
    const to = Math.min(this.nextSeq, from + limit);
    const records: DmaRecord[] = [];
    for (let s = from; s < to; s++) {
      const r = this.buf[s % this.capacity];
      if (r) records.push(r);
    }
    // A since beyond the head (a caller that saw an earlier process) restarts at the head.
    const next = to > from ? to : Math.min(from, this.nextSeq);
    return { records, next, dropped: Math.max(0, this.oldest - since) };
  }
}
