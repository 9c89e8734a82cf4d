// Where misdirected data went: every machine frame a misdirected access hit,
// with its owner (Xen's frame table), and how many reads had their sector
// written into a frame the driver did not mean. A half fix (issue 16, row 5)
// completes every request, so only this says which I/Os lost their data.
import { PAGE_SHIFT, toHex } from '@nestlab/addr';
import type { LedgerEntry } from '@nestlab/protocol';
import type { JudgedAccess } from './judged.js';

/** Hit frames listed one by one; past this many only the total is kept. */
export const MAX_ASTRAY_FRAMES = 64;

export interface Astray {
  /** Hit frames (first MAX_ASTRAY_FRAMES, by machine address), each with its owner. */
  readonly frames: { machine: string; owner: string; accesses: number }[];
  readonly framesTotal: number;
  /** Accesses per owner of the frames hit. */
  readonly byOwner: Record<string, number>;
  /**
   * Reads whose data went astray: distinct posted data buffers (one per read)
   * the device wrote more than a status byte for, into another frame.
   */
  readonly reads: number;
}

export function summarizeAstray(judged: readonly JudgedAccess[]): Astray {
  const frames = new Map<bigint, { owner: string; accesses: number }>();
  const byOwner: Record<string, number> = {};
  const reads = new Set<LedgerEntry>();
  for (const j of judged) {
    if (j.intent !== 'misdirected' || j.record.machine === null) continue;
    const mfn = BigInt(j.record.machine) >> BigInt(PAGE_SHIFT);
    const owner = j.owner ?? 'none';
    const f = frames.get(mfn) ?? { owner, accesses: 0 };
    f.accesses++;
    frames.set(mfn, f);
    byOwner[owner] = (byOwner[owner] ?? 0) + 1;
    // A status byte is a 1-byte write; a sector's data is at least 512 bytes.
    if (j.record.what === 'buffer' && j.record.write && j.record.len > 1 && j.ledger)
      reads.add(j.ledger);
  }
  const sorted = [...frames.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return {
    frames: sorted.slice(0, MAX_ASTRAY_FRAMES).map(([mfn, f]) => ({
      machine: toHex(mfn << BigInt(PAGE_SHIFT)),
      owner: f.owner,
      accesses: f.accesses,
    })),
    framesTotal: frames.size,
    byOwner,
    reads: reads.size,
  };
}
