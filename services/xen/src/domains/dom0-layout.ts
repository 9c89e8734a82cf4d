// Builds dom0's P2M and the frame table on the shape measured on Xen 4.17 +
// Linux 6.1 PV dom0 (docs/DOMAIN.md, "Xen side"), for a 2 GiB machine and dom0_mem=1024M:
//   machine [0, 1M) xen; [0x78000000, 2G) Xen image and heap (xen/free);
//   "Dom0 alloc.: 0x70000000->0x78000000": pseudo [0x100000, 0x8000000) ->
//     machine [0x70100000, 0x78000000) (the first MiB's frames were released
//     by Linux's xen_set_identity_and_remap, so they are free);
//   pseudo hole [0x8000000, 0x832f000) (E820 non-RAM, unmapped);
//   pseudo [0x832f000, 0x3832f000) -> machine [0x40000000, 0x70000000);
//   the rest of dom0 continues downwards: pseudo [0x3832f000, 0x4042f000) ->
//     machine [0x37f00000, 0x40000000) (holds the SWIOTLB at pseudo 0x3a600000);
//   low memory below that: a seeded share xen (heap, frame table), the rest free.
// Other sizes scale the same rules. The seed permutes 2 MiB chunks inside each
// region, so contiguous pfns break at chunk boundaries and seeds differ.
import { DownAllocator } from './down-allocator.js';
import { FrameTable, domOwner } from './frame-table.js';
import {
  FRAME_BYTES,
  GIB_FRAMES,
  MIB_FRAMES,
  alignDown,
  alignUp,
  ramRuns,
  ramTop,
  type FrameRun,
} from './machine-ram.js';
import { P2m } from './p2m.js';
import { mulberry32, permutation, type Rng } from './prng.js';
import { XenError } from '../errors.js';

export interface LayoutConfig {
  readonly present: boolean;
  readonly machineBytes: number;
  readonly dom0Bytes: number;
  readonly seed: number;
}

/** One pseudo-physical region and the machine runs behind it (before permutation). */
export interface LayoutRegion {
  readonly pseudo: FrameRun;
  readonly machine: FrameRun[];
}

export interface Dom0Layout {
  readonly frameTable: FrameTable;
  readonly p2m: P2m;
  readonly regions: LayoutRegion[];
}

const CHUNK = 2 * MIB_FRAMES;
/** Non-RAM pfns after the first region, as measured: [0x8000000, 0x832f000). */
const PSEUDO_HOLE = 0x32f;
/** The first MiB of pseudo space is ISA/BIOS: not RAM for a PV dom0. */
const LOW_MIB = MIB_FRAMES;
/** Bounds on table sizes for huge configurations: P2mGet must fit one message. */
const MAX_DOM0_CHUNKS = 2048;
const MAX_MIX_CHUNKS = 1024;
const MAX_MACHINE_BYTES = 2 ** 46;

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

function checkSizes(cfg: LayoutConfig): { ramFrames: number; dom0Frames: number } {
  const bad = (msg: string) => new XenError('BAD_CONFIG', msg);
  if (cfg.machineBytes % FRAME_BYTES !== 0 || cfg.dom0Bytes % FRAME_BYTES !== 0)
    throw bad('machineBytes and dom0Bytes must be multiples of 4096');
  if (cfg.machineBytes < 16 * 2 ** 20 || cfg.machineBytes > MAX_MACHINE_BYTES)
    throw bad(`machineBytes ${cfg.machineBytes} is outside 16 MiB..64 TiB`);
  if (cfg.dom0Bytes < 4 * 2 ** 20) throw bad(`dom0Bytes ${cfg.dom0Bytes} is below 4 MiB`);
  if (cfg.dom0Bytes > cfg.machineBytes)
    throw bad(`dom0Bytes ${cfg.dom0Bytes} exceeds machineBytes ${cfg.machineBytes}`);
  return { ramFrames: cfg.machineBytes / FRAME_BYTES, dom0Frames: cfg.dom0Bytes / FRAME_BYTES };
}

export function buildDom0Layout(cfg: LayoutConfig): Dom0Layout {
  const { ramFrames, dom0Frames } = checkSizes(cfg);
  const runs = ramRuns(ramFrames);
  const frameTable = new FrameTable(ramTop(ramFrames), 'none');
  for (const r of runs) frameTable.set(r.first, r.count, 'free');
  return cfg.present
    ? xenLayout(cfg, runs, ramFrames, dom0Frames, frameTable)
    : identityLayout(runs, dom0Frames, frameTable);
}

/** No Xen: a plain guest on L0 whose "pseudo-physical" is machine, lowest RAM first. */
function identityLayout(runs: FrameRun[], dom0Frames: number, ft: FrameTable): Dom0Layout {
  const p2m = new P2m();
  const regions: LayoutRegion[] = [];
  let left = dom0Frames;
  for (const r of runs) {
    const n = Math.min(left, r.count);
    if (n <= 0) break;
    p2m.set(r.first, n, r.first);
    ft.set(r.first, n, domOwner(0));
    regions.push({ pseudo: { first: r.first, count: n }, machine: [{ first: r.first, count: n }] });
    left -= n;
  }
  return { frameTable: ft, p2m, regions };
}

function xenLayout(
  cfg: LayoutConfig,
  runs: FrameRun[],
  ramFrames: number,
  dom0Frames: number,
  ft: FrameTable,
): Dom0Layout {
  const rng = mulberry32(cfg.seed);
  const p2m = new P2m();
  const regions: LayoutRegion[] = [];
  ft.set(0, LOW_MIB, 'xen');
  const alloc = new DownAllocator(runs, LOW_MIB);
  const tooBig = () =>
    new XenError(
      'BAD_CONFIG',
      `dom0Bytes ${cfg.dom0Bytes} does not fit beside Xen in machineBytes ${cfg.machineBytes}`,
    );

  // Xen relocates its image and heap to the top of RAM (xen/free mix).
  const topFrames = clamp(alignDown(ramFrames / 16, CHUNK), CHUNK, 128 * MIB_FRAMES);
  const top = alloc.take(topFrames);
  // The contiguous "Dom0 alloc." chunk holding the kernel: pseudo [1M, chunk).
  const allocFrames = clamp(alignDown(dom0Frames / 8, CHUNK), CHUNK, 128 * MIB_FRAMES);
  const first = alloc.take(allocFrames);
  // The rest, downwards, one region per 1 GiB-bounded extent (coarser for huge dom0s).
  const boundary = Math.max(GIB_FRAMES, 2 ** Math.ceil(Math.log2(dom0Frames / 16)));
  const rest = alloc.take(dom0Frames - (allocFrames - LOW_MIB), boundary);
  if (!top || !first || !rest) throw tooBig();

  mixOwners(ft, top, 0.5, rng);
  const chunk = Math.max(CHUNK, alignUp(Math.ceil(dom0Frames / MAX_DOM0_CHUNKS), CHUNK));
  const firstRuns = dropLow(ascending(first), LOW_MIB);
  regions.push(mapRegion(p2m, ft, LOW_MIB, firstRuns, chunk, rng));
  let pseudo = allocFrames + PSEUDO_HOLE;
  for (const extent of rest) {
    regions.push(mapRegion(p2m, ft, pseudo, [extent], chunk, rng));
    pseudo += extent.count;
  }
  mixOwners(ft, alloc.remaining(), 0.25, rng);
  return { frameTable: ft, p2m, regions };
}

const ascending = (runs: FrameRun[]) => [...runs].sort((a, b) => a.first - b.first);

/** Drops the lowest `n` frames of a run list (the released first MiB). */
function dropLow(runs: FrameRun[], n: number): FrameRun[] {
  const out: FrameRun[] = [];
  let skip = n;
  for (const r of runs) {
    const s = Math.min(skip, r.count);
    skip -= s;
    if (r.count > s) out.push({ first: r.first + s, count: r.count - s });
  }
  return out;
}

/**
 * Maps pseudo [pseudoFirst, +total) onto the machine runs, chunk by chunk in a
 * seeded order: pseudo chunk c lands at the machine offset where the
 * permutation puts it, so the machine set is the region's but the order is not.
 */
function mapRegion(
  p2m: P2m,
  ft: FrameTable,
  pseudoFirst: number,
  machine: FrameRun[],
  chunk: number,
  rng: Rng,
): LayoutRegion {
  const total = machine.reduce((s, r) => s + r.count, 0);
  const n = Math.ceil(total / chunk);
  const sizeOf = (c: number) => (c === n - 1 ? total - (n - 1) * chunk : chunk);
  const order = permutation(n, rng);
  const machineOffset = new Array<number>(n).fill(0);
  let at = 0;
  for (const c of order) {
    machineOffset[c] = at;
    at += sizeOf(c);
  }
  for (let c = 0; c < n; c++) {
    let pfn = pseudoFirst + c * chunk;
    for (const piece of machineSpans(machine, machineOffset[c]!, sizeOf(c))) {
      p2m.set(pfn, piece.count, piece.first);
      pfn += piece.count;
    }
  }
  for (const r of machine) ft.set(r.first, r.count, domOwner(0));
  return { pseudo: { first: pseudoFirst, count: total }, machine };
}

/** The machine frames at [offset, offset + count) of a run list, as runs. */
function machineSpans(runs: FrameRun[], offset: number, count: number): FrameRun[] {
  const out: FrameRun[] = [];
  let skip = offset;
  let left = count;
  for (const r of runs) {
    if (left <= 0) break;
    if (skip >= r.count) {
      skip -= r.count;
      continue;
    }
    const n = Math.min(left, r.count - skip);
    out.push({ first: r.first + skip, count: n });
    left -= n;
    skip = 0;
  }
  return out;
}

/** Gives a seeded share of chunks of `runs` to Xen; the rest stays free. */
function mixOwners(ft: FrameTable, runs: FrameRun[], xenShare: number, rng: Rng): void {
  for (const r of runs) {
    const chunk = Math.max(CHUNK, alignUp(Math.ceil(r.count / MAX_MIX_CHUNKS), CHUNK));
    for (let at = r.first; at < r.first + r.count; at += chunk) {
      if (rng() < xenShare) ft.set(at, Math.min(chunk, r.first + r.count - at), 'xen');
    }
  }
}
