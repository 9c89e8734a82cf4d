import { SamplingDecision, type Sampler, type SamplingResult } from '@opentelemetry/sdk-trace';
import {
  TraceFlags,
  isSpanContextValid,
  trace,
  type Attributes,
  type Context,
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
const budget = { recording: false, cap: DEFAULT_IO_TRACE_CAP, started: 0, skipped: 0 };

export function configureSampling(recording: boolean, cap: number): void {
  budget.recording = recording;
  budget.cap = cap;
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
