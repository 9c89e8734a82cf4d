// Every DMA-able region the driver handed the device, in order: what the
// oracle checks device accesses against. Bounded; the oldest entries go first.
import type { LedgerEntry } from '@nestlab/protocol';

const MAX_ENTRIES = 100_000;

export class DmaLedger {
  private entries: LedgerEntry[] = [];
  /** Sequence number of entries[0]. */
  private base = 0;

  append(e: LedgerEntry): void {
    this.entries.push(e);
    if (this.entries.length > MAX_ENTRIES) {
      const drop = this.entries.length - MAX_ENTRIES;
      this.entries = this.entries.slice(drop);
      this.base += drop;
    }
  }

  /** Entries with sequence ≥ since; `next` is the sequence to ask for next time. */
  page(since: number, limit: number): { entries: LedgerEntry[]; next: number } {
    const from = Math.max(since, this.base) - this.base;
    const entries = this.entries.slice(from, from + limit);
    return { entries, next: this.base + from + entries.length };
  }

  get size(): number {
    return this.base + this.entries.length;
  }

  clear(): void {
    this.entries = [];
    this.base = 0;
  }
}
