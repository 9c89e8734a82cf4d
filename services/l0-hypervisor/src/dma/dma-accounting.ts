// The bookkeeping half of a device access: every page span logged as a
// DmaRecord, traced within the request's budget, counted in the metrics
// (batched per event-loop turn). Nothing here decides where an access goes.
import type { BusAddr, MachineAddr } from '@nestlab/addr';
import type { DmaRecord, DmaVerdict } from '@nestlab/protocol';
import { DMA_VERDICTS, sharedClockMs } from '@nestlab/protocol';
import type { L0Metrics } from '../metrics.js';
import { TurnCounts } from '../turn-counts.js';
import type { DmaAccessFields, DmaLog } from './dma-log.js';
import type { DmaSpanOutcome, DmaTracer, TraceBudget } from './dma-trace.js';

export const WHATS = ['desc', 'indirect', 'avail', 'used', 'buffer', 'rogue'] as const;
export type DmaWhat = (typeof WHATS)[number];
const VERDICTS = DMA_VERDICTS;

/** Who made the access and under which request span. */
export interface AccessLabel {
  readonly bdf: string;
  readonly what: DmaWhat;
  readonly write: boolean;
  readonly budget: TraceBudget | undefined;
}

/** One span's outcome as the engine reports it. */
export interface SpanOutcome extends DmaSpanOutcome {
  readonly bus: BusAddr;
  readonly len: number;
  readonly verdict: DmaVerdict;
  readonly fault: string | undefined;
  readonly machine: MachineAddr | null;
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

/** The access's records, read back from the log by seq when first asked for. */
class Result implements DmaResult {
  private formatted: DmaRecord[] | undefined;
  constructor(
    readonly ok: boolean,
    readonly data: Uint8Array,
    private readonly log: DmaLog,
    private readonly seqs: readonly number[],
    readonly fault?: string,
  ) {}
  get records(): DmaRecord[] {
    return (this.formatted ??= this.seqs.flatMap((s) => this.log.record(s) ?? []));
  }
}

export class DmaAccounting {
  /** Access counts by verdict × what, and fault counts by code, in the metrics once per turn. */
  private readonly accesses = new TurnCounts<number>((k, n) => {
    const verdict = VERDICTS[Math.floor(k / WHATS.length)] ?? 'faulted';
    const what = WHATS[k % WHATS.length] ?? 'rogue';
    this.metrics.dmaAccesses.inc({ verdict, what }, n);
  });
  private readonly faults = new TurnCounts<string>((code, n) =>
    this.metrics.dmaFaults.inc({ code }, n),
  );
  /** Filled again for every access and copied into the log: no object per access. */
  private readonly row: DmaAccessFields = {
    bdf: '',
    what: 'rogue',
    write: false,
    bus: 0n,
    len: 0,
    machine: null,
    hostPhys: null,
    verdict: 'faulted',
    fault: undefined,
    traceId: undefined,
    spanId: undefined,
    at: undefined,
  };

  constructor(
    private readonly log: DmaLog,
    private readonly metrics: L0Metrics,
    private readonly tracer: DmaTracer,
  ) {}

  /** A finished access's result; its records come from the log when asked for. */
  result(ok: boolean, data: Uint8Array, seqs: readonly number[], fault?: string): DmaResult {
    return new Result(ok, data, this.log, seqs, fault);
  }

  /** Logs, counts and traces one span's outcome; returns its seq in the log. */
  record(a: AccessLabel, o: SpanOutcome): number {
    const ids = this.tracer.record(a.budget, a.what, a.write, o);
    this.count(o.verdict, a.what, o.fault);
    const row = this.row;
    row.bdf = a.bdf;
    row.what = a.what;
    row.write = a.write;
    row.bus = o.bus;
    row.len = o.len;
    row.machine = o.machine;
    row.hostPhys = o.host;
    row.verdict = o.verdict;
    row.fault = o.fault;
    row.traceId = ids.traceId;
    row.spanId = ids.traceId ? ids.spanId : undefined;
    row.at = sharedClockMs();
    return this.log.push(row);
  }

  /** Counters are bumped once per turn of the event loop, not once per 4 KiB access. */
  private count(verdict: DmaVerdict, what: DmaWhat, fault: string | undefined): void {
    this.accesses.add(VERDICTS.indexOf(verdict) * WHATS.length + WHATS.indexOf(what));
    if (fault) this.faults.add(fault);
  }

  /** Moves the pending access counts into the metrics now (the end of the turn does it anyway). */
  flushCounts(): void {
    this.accesses.flush();
    this.faults.flush();
  }
}
