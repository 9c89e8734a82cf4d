// Bounded fault log (like VT-d's fault recording registers, but deeper):
// the newest 10k faults, each with a sequence number that keeps growing
// across configures so a poller never mistakes new faults for seen ones.
export const FAULT_REASONS = ['IOMMU_FAULT_NOT_PRESENT', 'IOMMU_FAULT_PERMISSION'] as const;
export type FaultReason = (typeof FAULT_REASONS)[number];

export interface Fault {
  readonly seq: number;
  readonly bdf: string;
  readonly iova: string;
  readonly write: boolean;
  readonly reason: FaultReason;
  readonly atMs: number;
}

export class FaultLog {
  private entries: Fault[] = [];
  private head = 0;
  private nextSeq = 0;
  /** Sees every new fault (the journal keeps them across restarts). */
  onRecord: ((f: Fault) => void) | undefined;

  constructor(readonly capacity = 10_000) {}

  record(f: Omit<Fault, 'seq' | 'atMs'>): Fault {
    const fault: Fault = { ...f, seq: this.nextSeq++, atMs: Date.now() };
    this.push(fault);
    this.onRecord?.(fault);
    return fault;
  }

  private push(fault: Fault): void {
    if (this.entries.length < this.capacity) this.entries.push(fault);
    else {
      this.entries[this.head] = fault;
      this.head = (this.head + 1) % this.capacity;
    }
  }

  /** Puts back a fault read from the journal, with its own seq and time. */
  restore(fault: Fault): void {
    this.nextSeq = Math.max(this.nextSeq, fault.seq + 1);
    this.push(fault);
  }

  /** The next sequence number (kept across restarts, so pollers never go backwards). */
  get next(): number {
    return this.nextSeq;
  }

  set next(seq: number) {
    this.nextSeq = Math.max(this.nextSeq, seq);
  }

  /** Oldest first. */
  ordered(): Fault[] {
    return [...this.entries.slice(this.head), ...this.entries.slice(0, this.head)];
  }

  /** Faults with seq >= since, at most `limit`; `next` is the `since` of the following page. */
  since(since: number, limit: number): { faults: Fault[]; next: number } {
    const faults = this.ordered()
      .filter((f) => f.seq >= since)
      .slice(0, limit);
    const last = faults[faults.length - 1];
    return { faults, next: last ? last.seq + 1 : Math.min(since, this.nextSeq) };
  }

  recent(n: number): Fault[] {
    return this.ordered().slice(-n);
  }

  /** Forgets the entries; sequence numbers keep counting. */
  clear(): void {
    this.entries = [];
    this.head = 0;
  }

  get size(): number {
    return this.entries.length;
  }
}
