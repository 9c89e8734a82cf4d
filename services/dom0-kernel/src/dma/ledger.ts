// Every DMA-able region the driver handed the device, in order: what the
// oracle checks device accesses against. Bounded; the oldest entries go first.
import { sharedClockMs, type LedgerEntry } from '@nestlab/protocol';

const MAX_ENTRIES = 100_000;

export class DmaLedger {
  /** The entries kept are entries[start..]; the dropped prefix is cut off in bulk. */
  private entries: LedgerEntry[] = [];
  private start = 0;
  /** Sequence number of entries[start]. */
  private base = 0;

  /** Per bus page number (IOVA page), the live entry mapped there, until its unmap is acknowledged. */
  private live = new Map<number, LedgerEntry>();

  /**
   * Records a region; `bus` is e.bus as a number, when the caller has it
   * (saves parsing the hex back, once per map on the hot path).
   */
  append(e: Omit<LedgerEntry, 'mappedAt' | 'unmappedAt'>, bus: bigint = BigInt(e.bus)): void {
    const entry: LedgerEntry = {
      what: e.what,
      bus: e.bus,
      len: e.len,
      pseudo: e.pseudo,
      mfns: e.mfns,
      mappedAt: sharedClockMs(),
    };
    this.entries.push(entry);
    const first = Number(bus >> 12n);
    const last = Number((bus + BigInt(Math.max(1, e.len) - 1)) >> 12n);
    for (let p = first; p <= last; p++) this.live.set(p, entry);
    if (this.entries.length - this.start > MAX_ENTRIES) {
      this.start++;
      this.base++;
      // Copying the kept entries on every append once full cost O(MAX_ENTRIES) per map.
      if (this.start >= MAX_ENTRIES) {
        this.entries = this.entries.slice(this.start);
        this.start = 0;
      }
    }
  }

  /**
   * The unmap of `pages` bus pages from `iova` was acknowledged: the entries
   * mapped there are stamped with the time, so the oracle can tell a device
   * access through a stale IOTLB entry from one through a live mapping.
   */
  unmapped(iova: bigint, pages: number): void {
    const at = sharedClockMs();
    const first = Number(iova >> 12n);
    for (let p = first; p < first + pages; p++) {
      const e = this.live.get(p);
      if (e === undefined) continue;
      e.unmappedAt ??= at;
      this.live.delete(p);
    }
  }

  /** Entries with sequence ≥ since; `next` is the sequence to ask for next time. */
  page(since: number, limit: number): { entries: LedgerEntry[]; next: number } {
    const from = this.start + Math.max(since, this.base) - this.base;
    const entries = this.entries.slice(from, from + limit);
    return { entries, next: this.base + (from - this.start) + entries.length };
  }

  get size(): number {
    return this.base + this.entries.length - this.start;
  }

  clear(): void {
    this.entries = [];
    this.start = 0;
    this.live.clear();
    this.base = 0;
  }
}
