import { toHex } from '@nestlab/addr';
import type { DmaRecord, DmaVerdict } from '@nestlab/protocol';

export const DMA_LOG_CAPACITY = 200_000;

const WHAT: readonly DmaRecord['what'][] = ['desc', 'indirect', 'avail', 'used', 'buffer', 'rogue'];
const VERDICT: readonly DmaVerdict[] = ['translated', 'bypass', 'direct', 'faulted'];
const HAS_MACHINE = 1;
const HAS_HOST = 2;
const WRITE = 4;
const HAS_AT = 8;

/**
 * One access as the DMA engine hands it to the log. The engine fills one
 * such object again for every access (no allocation per access); the log
 * copies it into its columns.
 */
export interface DmaAccessFields {
  bdf: string;
  what: DmaRecord['what'];
  write: boolean;
  bus: bigint;
  len: number;
  machine: bigint | null;
  hostPhys: bigint | null;
  verdict: DmaVerdict;
  fault: string | undefined;
  traceId: string | undefined;
  spanId: string | undefined;
  /** sharedClockMs() when the access happened. */
  at: number | undefined;
}

/** Strings seen few times but stored per record (bdfs, fault codes) as small indexes. */
class Interned {
  private readonly index = new Map<string, number>();
  private readonly values: string[] = [];
  id(s: string): number {
    let i = this.index.get(s);
    if (i === undefined) {
      i = this.values.push(s) - 1;
      this.index.set(s, i);
    }
    return i;
  }
  value(i: number): string {
    return this.values[i] ?? '';
  }
}

/**
 * Bounded log of device memory accesses for one run (L0Configure clears it
 * and restarts seq at 0); the oldest records are overwritten when full. One
 * row per access in typed columns: the hot path stores numbers, and a
 * DmaRecord (hex addresses) is built only when someone reads the log.
 */
export class DmaLog {
  private nextSeq = 0;
  private readonly flags: Uint8Array;
  private readonly what: Uint8Array;
  private readonly verdict: Uint8Array;
  private readonly bdf: Uint16Array;
  /** Interned fault code + 1; 0 = none. */
  private readonly fault: Uint16Array;
  private readonly bus: BigUint64Array;
  private readonly machine: BigUint64Array;
  private readonly host: BigUint64Array;
  private readonly len: Float64Array;
  private readonly at: Float64Array;
  /** Trace ids are shared strings (one per I/O), kept by reference. */
  private readonly traceId: (string | undefined)[];
  private readonly spanId: (string | undefined)[];
  private readonly strings = new Interned();

  constructor(readonly capacity = DMA_LOG_CAPACITY) {
    this.flags = new Uint8Array(capacity);
    this.what = new Uint8Array(capacity);
    this.verdict = new Uint8Array(capacity);
    this.bdf = new Uint16Array(capacity);
    this.fault = new Uint16Array(capacity);
    this.bus = new BigUint64Array(capacity);
    this.machine = new BigUint64Array(capacity);
    this.host = new BigUint64Array(capacity);
    this.len = new Float64Array(capacity);
    this.at = new Float64Array(capacity);
    this.traceId = new Array<string | undefined>(capacity).fill(undefined);
    this.spanId = new Array<string | undefined>(capacity).fill(undefined);
  }

  clear(): void {
    this.traceId.fill(undefined);
    this.spanId.fill(undefined);
    this.nextSeq = 0;
  }

  /** Appends a record given in its wire form (tests, tools). */
  append(r: Omit<DmaRecord, 'seq'>): DmaRecord {
    const seq = this.push({
      bdf: r.bdf,
      what: r.what,
      write: r.write,
      bus: BigInt(r.bus),
      len: r.len,
      machine: r.machine === null ? null : BigInt(r.machine),
      hostPhys: r.hostPhys === null ? null : BigInt(r.hostPhys),
      verdict: r.verdict,
      fault: r.fault,
      traceId: r.traceId,
      spanId: r.spanId,
      at: r.at,
    });
    return this.record(seq)!;
  }

  /** The hot path's append: copies the fields into the next row. Returns its seq. */
  push(f: DmaAccessFields): number {
    const seq = this.nextSeq++;
    const i = seq % this.capacity;
    let flags = f.write ? WRITE : 0;
    this.bus[i] = f.bus;
    if (f.machine !== null) {
      flags |= HAS_MACHINE;
      this.machine[i] = f.machine;
    }
    if (f.hostPhys !== null) {
      flags |= HAS_HOST;
      this.host[i] = f.hostPhys;
    }
    if (f.at !== undefined) {
      flags |= HAS_AT;
      this.at[i] = f.at;
    }
    this.flags[i] = flags;
    this.what[i] = WHAT.indexOf(f.what);
    this.verdict[i] = VERDICT.indexOf(f.verdict);
    this.bdf[i] = this.strings.id(f.bdf);
    this.fault[i] = f.fault ? this.strings.id(f.fault) + 1 : 0;
    this.len[i] = f.len;
    this.traceId[i] = f.traceId;
    this.spanId[i] = f.spanId;
    return seq;
  }

  /** Seq of the oldest record still held. */
  get oldest(): number {
    return Math.max(0, this.nextSeq - this.capacity);
  }

  get size(): number {
    return this.nextSeq - this.oldest;
  }

  /** The record with this seq in its wire form; undefined once overwritten (or not yet written). */
  record(seq: number): DmaRecord | undefined {
    if (seq < this.oldest || seq >= this.nextSeq) return undefined;
    const i = seq % this.capacity;
    const flags = this.flags[i]!;
    const fault = this.fault[i]!;
    const traceId = this.traceId[i];
    const spanId = this.spanId[i];
    return {
      seq,
      bdf: this.strings.value(this.bdf[i]!),
      what: WHAT[this.what[i]!] ?? 'rogue',
      write: (flags & WRITE) !== 0,
      bus: toHex(this.bus[i]!),
      len: this.len[i]!,
      machine: flags & HAS_MACHINE ? toHex(this.machine[i]!) : null,
      hostPhys: flags & HAS_HOST ? toHex(this.host[i]!) : null,
      verdict: VERDICT[this.verdict[i]!] ?? 'faulted',
      ...(fault ? { fault: this.strings.value(fault - 1) } : {}),
      ...(traceId ? { traceId } : {}),
      ...(spanId ? { spanId } : {}),
      ...(flags & HAS_AT ? { at: this.at[i]! } : {}),
    };
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
      const r = this.record(s);
      if (r) records.push(r);
    }
    // A since beyond the head (a caller that saw an earlier process) restarts at the head.
    const next = to > from ? to : Math.min(from, this.nextSeq);
    return { records, next, dropped: Math.max(0, this.oldest - since) };
  }
}
