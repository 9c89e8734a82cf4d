// The targets of issue 17, judged on one bench run: ratios against raw NATS
// measured in the same run, CPU per I/O summed over every process, memory,
// and how two stacks on one nats-server scale. Reported, never enforced.
import type { Baseline, BenchMemory, BenchRun, Target } from './report.js';
import type { StacksReport } from './stacks-report.js';
import { sumOf } from './cpu.js';
import { gib, mib } from './units.js';

interface ScenarioTargets {
  /** Untraced IOPS at the deepest iodepth over raw 4 KiB req/rep. */
  iopsVsReqRep: number;
  /** Summed CPU µs per I/O at the deepest iodepth, untraced. */
  cpuUsPerIo: number;
  /** clat p50 at iodepth 1 over the raw round trip. */
  clatVsRtt: number;
  /** Messages per I/O at the deepest iodepth: no higher than the issue measured (2 decimals). */
  msgsPerIo: number;
}

export const SCENARIO_TARGETS: Readonly<Record<string, ScenarioTargets>> = {
  'xen-pv-dom0-dma-api': { iopsVsReqRep: 0.5, cpuUsPerIo: 80, clatVsRtt: 2.5, msgsPerIo: 0.18 },
  'viommu-access-platform': { iopsVsReqRep: 0.35, cpuUsPerIo: 130, clatVsRtt: 6, msgsPerIo: 0.53 },
};

export const TARGETS = {
  tracedVsUntraced: 0.8,
  rssBytes: 300 * 1e6,
  /** Aggregate IOPS of two stacks over one (two cores). */
  twoStacksScaling: 1.6,
} as const;

const find = (runs: readonly BenchRun[], scenario: string, depth: number, traced: boolean) =>
  runs.find(
    (r) => r.scenario === scenario && r.iodepth === depth && r.traced === traced && !r.verify,
  );

const ratio = (a: number | undefined, b: number) =>
  a === undefined || b <= 0 ? null : Math.round((a / b) * 1000) / 1000;

/**
 * Each target, per scenario where the issue sets one. A figure that was not
 * measured (no such run, no /proc, no --stacks 2) is null and not met.
 */
export function judgeTargets(
  baseline: Baseline,
  runs: readonly BenchRun[],
  memory: BenchMemory,
  deep: number,
  stacks?: StacksReport,
): Target[] {
  const out: Target[] = [];
  const push = (t: Omit<Target, 'met'>) =>
    out.push({
      ...t,
      met: t.value !== null && (t.op === '>=' ? t.value >= t.bound : t.value <= t.bound),
    });
  for (const scenario of [...new Set(runs.map((r) => r.scenario))]) {
    const hot = find(runs, scenario, deep, false);
    const hotTraced = find(runs, scenario, deep, true);
    const one = find(runs, scenario, 1, false);
    const t = SCENARIO_TARGETS[scenario];
    if (t) {
      push({
        what: `iodepth ${deep} untraced IOPS / reqRep4kPerSec`,
        scenario,
        value: ratio(hot?.iops, baseline.reqRep4kPerSec),
        bound: t.iopsVsReqRep,
        op: '>=',
      });
      push({
        what: `iodepth ${deep} untraced CPU us per I/O, all processes`,
        scenario,
        value: hot?.cpuUsPerIo ? sumOf(hot.cpuUsPerIo) : null,
        bound: t.cpuUsPerIo,
        op: '<=',
      });
      push({
        what: `iodepth ${deep} untraced NATS messages per I/O`,
        scenario,
        value: hot ? Math.round(hot.msgsPerIo * 100) / 100 : null,
        bound: t.msgsPerIo,
        op: '<=',
      });
      push({
        what: 'iodepth 1 clat p50 / rttP50Us',
        scenario,
        value: ratio(one?.clatP50Us, baseline.rttP50Us),
        bound: t.clatVsRtt,
        op: '<=',
      });
    }
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
  push({
    what: '--stacks 2 aggregate IOPS / one stack',
    scenario: stacks?.scenario ?? '-',
    value: stacks?.runs.find((r) => r.stacks === 2)?.scaling ?? null,
    bound: TARGETS.twoStacksScaling,
    op: '>=',
  });
  return out;
}
