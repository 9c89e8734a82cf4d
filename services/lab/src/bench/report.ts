// What `nestlab bench` reports: the shape of --json and the fio-style table
// (targets.ts judges them). Pure functions: the runs produce the numbers,
// this prints.
import type { ServiceProfile } from './profile.js';
import { formatStacks, type StacksReport } from './stacks-report.js';
import { gib, mib } from './units.js';

export interface Baseline {
  /** Raw NATS 4 KiB request/reply, two processes, `reqRep4kConcurrency` in flight. */
  reqRep4kPerSec: number;
  /** Raw NATS sequential request/reply round trip, median. */
  rttP50Us: number;
  reqRep4kConcurrency: number;
  /** CPU µs of requester, echo and nats-server together per 4 KiB round trip; null without /proc. */
  cpuUsPerRoundTrip: number | null;
  cpuUsPerRoundTripByProcess: Record<string, number> | null;
  /**
   * CPU µs of the three per sequential (one in flight) 64-byte round trip:
   * what each hop of an iodepth-1 I/O pays, with nothing to batch; null without /proc.
   */
  cpuUsPerSequentialRoundTrip: number | null;
}

export interface BenchRun {
  scenario: string;
  iodepth: number;
  traced: boolean;
  verify: boolean;
  iops: number;
  clatP50Us: number;
  clatP99Us: number;
  /** NATS messages (requests, events, replies) the services sent, per I/O. */
  msgsPerIo: number;
  /** IOTLB hits / lookups in the DMA engine; null when no access needed a translation. */
  iotlbHitRate: number | null;
  /** CPU microseconds per I/O of each service and of nats-server (median of the repetitions). */
  cpuUsPerIo: Record<string, number> | null;
  /** Those summed, and how many raw NATS round trips' CPU (the baseline's) that is. */
  cpuUsPerIoTotal: number | null;
  cpuVsRawRoundTrip: number | null;
  /** CPUs × 1 s over the summed CPU per I/O: the IOPS even perfect overlap could not beat. */
  cpuCeilingIops: number | null;
  /** I/Os per repetition, repetitions (the figures are medians), I/Os that failed in all. */
  ios: number;
  reps: number;
  failed: number;
}

export interface BenchMemory {
  guestBytes: number;
  touchedBytes: number;
  l0RssBytes: number | null;
}

export interface Target {
  what: string;
  scenario: string;
  /** The measured ratio (or bytes) and the bound it must meet. */
  value: number | null;
  bound: number;
  op: '>=' | '<=';
  met: boolean;
}

export interface BenchReport {
  baseline: Baseline;
  runs: BenchRun[];
  memory: BenchMemory;
  machine: Record<string, unknown>;
  targets: Target[];
  /** With --stacks: K stacks on one nats-server at once. */
  stacks?: StacksReport;
  /** With --profile: where the untraced fleet's busy time went, per service. */
  profile?: { dir: string; services: Record<string, ServiceProfile> };
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** The value at fraction p (0..1) of a list, nearest-rank. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
}

/** The run's CPU per I/O set beside raw NATS's CPU per round trip. */
export function besideRawCpu(run: BenchRun, baseline: Baseline): BenchRun {
  const raw = baseline.cpuUsPerRoundTrip;
  const total = run.cpuUsPerIoTotal;
  return {
    ...run,
    cpuVsRawRoundTrip:
      total === null || raw === null || raw <= 0 ? null : Math.round((total / raw) * 100) / 100,
  };
}

const pad = (s: string | number, n: number) => String(s).padStart(n);
const us = (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(1)}ms` : `${Math.round(n)}us`);

/** The fio-style human report. */
export function formatBench(r: BenchReport): string {
  const m = r.machine;
  const lines = [
    `nestlab bench — ${String(m['cpus'])} CPUs (${String(m['cpuModel'])}), node ${String(m['node'])}, ${String(m['natsServer'])}`,
    `baseline (raw NATS, two processes): 4 KiB req/rep at ${r.baseline.reqRep4kConcurrency} in flight ` +
      `${Math.round(r.baseline.reqRep4kPerSec)}/s, sequential RTT p50 ${Math.round(r.baseline.rttP50Us)}us, ` +
      `CPU per round trip ${rawCpu(r.baseline)}, ` +
      `per sequential round trip ${r.baseline.cpuUsPerSequentialRoundTrip ?? '-'}us`,
    '',
    `${'scenario'.padEnd(24)} ${pad('depth', 5)} ${pad('traced', 6)} ${pad('verify', 6)} ${pad('IOPS', 7)} ` +
      `${pad('x base', 6)} ${pad('clat p50', 9)} ${pad('clat p99', 9)} ${pad('msgs/IO', 7)} ${pad('IOTLB', 6)}`,
  ];
  for (const run of r.runs) {
    lines.push(
      `${run.scenario.padEnd(24)} ${pad(run.iodepth, 5)} ${pad(run.traced ? 'yes' : 'no', 6)} ` +
        `${pad(run.verify ? 'yes' : 'no', 6)} ${pad(Math.round(run.iops), 7)} ` +
        `${pad((run.iops / r.baseline.reqRep4kPerSec).toFixed(2), 6)} ${pad(us(run.clatP50Us), 9)} ` +
        `${pad(us(run.clatP99Us), 9)} ${pad(run.msgsPerIo.toFixed(2), 7)} ` +
        `${pad(run.iotlbHitRate === null ? '-' : `${Math.round(run.iotlbHitRate * 100)}%`, 6)}` +
        (run.failed > 0 ? `  ${run.failed} I/Os FAILED` : ''),
    );
  }
  const costly = r.runs.filter((x) => x.cpuUsPerIo !== null && !x.verify);
  if (costly.length > 0) {
    lines.push(
      '',
      'CPU per I/O (us, user+system, from /proc), in raw NATS round trips ' +
        `(${r.baseline.cpuUsPerRoundTrip ?? '-'}us each), and the IOPS it allows on these CPUs:`,
    );
    for (const run of costly) {
      const per = Object.entries(run.cpuUsPerIo ?? {});
      lines.push(
        `  ${run.scenario} depth ${run.iodepth}${run.traced ? ' traced' : ''}: ` +
          `${per.map(([k, v]) => `${k} ${v}`).join(', ')} = ${run.cpuUsPerIoTotal ?? '-'}` +
          ` = ${run.cpuVsRawRoundTrip ?? '-'} round trips; ceiling ${run.cpuCeilingIops ?? '-'} IOPS`,
      );
    }
  }
  if (r.stacks) lines.push(...formatStacks(r.stacks));
  const mem = r.memory;
  lines.push(
    '',
    `memory: ${gib(mem.guestBytes)} guest, ${mib(mem.touchedBytes)} touched: l0-hypervisor RSS ` +
      (mem.l0RssBytes === null ? 'unknown' : `${Math.round(mem.l0RssBytes / 1e6)} MB`),
    '',
    'targets (ratios against the baseline above):',
  );
  for (const t of r.targets) {
    const v =
      t.value === null
        ? 'n/a'
        : t.what.endsWith('(bytes)')
          ? `${Math.round(t.value / 1e6)} MB`
          : String(t.value);
    const b = t.what.endsWith('(bytes)') ? `${Math.round(t.bound / 1e6)} MB` : String(t.bound);
    lines.push(
      `  ${t.met ? 'met ' : 'MISS'} ${t.scenario === '-' ? '' : `${t.scenario}: `}${t.what} = ${v} (${t.op} ${b})`,
    );
  }
  if (r.profile) lines.push(...formatProfile(r.profile));
  return `${lines.join('\n')}\n`;
}

function rawCpu(b: Baseline): string {
  if (b.cpuUsPerRoundTrip === null) return 'unknown';
  const by = Object.entries(b.cpuUsPerRoundTripByProcess ?? {});
  return `${b.cpuUsPerRoundTrip}us (${by.map(([k, v]) => `${k} ${v}`).join(', ')})`;
}

function formatProfile(p: NonNullable<BenchReport['profile']>): string[] {
  const lines = ['', `profile of the untraced fleet (whole run; .cpuprofile files in ${p.dir}):`];
  for (const [name, s] of Object.entries(p.services)) {
    const origins = Object.entries(s.byOrigin)
      .slice(0, 5)
      .map(([o, v]) => `${o} ${v}%`)
      .join(', ');
    lines.push(`  ${name}: ${s.busySamples} busy samples, GC ${s.gcPct}%; ${origins}`);
    for (const f of s.top)
      lines.push(`    ${pad(f.selfPct.toFixed(1), 5)}%  ${f.fn}  ${f.where || '(native)'}`);
  }
  return lines;
}
