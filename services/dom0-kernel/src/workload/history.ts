// A job's history: every I/O's IoRecord in submission order (record i is
// history[i]), with start and end times relative to the job's start. Without
// `history` (or past MAX_HISTORY records) records are still made, detached:
// the engine keeps one code path and the report simply carries none.
import { MAX_HISTORY, type IoRecord } from '@nestlab/protocol';
import type { BlockStamp } from '@nestlab/formats';

export { MAX_HISTORY };

export const stampWire = (s: BlockStamp) => ({
  seed: s.seed,
  block: s.block,
  generation: s.generation,
});

export class JobHistory {
  private readonly started = Date.now();
  private readonly list: IoRecord[] | null;

  constructor(keep: boolean) {
    this.list = keep ? [] : null;
  }

  /** Milliseconds since the job started. */
  now(): number {
    return Date.now() - this.started;
  }

  /** A record in submission order (detached when no history is kept, or it is full). */
  record(op: IoRecord['op'], block: number): IoRecord {
    const r: IoRecord = {
      i: this.list?.length ?? 0,
      op,
      block,
      ok: false,
      startMs: this.now(),
      endMs: 0,
    };
    if (this.list !== null && this.list.length < MAX_HISTORY) this.list.push(r);
    return r;
  }

  end(r: IoRecord, ok: boolean, code?: string): void {
    r.ok = ok;
    if (code !== undefined) r.code = code;
    r.endMs = this.now();
  }

  /** Whether reads record what they found (only worth decoding when a history is kept). */
  get kept(): boolean {
    return this.list !== null;
  }

  get records(): IoRecord[] | null {
    return this.list;
  }
}
