// One device access as the oracle judged it (shared by oracle.ts and astray.ts).
import type { DmaRecord, LedgerEntry } from '@nestlab/protocol';

/**
 * `stale`: the access hit the frame a mapping of its bus address meant, but
 * that mapping's unmap had been acknowledged before the access: the device
 * used a stale (IOTLB) translation of a possibly reused IOVA.
 */
export type Intent = 'intended' | 'stale' | 'misdirected' | 'faulted' | 'outside' | 'device-local';

/** One device access, judged: how it crossed (verdict) and whether it hit what the driver meant. */
export interface JudgedAccess {
  readonly record: DmaRecord;
  readonly intent: Intent;
  /** Machine frame behind the buffer the driver posted, when the access falls in one. */
  readonly intendedMfn: number | null;
  /** Owner of the frame actually hit (misdirected and outside accesses). */
  readonly owner: string | null;
  readonly ledger: LedgerEntry | null;
}
