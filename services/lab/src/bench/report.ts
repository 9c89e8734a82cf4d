// What `nestlab bench` reports: the shape of --json, the targets of issue 9
// as ratios against raw NATS measured in the same run, and the fio-style
// table. Pure functions: the runs produce the numbers, this judges and prints.
import type { ServiceProfile } from './profile.js';

export interface Baseline {
  /** Raw NATS 4 KiB request/reply, two processes, `reqRep4kConcurrency` in flight. */
  reqRep4kPerSec: number;
  /** Raw NATS sequential request/reply round trip, median. */
  rttP50Us: number;
  reqRep4kConcurrency: number;
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
  /** With --profile: where the untraced fleet's busy time went, per service. */
  profile?: { dir: string; services: Record<string, ServiceProfile> };
}

export const TARGETS = {
  iopsVsReqRep: 0.5,
  msgsPerIo: 1.5,
  clatVsRtt: 4,
  tracedVsUntraced: 0.7,
  rssBytes: 300 * 1e6,
} as const;

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

const find = (runs: readonly BenchRun[], scenario: string, depth: number, traced: boolean) =>
  runs.find(
    (r) => r.scenario === scenario && r.iodepth === depth && r.traced === traced && !r.verify,
  );

/** Each target of the issue, per scenario, as ratios against the baseline of the same run. */
export function judgeTargets(
  baseline: Baseline,
  runs: readonly BenchRun[],
  memory: BenchMemory,
  deep: number,
): Target[] {
  const out: Target[] = [];
  const ratio = (a: number | undefined, b: number) =>
    a === undefined || b <= 0 ? null : Math.round((a / b) * 1000) / 1000;
  const push = (t: Omit<Target, 'met'>) =>
    out.push({
      ...t,
      met: t.value !== null && (t.op === '>=' ? t.value >= t.bound : t.value <= t.bound),
    });
  for (const scenario of [...new Set(runs.map((r) => r.scenario))]) {
    const hot = find(runs, scenario, deep, false);
    const hotTraced = find(runs, scenario, deep, true);
    const one = find(runs, scenario, 1, false);
    push({
      what: `iodepth ${deep} untraced IOPS / reqRep4kPerSec`,
      scenario,
      value: ratio(hot?.iops, baseline.reqRep4kPerSec),
      bound: TARGETS.iopsVsReqRep,
      op: '>=',
    });
    push({
      what: `iodepth ${deep} untraced NATS messages per I/O`,
      scenario,
      value: hot ? hot.msgsPerIo : null,
      bound: TARGETS.msgsPerIo,
      op: '<=',
    });
    push({
      what: 'iodepth 1 clat p50 / rttP50Us',
      scenario,
      value: ratio(one?.clatP50Us, baseline.rttP50Us),
      bound: TARGETS.clatVsRtt,
      op: '<=',
    });
    push({
      what: `iodepth ${deep} traced IOPS / untraced IOPS`,
      scenario,
      value: hot && hotTraced ? ratio(hotTraced.iops, hot.iops) : null,
      bound: TARGETS.tracedVsUntraced,
      op: '>=',
    });
  }
  push({
    what: `l0-hypervisor RSS, ${gib(memory.guestBytes)} guest with ${mib(memory.touchedBytes)} touched (bytes)`,
    scenario: '-',
    value: memory.l0RssBytes,
    bound: TARGETS.rssBytes,
    op: '<=',
  });
  return out;
}

const gib = (b: number) => `${Math.round((b / 2 ** 30) * 10) / 10} GiB`;
const mib = (b: number) => `${Math.round(b / 2 ** 20)} MiB`;
const pad = (s: string | number, n: number) => String(s).padStart(n);
const us = (n: number) => (n >= 10_000 ? `${(n / 1000).toFixed(1)}ms` : `${Math.round(n)}us`);

/** The fio-style human report. */
export function formatBench(r: BenchReport): string {
  const m = r.machine;
  const lines = [
    `nestlab bench — ${String(m['cpus'])} CPUs (${String(m['cpuModel'])}), node ${String(m['node'])}, ${String(m['natsServer'])}`,
    `baseline (raw NATS, two processes): 4 KiB req/rep at ${r.baseline.reqRep4kConcurrency} in flight ` +
      `${Math.round(r.baseline.reqRep4kPerSec)}/s, sequential RTT p50 ${Math.round(r.baseline.rttP50Us)}us`,
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
      'CPU per I/O (us, user+system, from /proc) and the IOPS it allows on these CPUs:',
    );
    for (const run of costly) {
      const per = Object.entries(run.cpuUsPerIo ?? {});
      const total = per.reduce((n, [, v]) => n + v, 0);
      lines.push(
        `  ${run.scenario} depth ${run.iodepth}${run.traced ? ' traced' : ''}: ` +
          `${per.map(([k, v]) => `${k} ${v}`).join(', ')} = ${total}; ceiling ${run.cpuCeilingIops ?? '-'} IOPS`,
      );
    }
  }
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
