// What of Xen survives a restart of its process: the last configuration and
// everything the domains did since (exchanges, P2M moves, MSI bindings,
// IOMMU mappings). A real Xen keeps these in memory that a dom0 relies on
// after probe; the emulation keeps them in a journal so a respawned process
// answers exactly as before.
import { join } from 'node:path';
import { domOwner, type Owner } from '../domains/frame-table.js';
import { applyExchange } from '../domains/exchange.js';
import type { DmaMap } from '../domains/dma-maps.js';
import { mfnsOwnedBy } from '../domains/ownership.js';
import { XenState, type XenConfig } from '../domains/xen-state.js';
import type { Binding, EventChannels } from '../handlers/irq.js';
import {
  StateJournal,
  type JournalLog,
  type Outbound,
  type StateCodec,
} from '@nestlab/service-kit';

interface Run {
  first: number;
  count: number;
  owner: Owner;
}
interface Range {
  pfn: number;
  mfn: number;
  count: number;
}

export type XenRecord =
  | { t: 'cfg'; config: XenConfig }
  | { t: 'xchg'; domain: number; pfns: number[]; mfnFirst: number }
  | { t: 'move'; domain: number; pfn: number; from: number; to: number }
  | { t: 'bind'; domain: number; bdf: string; vector: number }
  | { t: 'map'; m: DmaMap }
  | { t: 'unmap'; bdf: string; iova: string; pages: number }
  | {
      t: 'snap';
      config: XenConfig;
      p2m: { domain: number; ranges: Range[] }[];
      frames: Run[];
      bindings: Binding[];
      maps: DmaMap[];
    };

/** The state the journal rebuilds. */
export interface XenMemory {
  current: XenState | undefined;
  readonly evtchn: EventChannels;
}

const COMPACT_EVERY = 20_000;

export const journalPath = (dataDir: string, stack: string) =>
  join(dataDir, `${stack}-xen.journal`);

export type XenJournal = StateJournal<XenRecord, XenMemory>;

const CODEC: StateCodec<XenRecord, XenMemory> = { guard: asRecord, apply, snapshot };

export const XenJournal = {
  /** Opens the journal and replays it into `mem`; returns how many records were applied. */
  open: (path: string, mem: XenMemory, log: JournalLog, outbound: Outbound) =>
    StateJournal.open(path, CODEC, mem, log, outbound, COMPACT_EVERY),
};

/** Moves one pfn to another machine frame (P2M, M2P and ownership). */
export function movePfn(
  state: XenState,
  r: { domain: number; pfn: number; from: number; to: number },
) {
  state.domain(r.domain).p2m.set(r.pfn, 1, r.to);
  state.frameTable.set(r.to, 1, domOwner(r.domain));
  state.frameTable.set(r.from, 1, 'free');
}

/** Applies one record; also used for the live P2M move of the p2m-change fault. */
export function apply(mem: XenMemory, r: XenRecord): void {
  if (r.t === 'cfg' || r.t === 'snap') {
    mem.current = new XenState(r.config);
    mem.evtchn.clear();
    if (r.t === 'cfg') return;
    const state = mem.current;
    for (const { domain, ranges } of r.p2m) {
      const { p2m } = state.domain(domain);
      p2m.unset(0, Number.MAX_SAFE_INTEGER);
      for (const x of ranges) p2m.set(x.pfn, x.count, x.mfn);
    }
    for (const run of r.frames) state.frameTable.set(run.first, run.count, run.owner);
    for (const b of r.bindings) mem.evtchn.restore(b);
    for (const m of r.maps) state.dmaMaps.add(m);
    return;
  }
  const state = mem.current;
  if (!state) throw new Error(`journal record ${r.t} before any configuration`);
  switch (r.t) {
    case 'xchg': {
      const oldMfns = mfnsOwnedBy(state, r.domain, r.pfns);
      applyExchange(state, { domain: r.domain, pfns: r.pfns, oldMfns, mfnFirst: r.mfnFirst });
      return;
    }
    case 'move':
      movePfn(state, r);
      return;
    case 'bind':
      mem.evtchn.bind(r.domain, r.bdf, r.vector);
      return;
    case 'map':
      state.dmaMaps.add(r.m);
      return;
    case 'unmap':
      state.dmaMaps.remove(r.bdf, r.iova, r.pages);
      return;
  }
}

export function snapshot(mem: XenMemory): XenRecord | undefined {
  const state = mem.current;
  if (!state) return undefined;
  return {
    t: 'snap',
    config: state.config,
    p2m: [...state.domains.values()].map((d) => ({
      domain: d.id,
      ranges: d.p2m.all().map((x) => ({ ...x })),
    })),
    frames: state.frameTable.runs(),
    bindings: mem.evtchn.list(),
    maps: state.dmaMaps.list(),
  };
}

// --- validation of what was read back: a record that does not check ends the replay.

const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isNat = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isStr = (v: unknown): v is string => typeof v === 'string';
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isArr = <T>(v: unknown, item: (x: unknown) => x is T): v is T[] =>
  Array.isArray(v) && v.every(item);
const has = (v: Record<string, unknown>, checks: Record<string, (x: unknown) => boolean>) =>
  Object.entries(checks).every(([k, check]) => check(v[k]));

const isConfig = (v: unknown): v is XenConfig =>
  isObj(v) &&
  has(v, {
    present: isBool,
    machineBytes: isNat,
    dom0Bytes: isNat,
    seed: isNat,
    passthrough: (x) => isArr(x, isStr),
  });
const isOwner = (v: unknown): v is Owner =>
  isStr(v) && (v === 'xen' || v === 'free' || v === 'none' || /^dom\d+$/.test(v));
const isRun = (v: unknown): v is Run =>
  isObj(v) && has(v, { first: isNat, count: isNat, owner: isOwner });
const isRange = (v: unknown): v is Range =>
  isObj(v) && has(v, { pfn: isNat, mfn: isNat, count: isNat });
const isBinding = (v: unknown): v is Binding =>
  isObj(v) && has(v, { bdf: isStr, vector: isNat, domain: isNat, port: isNat });
const isMap = (v: unknown): v is DmaMap =>
  isObj(v) &&
  has(v, {
    domain: isNat,
    bdf: isStr,
    iova: (x) => isStr(x) && /^0x[0-9a-f]+$/.test(x),
    pfns: (x) => isArr(x, isNat),
    mfns: (x) => isArr(x, isNat),
    write: isBool,
  });
const isP2m = (v: unknown): v is { domain: number; ranges: Range[] } =>
  isObj(v) && has(v, { domain: isNat, ranges: (x) => isArr(x, isRange) });

const CHECKS: Record<XenRecord['t'], Record<string, (x: unknown) => boolean>> = {
  cfg: { config: isConfig },
  xchg: { domain: isNat, pfns: (x) => isArr(x, isNat), mfnFirst: isNat },
  move: { domain: isNat, pfn: isNat, from: isNat, to: isNat },
  bind: { domain: isNat, bdf: isStr, vector: isNat },
  map: { m: isMap },
  unmap: { bdf: isStr, iova: isStr, pages: isNat },
  snap: {
    config: isConfig,
    p2m: (x) => isArr(x, isP2m),
    frames: (x) => isArr(x, isRun),
    bindings: (x) => isArr(x, isBinding),
    maps: (x) => isArr(x, isMap),
  },
};

export function asRecord(v: unknown): XenRecord | undefined {
  if (!isObj(v) || !isStr(v['t']) || !Object.hasOwn(CHECKS, v['t'])) return undefined;
  return has(v, CHECKS[v['t'] as XenRecord['t']]) ? (v as XenRecord) : undefined;
}
