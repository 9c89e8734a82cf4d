// Counts bumped per device access or request (DMA verdicts, IOTLB hits, blk
// requests), moved into their prom counter once per event-loop turn:
// prom-client's labelled inc hashes and validates its labels each call
// (~150 ns), which per 4 KiB access is more than the bookkeeping it does. A
// scrape comes in a later turn, so it sees every count.
import { atEndOfTurn } from './turn.js';

export class TurnCounts<K> {
  private readonly pending = new Map<K, number>();
  private queued = false;

  /** `flushOne` moves `n` counts of `key` into the counter (one labelled inc). */
  constructor(private readonly flushOne: (key: K, n: number) => void) {}

  add(key: K): void {
    this.pending.set(key, (this.pending.get(key) ?? 0) + 1);
    if (this.queued) return;
    this.queued = true;
    atEndOfTurn(() => this.flush());
  }

  /** Moves the pending counts now (the end of the turn does it anyway). */
  flush(): void {
    this.queued = false;
    for (const [key, n] of this.pending) this.flushOne(key, n);
    this.pending.clear();
  }
}
