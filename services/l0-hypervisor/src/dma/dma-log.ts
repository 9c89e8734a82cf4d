import { toHex } from '@nestlab/addr';
import type { DmaRecord, DmaVerdict } from '@nestlab/protocol';

export const DMA_LOG_CAPACITY = 200_000;

/**
 * One access as the DMA engine logs it on its hot path: addresses stay
 * bigints and become the wire's hex strings only when someone reads the log.
 */
export interface RawDmaRecord {
  readonly bdf: string;
  readonly what: DmaRecord['what'];
  readonly write: boolean;
  readonly bus: bigint;
  readonly len: number;
  readonly machine: bigint | null;
  readonly hostPhys: bigint | null;
  readonly verdict: DmaVerdict;
  readonly fault?: string;
  readonly traceId?: string;
  readonly spanId?: string;
  /** sharedClockMs() when the access happened. */
  readonly at?: number;
}

type Entry = { readonly seq: number; readonly raw: RawDmaRecord } | DmaRecord;

export function formatDmaRecord(seq: number, r: RawDmaRecord): DmaRecord {
  return {
    seq,
    bdf: r.bdf,
    what: r.what,
    write: r.write,
    bus: toHex(r.bus),
    len: r.len,
    machine: r.machine === null ? null : toHex(r.machine),
    hostPhys: r.hostPhys === null ? null : toHex(r.hostPhys),
    verdict: r.verdict,
    ...(r.fault ? { fault: r.fault } : {}),
    ...(r.traceId ? { traceId: r.traceId } : {}),
    ...(r.spanId ? { spanId: r.spanId } : {}),
    ...(r.at === undefined ? {} : { at: r.at }),
  };
}

const materialize = (e: Entry): DmaRecord => ('raw' in e ? formatDmaRecord(e.seq, e.raw) : e);

/**
 * Bounded log of device memory accesses for one run (L0Configure clears it
 * and restarts seq at 0); the oldest records are overwritten when full.
 */
export class DmaLog {
  private readonly buf: (Entry | undefined)[];
  private nextSeq = 0;

  constructor(readonly capacity = DMA_LOG_CAPACITY) {
    this.buf = new Array<Entry | undefined>(capacity);
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

  /** The hot path's append: no formatting until the record is read. Returns its seq. */
  appendRaw(raw: RawDmaRecord): number {
    const seq = this.nextSeq++;
    this.buf[seq % this.capacity] = { seq, raw };
    return seq;
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
      if (r) records.push(materialize(r));
    }
    // A since beyond the head (a caller that saw an earlier process) restarts at the head.
    const next = to > from ? to : Math.min(from, this.nextSeq);
    return { records, next, dropped: Math.max(0, this.oldest - since) };
  }
}
