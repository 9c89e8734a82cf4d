import { randomFillSync } from 'node:crypto';
import { SamplingDecision, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace';
import {
  TraceFlags,
  isSpanContextValid,
  trace,
  type Attributes,
  type Context,
  type Span,
} from '@opentelemetry/api';
import { ATTR } from './attributes.js';

/**
 * I/O traces one run records by default. Enough to follow every hop of a
 * run's first I/Os in the console; the rest are counted, not traced, so a
 * long traced run costs little more than an untraced one (the bench's
 * traced/untraced ratio).
 */
export const DEFAULT_IO_TRACE_CAP = 64;

export class TelemetryConfigError extends Error {
  override readonly name = 'TelemetryConfigError';
  readonly code = 'CONFIG_INVALID';
  readonly kind = 'input';
}

/**
 * Whether spans are recorded, and how many I/O traces a run may start. One
 * per process (the SDK is started once); the workload engine resets the
 * count when a job starts, so every run gets the same budget.
 */
const budget = {
  recording: false,
  cap: DEFAULT_IO_TRACE_CAP,
  started: 0,
  skipped: 0,
  /** IoBudgetSampler is the SDK's sampler: droppedIoRoot() may decide for it. */
  decides: false,
};

/** `decides`: the SDK samples with IoBudgetSampler (not a sampler the user chose). */
export function configureSampling(recording: boolean, cap: number, decides = false): void {
  budget.recording = recording;
  budget.cap = cap;
  budget.decides = decides;
  budget.started = 0;
  budget.skipped = 0;
}

/** A new run: its I/Os get a fresh trace budget. */
export function resetIoTraceBudget(): void {
  budget.started = 0;
  budget.skipped = 0;
}

/** True when this process records spans at all (an exporter or a test processor is set). */
export function tracingRecording(): boolean {
  return budget.recording;
}

export function ioTraceBudget(): { cap: number; started: number; skipped: number } {
  return { cap: budget.cap, started: budget.started, skipped: budget.skipped };
}

/** NESTLAB_TRACE_IO_CAP: I/O traces per run (0 = none); unset = the default. */
export function ioTraceCapFromEnv(env: NodeJS.ProcessEnv = process.env): number {
  const raw = env['NESTLAB_TRACE_IO_CAP'];
  if (raw === undefined || raw === '') return DEFAULT_IO_TRACE_CAP;
  const n = Number(raw);
  if (!/^\d+$/.test(raw) || !Number.isSafeInteger(n)) {
    throw new TelemetryConfigError(
      `NESTLAB_TRACE_IO_CAP must be a whole number of I/O traces per run, got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

/** Random bytes drawn in bulk: one fill per ~170 I/O roots instead of the SDK's per-id work. */
const ids = Buffer.alloc(4096);
let idsAt = ids.length;

function randomHexId(bytes: number): string {
  if (idsAt + bytes > ids.length) {
    randomFillSync(ids);
    idsAt = 0;
  }
  const at = idsAt;
  idsAt += bytes;
  // An all-zero id is invalid (W3C trace context).
  let zero = true;
  for (let i = at; i < at + bytes && zero; i++) zero = ids[i] === 0;
  if (zero) ids[at + bytes - 1] = 1;
  return ids.toString('hex', at, at + bytes);
}

/**
 * The sampling decision for an I/O root (a root span carrying
 * `nestlab.io.id`), taken without starting a span when IoBudgetSampler
 * would drop it: then a non-recording span with fresh valid ids (they still
 * flow through reports and DMA records) and the budget counted as the
 * sampler counts it. Null when the SDK must start the span (it records it,
 * or another sampler decides), so an untraced I/O pays for nothing more.
 */
export function droppedIoRoot(): Span | null {
  if (!budget.decides) return null;
  if (budget.recording) {
    if (budget.started < budget.cap) return null;
    budget.skipped++;
  }
  return trace.wrapSpanContext({
    traceId: randomHexId(16),
    spanId: randomHexId(8),
    traceFlags: TraceFlags.NONE,
  });
}

/**
 * The span of a child whose parent is not sampled, taken without the SDK when
 * IoBudgetSampler decides (it drops such a child): a non-recording span in
 * the parent's trace with a fresh span id, as the SDK would make. Null when
 * the SDK must start the span (a sampled parent, no parent, another sampler).
 * Every hop of an untraced I/O goes through here, so it costs no attributes,
 * links or sampler call.
 */
export function droppedChild(parent: Context): Span | null {
  if (!budget.decides) return null;
  const sc = trace.getSpanContext(parent);
  if (!sc || sc.traceFlags & TraceFlags.SAMPLED || !isSpanContextValid(sc)) return null;
  return trace.wrapSpanContext({
    traceId: sc.traceId,
    spanId: randomHexId(8),
    traceFlags: TraceFlags.NONE,
    ...(sc.traceState ? { traceState: sc.traceState } : {}),
  });
}

const RECORD: SamplingResult = { decision: SamplingDecision.RECORD_AND_SAMPLED };
const DROP: SamplingResult = { decision: SamplingDecision.NOT_RECORD };

/**
 * Children follow their parent (local or from a NATS header). A root span is
 * recorded when the process records at all; an I/O root (one carrying
 * `nestlab.io.id`) only while the run's I/O budget lasts, so a long run
 * cannot flood the exporter. Unrecorded spans still carry valid ids, so
 * trace ids keep flowing through reports and DMA records.
 */
export class IoBudgetSampler implements Sampler {
  shouldSample(
    ctx: Context,
    _traceId: string,
    _name: string,
    _kind: unknown,
    attributes: Attributes,
  ): SamplingResult {
    const parent = trace.getSpanContext(ctx);
    if (parent && isSpanContextValid(parent)) {
      return parent.traceFlags & TraceFlags.SAMPLED ? RECORD : DROP;
    }
    if (!budget.recording) return DROP;
    if (attributes[ATTR.ioId] === undefined) return RECORD;
    if (budget.started >= budget.cap) {
      budget.skipped++;
      return DROP;
    }
    budget.started++;
    return RECORD;
  }

  toString(): string {
    return `IoBudgetSampler{cap=${budget.cap}}`;
  }
}
