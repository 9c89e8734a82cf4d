import { PAGE_SHIFT, PAGE_SIZE } from '@nestlab/addr';
import type { DmaRecord, FrameMove, LedgerEntry } from '@nestlab/protocol';
import { summarizeAstray, type Astray } from './astray.js';
import type { Intent, JudgedAccess } from './judged.js';

export type { Intent, JudgedAccess } from './judged.js';

export interface OracleVerdict {
  readonly counts: {
    total: number;
    translated: number;
    bypassed: number;
    direct: number;
    intended: number;
    misdirected: number;
    /** Of those, accesses to the rings (descriptors, indirect tables, avail, used). */
    misdirectedRing: number;
    /** Accesses through a mapping already unmapped (and acknowledged) when they happened. */
    stale: number;
    faulted: number;
    /** Accesses at bus addresses no mapping of the driver covers (rogue or wild). */
    outside: number;
    /** The device touching its own memory (rings in its BAR): no DMA, judged apart. */
    deviceLocal: number;
  };
  readonly firstMisdirected: JudgedAccess | null;
  readonly firstStale: JudgedAccess | null;
  readonly firstFaulted: JudgedAccess | null;
  readonly firstOutside: JudgedAccess | null;
  /** The frames misdirected accesses hit, with owners, and the reads whose data went there. */
  readonly astray: Astray;
  /** Accesses worth showing in a trace: the first wrong ones, else a few right ones. */
  readonly notable: readonly JudgedAccess[];
}

export type OwnerLookup = (mfns: number[]) => Promise<string[]>;

/**
 * Finds every posted region that contains a bus address. IOVAs and bounce
 * slots are reused across I/Os, so a bus address has had many mappings; the
 * access's time and each mapping's lifetime (one shared clock) say which of
 * them were live when it happened.
 */
class LedgerIndex {
  private readonly byPage = new Map<bigint, LedgerEntry[]>();
  constructor(ledger: readonly LedgerEntry[]) {
    for (const entry of ledger) {
      const start = BigInt(entry.bus);
      const end = start + BigInt(Math.max(1, entry.len));
      for (let page = start >> PAGE_BITS; page <= (end - 1n) >> PAGE_BITS; page++) {
        const list = this.byPage.get(page) ?? [];
        list.push(entry);
        this.byPage.set(page, list);
      }
    }
  }
  candidates(bus: bigint): LedgerEntry[] {
    return (this.byPage.get(bus >> PAGE_BITS) ?? []).filter(
      (e) => bus >= BigInt(e.bus) && bus < BigInt(e.bus) + BigInt(e.len),
    );
  }
}
const PAGE_BITS = BigInt(PAGE_SHIFT);

/**
 * Whether a mapping was live at `at`: mapped, and its unmap not yet
 * acknowledged. Without times (an older service) every mapping counts as live.
 */
function liveAt(e: LedgerEntry, at: number | undefined): boolean {
  if (at === undefined) return true;
  return (
    (e.mappedAt === undefined || e.mappedAt <= at) &&
    (e.unmappedAt === undefined || at < e.unmappedAt)
  );
}

/** dom0's frame moves (Xen's p2m-change) by pfn, oldest first. */
type MovesByPfn = ReadonlyMap<number, readonly FrameMove[]>;

function movesByPfn(moves: readonly FrameMove[]): MovesByPfn {
  const out = new Map<number, FrameMove[]>();
  for (const m of [...moves].sort((a, b) => a.at - b.at)) {
    if (m.domain !== 0) continue; // the ledger is dom0's
    const list = out.get(m.pfn) ?? [];
    list.push(m);
    out.set(m.pfn, list);
  }
  return out;
}

/**
 * The machine frame behind the buffer at `bus` when the access happened: the
 * ledger holds the frame of mapping time; a move of that pfn since (Xen
 * changed the P2M under the mapping) means the buffer's frame is the new one,
 * and an access to the old frame no longer reaches the buffer.
 */
function intendedMfn(
  entry: LedgerEntry,
  bus: bigint,
  at: number | undefined,
  moves: MovesByPfn,
): number | null {
  const pseudo = BigInt(entry.pseudo) + (bus - BigInt(entry.bus));
  const pfn = Number(pseudo >> BigInt(PAGE_SHIFT));
  const page = pfn - Number(BigInt(entry.pseudo) >> BigInt(PAGE_SHIFT));
  let mfn = entry.mfns[page] ?? null;
  if (mfn === null || at === undefined) return mfn;
  // A stale translation keeps the frame of its unmap: later moves are not its.
  const until = Math.min(at, entry.unmappedAt ?? Infinity);
  for (const m of moves.get(pfn) ?? []) {
    if (m.at >= until) break;
    if (m.at >= (entry.mappedAt ?? 0) && m.from === mfn) mfn = m.to;
  }
  return mfn;
}

/**
 * Classifies every device memory access: translated / bypass / direct by the
 * DMA engine's verdict, and intended / misdirected / faulted by comparing the
 * machine frame it hit with the frame behind the buffer the driver posted
 * when it happened (after any `moves` of its pfn: an access to the frame a
 * pfn left is misdirected). A misdirected access names the owner of the
 * frame it hit (Xen's frame table).
 */
export async function judge(
  records: readonly DmaRecord[],
  ledger: readonly LedgerEntry[],
  owners: OwnerLookup,
  moves: readonly FrameMove[] = [],
): Promise<OracleVerdict> {
  const index = new LedgerIndex(ledger);
  const moved = movesByPfn(moves);
  const prelim = records.map((record) => {
    if (record.verdict === 'device-local') {
      const intent: Intent = 'device-local';
      return { record, intent, intendedMfn: null, ledger: null, hitMfn: null };
    }
    if (record.verdict === 'faulted' || record.machine === null) {
      return { record, intent: 'faulted' as Intent, intendedMfn: null, ledger: null, hitMfn: null };
    }
    const bus = BigInt(record.bus);
    const hitMfn = Number(BigInt(record.machine) >> BigInt(PAGE_SHIFT));
    const candidates = index.candidates(bus);
    if (candidates.length === 0) {
      return { record, intent: 'outside' as Intent, intendedMfn: null, ledger: null, hitMfn };
    }
    const mfnOf = (e: LedgerEntry) => intendedMfn(e, bus, record.at, moved);
    const hits = (e: LedgerEntry) => mfnOf(e) === hitMfn;
    const live = candidates.filter((e) => liveAt(e, record.at));
    const match = live.find(hits);
    // An access that hit the very frame a live mapping was made with went through
    // that mapping, not a stale one: when Xen has since moved the pfn
    // (p2m-change) it is misdirected, whatever an unmapped mapping of the same
    // address once meant.
    const throughLive =
      !match && live.some((e) => intendedMfn(e, bus, undefined, moved) === hitMfn);
    const stale =
      match || throughLive ? undefined : candidates.find((e) => !liveAt(e, record.at) && hits(e));
    const entry =
      match ?? stale ?? live[live.length - 1] ?? candidates[candidates.length - 1] ?? null;
    const want = entry ? mfnOf(entry) : null;
    const intent: Intent = match ? 'intended' : stale ? 'stale' : 'misdirected';
    return { record, intent, intendedMfn: want, ledger: entry, hitMfn };
  });
  const needOwner = [
    ...new Set(
      prelim
        .filter((p) => p.hitMfn !== null && p.intent !== 'intended' && p.intent !== 'faulted')
        .map((p) => p.hitMfn as number),
    ),
  ];
  const ownerOf = new Map<number, string>();
  for (let i = 0; i < needOwner.length; i += 65536) {
    const chunk = needOwner.slice(i, i + 65536);
    const got = await owners(chunk);
    chunk.forEach((mfn, j) => ownerOf.set(mfn, got[j] ?? 'none'));
  }
  const judged: JudgedAccess[] = prelim.map((p) => ({
    record: p.record,
    intent: p.intent,
    intendedMfn: p.intendedMfn,
    ledger: p.ledger,
    owner: p.hitMfn !== null && p.intent !== 'intended' ? (ownerOf.get(p.hitMfn) ?? null) : null,
  }));
  const count = (f: (j: JudgedAccess) => boolean) => judged.filter(f).length;
  return {
    counts: {
      total: judged.length,
      translated: count((j) => j.record.verdict === 'translated'),
      bypassed: count((j) => j.record.verdict === 'bypass'),
      direct: count((j) => j.record.verdict === 'direct'),
      intended: count((j) => j.intent === 'intended'),
      misdirected: count((j) => j.intent === 'misdirected'),
      misdirectedRing: count((j) => j.intent === 'misdirected' && j.record.what !== 'buffer'),
      stale: count((j) => j.intent === 'stale'),
      faulted: count((j) => j.intent === 'faulted'),
      outside: count((j) => j.intent === 'outside'),
      deviceLocal: count((j) => j.intent === 'device-local'),
    },
    firstMisdirected: judged.find((j) => j.intent === 'misdirected') ?? null,
    firstStale: judged.find((j) => j.intent === 'stale') ?? null,
    firstFaulted: judged.find((j) => j.intent === 'faulted') ?? null,
    firstOutside: judged.find((j) => j.intent === 'outside') ?? null,
    astray: summarizeAstray(judged),
    notable: [
      ...judged.filter((j) => j.intent !== 'intended' && j.intent !== 'device-local').slice(0, 16),
      ...judged.filter((j) => j.intent === 'intended').slice(0, 4),
    ].slice(0, 16),
  };
}

export const FRAME_BYTES = PAGE_SIZE;
