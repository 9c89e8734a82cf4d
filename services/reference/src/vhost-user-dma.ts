// nestlab's side of a vhost-user run: the DMA log the back-end wrote (one
// JSON DmaRecord a line, validated here as any message is on receipt), its
// summary, and the ring as the device used it beside where the driver put it.
import { existsSync, readFileSync } from 'node:fs';
import { DmaRecord, validator } from '@nestlab/protocol';
import { hex, num, type GuestFacts } from './console-parse.js';

const dmaRecord = validator(DmaRecord);
/** Bad lines named in the report before the rest are only counted. */
const BAD_LINES_NAMED = 3;

export interface DmaLogRead {
  records: DmaRecord[];
  /** Lines that were not a DmaRecord (named, then counted). */
  errors: string[];
}

export function readDmaLog(path: string): DmaLogRead {
  const out: DmaLogRead = { records: [], errors: [] };
  if (!existsSync(path)) return out;
  let bad = 0;
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line) return;
      try {
        out.records.push(dmaRecord.parse(JSON.parse(line), `DMA log line ${i + 1}`));
      } catch (e) {
        if (++bad <= BAD_LINES_NAMED) out.errors.push((e as Error).message);
      }
    });
  if (bad > BAD_LINES_NAMED) out.errors.push(`${bad - BAD_LINES_NAMED} more bad DMA log lines`);
  return out;
}

export interface DmaSummary {
  records: number;
  byVerdict: Record<string, number>;
  byWhat: Record<string, number>;
  /** Buffer bytes the device read from guest RAM (the guest's writes) and wrote into it (its reads). */
  bufferBytesRead: number;
  bufferBytesWritten: number;
  /** The first distinct traces that moved buffer bytes (one per kick that had I/O), to browse them. */
  traceIds: string[];
}

const TRACE_IDS_KEPT = 64;

export function summarizeDma(records: readonly DmaRecord[]): DmaSummary {
  const s: DmaSummary = {
    records: 0,
    byVerdict: {},
    byWhat: {},
    bufferBytesRead: 0,
    bufferBytesWritten: 0,
    traceIds: [],
  };
  for (const r of records) {
    s.records++;
    const io = r.what === 'buffer' && r.traceId;
    if (io && s.traceIds.length < TRACE_IDS_KEPT && !s.traceIds.includes(io)) s.traceIds.push(io);
    s.byVerdict[r.verdict] = (s.byVerdict[r.verdict] ?? 0) + 1;
    s.byWhat[r.what] = (s.byWhat[r.what] ?? 0) + 1;
    if (r.what === 'buffer' && r.verdict !== 'faulted') {
      if (r.write) s.bufferBytesWritten += r.len;
      else s.bufferBytesRead += r.len;
    }
  }
  return s;
}

/** The ring addresses QEMU passed in the last SET_VRING_ADDR, as the back-end logged them. */
export interface VringAddr {
  desc: string;
  avail: string;
  used: string;
  /** guest-physical (with Xen: machine addresses) or iova (behind the vIOMMU). */
  space: string;
}

export function lastVringAddr(backendLines: readonly string[]): VringAddr | null {
  let last: VringAddr | null = null;
  for (const l of backendLines) {
    const m =
      /vring 0 addr desc (0x[0-9a-f]+) avail (0x[0-9a-f]+) used (0x[0-9a-f]+) \(([a-z-]+)\)/.exec(
        l,
      );
    if (m?.[1] && m[2] && m[3] && m[4]) last = { desc: m[1], avail: m[2], used: m[3], space: m[4] };
  }
  return last;
}

export interface RingView {
  queueSize: number | null;
  /** What the reference module printed: its ring's pseudo-physical and machine address, and what it wrote in QUEUE_PFN. Null with the stock driver. */
  driver: {
    pseudo: string | null;
    machine: string | null;
    given: string | null;
    givenOwner: string | null;
  } | null;
  /** Where the device was told the ring is (SET_VRING_ADDR). */
  device: VringAddr | null;
  /** The device's reads of avail.idx at that ring: the machine address, its verdict, how often. */
  availIdx: { bus: string; machine: string | null; verdict: string; reads: number } | null;
  /** Where the driver published avail.idx, in machine memory. */
  driverAvailIdx: string | null;
}

const AVAIL_IDX_OFFSET = 2n; // struct vring_avail { le16 flags; le16 idx; … }
const DESC_BYTES = 16n;
const PAGE_BYTES = 4096n;

export function ringView(
  facts: GuestFacts,
  backendLines: readonly string[],
  records: readonly DmaRecord[],
  defaultQueueSize: number,
): RingView {
  const module = facts.has('ring.given');
  const queueSize = num(facts, 'queue.size') ?? defaultQueueSize;
  const device = lastVringAddr(backendLines);
  const driverMachine = facts.get('ring.machine') ?? null;
  let availIdx: RingView['availIdx'] = null;
  if (device) {
    const at = BigInt(device.avail) + AVAIL_IDX_OFFSET;
    const reads = records.filter((r) => r.what === 'avail' && !r.write && BigInt(r.bus) === at);
    const first = reads[0];
    if (first)
      availIdx = {
        bus: first.bus,
        machine: first.machine,
        verdict: first.verdict,
        reads: reads.length,
      };
  }
  return {
    queueSize,
    driver: module
      ? {
          pseudo: facts.get('ring.pseudo') ?? null,
          machine: driverMachine,
          given: facts.get('ring.given') ?? null,
          givenOwner: facts.get('ring.given.owner') ?? null,
        }
      : null,
    device,
    availIdx,
    driverAvailIdx: module && driverMachine ? driverAvailIdx(driverMachine, queueSize) : null,
  };
}

/**
 * Legacy layout (virtio 1.0 §2.4.2): avail follows the descriptor table. The
 * module printed the machine address of the ring's first page only, so past
 * that page (queues over 255) the machine address is not known.
 */
function driverAvailIdx(ringMachine: string, queueSize: number): string | null {
  const offset = DESC_BYTES * BigInt(queueSize) + AVAIL_IDX_OFFSET;
  return offset < PAGE_BYTES ? hex(BigInt(ringMachine) + offset) : null;
}

/**
 * The back-end's L0 metrics (Prometheus text, `--metrics`): each nestlab_l0_
 * series and its value, without the stack label every series carries.
 */
export function readMetrics(path: string): Record<string, number> {
  const out: Record<string, number> = {};
  if (!existsSync(path)) return out;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^(nestlab_l0_\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m?.[1] || m[3] === undefined) continue;
    const labels = (m[2] ?? '')
      .split(',')
      .filter((l) => l && !l.startsWith('stack='))
      .join(',');
    const value = Number(m[3]);
    if (Number.isFinite(value)) out[labels ? `${m[1]}{${labels}}` : m[1]] = value;
  }
  return out;
}

/** Each metric's total over its series (nestlab_l0_ and _total dropped), non-zero ones only. */
export function metricTotals(series: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [key, v] of Object.entries(series)) {
    const name = key
      .replace(/\{.*$/, '')
      .replace(/^nestlab_l0_/, '')
      .replace(/_total$/, '');
    if (v) out[name] = (out[name] ?? 0) + v;
  }
  return out;
}
