// What of the IOMMU survives a restart of its process: the mode, every
// device's page tables and the fault log with its sequence number. In real
// VT-d the tables live in RAM the hypervisor process does not own, so a
// crash of the process does not lose them (nor does it flush IOTLBs).
import { join } from 'node:path';
import type { IommuMode } from '@nestlab/protocol';
import { FAULT_REASONS, type Fault, type FaultLog } from '../faults.js';
import type { LiveMaps } from '../live-maps.js';
import type { PageTables } from '../page-table.js';
import {
  StateJournal,
  type JournalLog,
  type Outbound,
  type StateCodec,
} from '@nestlab/service-kit';

/** [bdf, page, mfn, read, write] */
type PageRow = [string, number, number, boolean, boolean];
/** [bdf, first page, pages] */
type LiveRow = [string, number, number];

export type IommuRecord =
  | { t: 'cfg'; mode: IommuMode }
  | { t: 'map'; bdf: string; page: number; mfns: number[]; r: boolean; w: boolean }
  | { t: 'unmap'; bdf: string; page: number; pages: number }
  | { t: 'fault'; f: Fault }
  | {
      t: 'snap';
      mode: IommuMode;
      pages: PageRow[];
      live: LiveRow[];
      faults: Fault[];
      next: number;
    };

/** The state the journal rebuilds. */
export interface IommuMemory {
  mode: IommuMode;
  readonly tables: PageTables;
  readonly faults: FaultLog;
  readonly live: LiveMaps;
}

/** Records between compactions: the journal stays small with a map/unmap per I/O. */
const COMPACT_EVERY = 20_000;

export const journalPath = (dataDir: string, stack: string) =>
  join(dataDir, `${stack}-iommu.journal`);

export type IommuJournal = StateJournal<IommuRecord, IommuMemory>;

const CODEC: StateCodec<IommuRecord, IommuMemory> = { guard: asRecord, apply, snapshot };

export const IommuJournal = {
  /** Opens the journal and replays it into `mem`; returns how many records were applied. */
  open: (path: string, mem: IommuMemory, log: JournalLog, outbound: Outbound) =>
    StateJournal.open(path, CODEC, mem, log, outbound, COMPACT_EVERY),
};

export function apply(mem: IommuMemory, r: IommuRecord): void {
  switch (r.t) {
    case 'cfg':
      mem.mode = r.mode;
      mem.tables.clear();
      mem.faults.clear();
      mem.live.clear();
      return;
    case 'map':
      mem.tables.map(r.bdf, r.page, r.mfns, r.r, r.w);
      mem.live.add({ bdf: r.bdf, first: r.page, pages: r.mfns.length });
      return;
    case 'unmap':
      mem.tables.unmap(r.bdf, r.page, r.pages);
      mem.live.remove(r.bdf, r.page, r.pages);
      return;
    case 'fault':
      mem.faults.restore(r.f);
      return;
    case 'snap':
      mem.mode = r.mode;
      mem.tables.clear();
      mem.faults.clear();
      mem.live.clear();
      for (const [bdf, page, mfn, read, write] of r.pages)
        mem.tables.map(bdf, page, [mfn], read, write);
      for (const [bdf, first, pages] of r.live) mem.live.add({ bdf, first, pages });
      for (const f of r.faults) mem.faults.restore(f);
      mem.faults.next = r.next;
      return;
  }
}

export function snapshot(mem: IommuMemory): IommuRecord {
  return {
    t: 'snap',
    mode: mem.mode,
    pages: [...mem.tables.entries()].map((e) => [e.bdf, e.page, e.mfn, e.read, e.write]),
    live: mem.live.list().map((m) => [m.bdf, m.first, m.pages]),
    faults: mem.faults.ordered(),
    next: mem.faults.next,
  };
}

// --- validation of what was read back: a record that does not check ends the replay.

const MODES: readonly string[] = ['off', 'passthrough', 'translate'];
const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const isNat = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isStr = (v: unknown): v is string => typeof v === 'string';
const isBool = (v: unknown): v is boolean => typeof v === 'boolean';
const isMode = (v: unknown): v is IommuMode => isStr(v) && MODES.includes(v);
const isArr = <T>(v: unknown, item: (x: unknown) => x is T): v is T[] =>
  Array.isArray(v) && v.every(item);

const isFault = (v: unknown): v is Fault =>
  isObj(v) &&
  isNat(v['seq']) &&
  isStr(v['bdf']) &&
  isStr(v['iova']) &&
  isBool(v['write']) &&
  isNat(v['atMs']) &&
  (FAULT_REASONS as readonly unknown[]).includes(v['reason']);
const isPageRow = (v: unknown): v is PageRow =>
  Array.isArray(v) &&
  v.length === 5 &&
  isStr(v[0]) &&
  isNat(v[1]) &&
  isNat(v[2]) &&
  isBool(v[3]) &&
  isBool(v[4]);
const isLiveRow = (v: unknown): v is LiveRow =>
  Array.isArray(v) && v.length === 3 && isStr(v[0]) && isNat(v[1]) && isNat(v[2]);

export function asRecord(v: unknown): IommuRecord | undefined {
  if (!isObj(v)) return undefined;
  switch (v['t']) {
    case 'cfg':
      return isMode(v['mode']) ? (v as IommuRecord) : undefined;
    case 'map':
      return isStr(v['bdf']) &&
        isNat(v['page']) &&
        isArr(v['mfns'], isNat) &&
        isBool(v['r']) &&
        isBool(v['w'])
        ? (v as IommuRecord)
        : undefined;
    case 'unmap':
      return isStr(v['bdf']) && isNat(v['page']) && isNat(v['pages'])
        ? (v as IommuRecord)
        : undefined;
    case 'fault':
      return isFault(v['f']) ? (v as IommuRecord) : undefined;
    case 'snap':
      return isMode(v['mode']) &&
        isArr(v['pages'], isPageRow) &&
        isArr(v['live'], isLiveRow) &&
        isArr(v['faults'], isFault) &&
        isNat(v['next'])
        ? (v as IommuRecord)
        : undefined;
    default:
      return undefined;
  }
}
