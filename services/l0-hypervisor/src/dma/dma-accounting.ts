// The bookkeeping half of a device access: every page span logged as a
// DmaRecord, traced within the request's budget, counted in the metrics
// (batched per event-loop turn). Nothing here decides where an access goes.
import type { BusAddr, MachineAddr, Translation } from '@nestlab/addr';
import type { DmaRecord, DmaVerdict } from '@nestlab/protocol';
import { sharedClockMs } from '@nestlab/protocol';
import type { L0Metrics } from '../metrics.js';
import { atEndOfTurn } from '../turn.js';
import { formatDmaRecord, type DmaLog, type RawDmaRecord } from './dma-log.js';
import type { DmaTracer, TraceBudget } from './dma-trace.js';

export const WHATS = ['desc', 'indirect', 'avail', 'used', 'buffer', 'rogue'] as const;
export type DmaWhat = (typeof WHATS)[number];
const VERDICTS: readonly DmaVerdict[] = [
  'translated',
  'bypass',
  'direct',
  'faulted',
  'device-local',
];

export type Logged = { seq: number; raw: RawDmaRecord };

/** Who made the access and under which request span. */
export interface AccessLabel {
  readonly bdf: string;
  readonly what: DmaWhat;
  readonly write: boolean;
  readonly budget: TraceBudget | undefined;
}

/** One span's outcome as the engine reports it. */
export interface SpanOutcome {
  readonly bus: BusAddr;
  readonly len: number;
  readonly verdict: DmaVerdict;
  readonly fault: string | undefined;
  readonly tr: Translation<MachineAddr> | null;
  readonly host: bigint | null;
  readonly startedAt: number;
}

export interface DmaResult {
  readonly ok: boolean;
  /** Bytes read (reads only; partial up to the failing span). */
  readonly data: Uint8Array;
  /** The logged records of this access (formatted on first use: the ring path never asks). */
  readonly records: DmaRecord[];
  /** Code of the first failing span. */
  readonly fault?: string;
}

class Result implements DmaResult {
  private formatted: DmaRecord[] | undefined;
  constructor(
    readonly ok: boolean,
    readonly data: Uint8Array,
    private readonly logged: readonly Logged[],
    readonly fault?: string,
  ) {}
  get records(): DmaRecord[] {
    return (this.formatted ??= this.logged.map((l) => formatDmaRecord(l.seq, l.raw)));
  }
}

export const dmaResult = (
  ok: boolean,
  data: Uint8Array,
  logged: readonly Logged[],
  fault?: string,
): DmaResult => new Result(ok, data, logged, fault);

export class DmaAccounting {
  private readonly pending: number[] = new Array<number>(VERDICTS.length * WHATS.length).fill(0);
  private readonly faults = new Map<string, number>();
  private flushQueued = false;

  constructor(
    private readonly log: DmaLog,
    private readonly metrics: L0Metrics,
    private readonly tracer: DmaTracer,
  ) {}

  /** Logs, counts and traces one span's outcome. */
  record(a: AccessLabel, o: SpanOutcome): Logged {
    const machine = o.tr?.ok ? o.tr.addr : null;
    const ids = this.tracer.record(a.budget, () => ({
      what: a.what,
      write: a.write,
      bus: o.bus,
      machine,
      host: o.host,
      verdict: o.verdict,
      fault: o.fault,
      by: o.tr?.step.by,
      fn: o.tr?.step.fn,
      startedAt: o.startedAt,
    }));
    this.count(o.verdict, a.what, o.fault);
    const raw: RawDmaRecord = {
      bdf: a.bdf,
      what: a.what,
      write: a.write,
      bus: o.bus,
      len: o.len,
      machine,
      hostPhys: o.host,
      verdict: o.verdict,
      ...(o.fault ? { fault: o.fault } : {}),
      ...(ids.traceId ? { traceId: ids.traceId, spanId: ids.spanId } : {}),
      at: sharedClockMs(),
    };
    return { seq: this.log.appendRaw(raw), raw };
  }

  /** Counters are bumped once per turn of the event loop, not once per 4 KiB access. */
  private count(verdict: DmaVerdict, what: DmaWhat, fault: string | undefined): void {
    const k = VERDICTS.indexOf(verdict) * WHATS.length + WHATS.indexOf(what);
    this.pending[k] = (this.pending[k] ?? 0) + 1;
    if (fault) this.faults.set(fault, (this.faults.get(fault) ?? 0) + 1);
    if (this.flushQueued) return;
    this.flushQueued = true;
    atEndOfTurn(() => this.flushCounts());
  }

  /** Moves the pending access counts into the metrics. */
  flushCounts(): void {
    this.flushQueued = false;
    this.pending.forEach((n, k) => {
      if (!n) return;
      const verdict = VERDICTS[Math.floor(k / WHATS.length)] ?? 'faulted';
      const what = WHATS[k % WHATS.length] ?? 'rogue';
      this.metrics.dmaAccesses.inc({ verdict, what }, n);
    });
    this.pending.fill(0);
    for (const [code, n] of this.faults) this.metrics.dmaFaults.inc({ code }, n);
    this.faults.clear();
  }
}
