// Every DMA-able region the driver handed the device, in order: what the
// oracle checks device accesses against. Bounded; the oldest entries go first.
import { sharedClockMs, type LedgerEntry } from '@nestlab/protocol';

const MAX_ENTRIES = 100_000;

export class DmaLedger {
  private entries: LedgerEntry[] = [];
  /** Sequence number of entries[0]. */
  private base = 0;

  /** Per bus page (IOVA page), the live entry mapped there, until its unmap is acknowledged. */
  private live = new Map<bigint, LedgerEntry>();

  append(e: LedgerEntry): void {
    const entry = { ...e, mappedAt: sharedClockMs() };
    this.entries.push(entry);
    const start = BigInt(e.bus) >> 12n;
    const end = (BigInt(e.bus) + BigInt(Math.max(1, e.len)) - 1n) >> 12n;
    for (let p = start; p <= end; p++) this.live.set(p, entry);
    if (this.entries.length > MAX_ENTRIES) {
      const drop = this.entries.length - MAX_ENTRIES;
      this.entries = this.entries.slice(drop);
      this.base += drop;
    }
  }

  /**
   * The unmap of `pages` bus pages from `iova` was acknowledged: the entries
   * mapped there are stamped with the time, so the oracle can tell a device
   * access through a stale IOTLB entry from one through a live mapping.
   */
  unmapped(iova: bigint, pages: number): void {
    const at = sharedClockMs();
    const first = iova >> 12n;
    for (let p = first; p < first + BigInt(pages); p++) {
      const e = this.live.get(p);
      if (e === undefined) continue;
      e.unmappedAt ??= at;
      this.live.delete(p);
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
    this.live.clear();
    this.base = 0;
  }
}
