/**
 * Completed writes no FLUSH has covered yet. Every write completion asks
 * whether any of them belongs to an older device epoch (the device was reset
 * since, and may have lost them), so the oldest epoch held is kept at hand:
 * without FLUSHes the list grows with the job, and a scan per completion made
 * a long job quadratic.
 */
export class UnflushedWrites<T extends { readonly epoch: number }> {
  private items: T[] = [];
  private oldest = Infinity;

  push(c: T): void {
    this.items.push(c);
    if (c.epoch < this.oldest) this.oldest = c.epoch;
  }

  /** All of them (a FLUSH is about to cover them). */
  takeAll(): T[] {
    const all = this.items;
    this.items = [];
    this.oldest = Infinity;
    return all;
  }

  /** Puts writes back in front, oldest first (a FLUSH that did not cover them). */
  restore(list: readonly T[]): void {
    if (list.length === 0) return;
    this.items = [...list, ...this.items];
    for (const c of list) if (c.epoch < this.oldest) this.oldest = c.epoch;
  }

  /** Takes those completed in an epoch before `epoch`; none, at no cost, in the common case. */
  takeOlderThan(epoch: number): T[] {
    if (this.oldest >= epoch) return [];
    const stale = this.items.filter((c) => c.epoch < epoch);
    this.items = this.items.filter((c) => c.epoch >= epoch);
    this.oldest = this.items.reduce((m, c) => Math.min(m, c.epoch), Infinity);
    return stale;
  }

  get size(): number {
    return this.items.length;
  }
}
