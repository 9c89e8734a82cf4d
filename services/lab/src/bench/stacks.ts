// `nestlab bench --stacks`: K independent stacks (each its own four services
// and stack token, so its own subjects nestlab.<stack>.…) on the bench's one
// nats-server at once, all running the same job together. How aggregate
// IOPS and the CPU per I/O of every process grow with K shows what more work
// costs on this machine. The largest K's stacks are started once and every
// K runs on the first K of them, the Ks taking turns in each repetition, so
// drift on a shared machine lands on every K alike (as the baseline does).
import { join } from 'node:path';
import { startFleet, type Fleet } from '../fleet/fleet.js';
import { labSeat } from '../fleet/lab-seat.js';
import { findScenario } from '../scenarios/builtin.js';
import { cpuPerIo, medianEach, sampleCpu, sumOf, type CpuSeat } from './cpu.js';
import { rssOf } from './memory.js';
import { median } from './report.js';
import { job, prepare, type JobPlan, type OracleSummary } from './stack-runs.js';
import {
  withScaling,
  type StackShare,
  type StacksReport,
  type StacksRun,
} from './stacks-report.js';

/** `--stacks` without a count: the K = 1, 2, 4. */
export const DEFAULT_STACK_COUNTS: readonly number[] = [1, 2, 4];

/** What the stacks run measures, full or --quick, for the given counts (K = 1 always added). */
export function stacksPlan(quick: boolean, counts: readonly number[]): StacksPlan {
  return {
    counts: [...new Set([1, ...counts])].sort((a, b) => a - b),
    scenario: 'xen-pv-dom0-dma-api',
    iodepth: 32,
    ios: quick ? 1500 : 4000,
    reps: 3,
    warmUpMs: quick ? 1000 : 5000,
  };
}

export interface StacksPlan {
  /** The numbers of stacks to run, taking turns (K = 1 is the reference for scaling). */
  counts: number[];
  scenario: string;
  iodepth: number;
  /** I/Os per stack per measured repetition. */
  ios: number;
  reps: number;
  /** Each stack's unmeasured warm-up after its probe. */
  warmUpMs: number;
}

/** The server every stack shares: its URL, and its pid for the CPU it spends. */
export interface SharedNats {
  url: string;
  pid: number | undefined;
}

interface Hosted {
  stack: string;
  fleet: Fleet;
  seat: Awaited<ReturnType<typeof labSeat>>;
}

export async function runStacks(
  nats: SharedNats,
  plan: StacksPlan,
  scratch: string,
  progress: (line: string) => void,
): Promise<StacksReport> {
  const scenario = findScenario(plan.scenario);
  if (!scenario) throw new Error(`unknown scenario ${plan.scenario}`);
  const hosted: Hosted[] = [];
  try {
    // One after another: starting many services at once on a small machine
    // only makes each slower to be ready.
    for (let i = 1; i <= Math.max(...plan.counts); i++) {
      hosted.push(await hostStack(`bs${i}`, nats, scratch, progress));
    }
    // Probed (the oracle judges each) and warmed up together, as they will be measured.
    const oracles: OracleSummary[] = await Promise.all(
      hosted.map((h) =>
        prepare(h.seat.bus, scenario, [plan.iodepth], plan.warmUpMs, (line) =>
          progress(`${h.stack}: ${line}`),
        ),
      ),
    );
    const p: JobPlan = { iodepth: plan.iodepth, verify: false, ios: plan.ios, reps: plan.reps };
    await together(hosted, p, Math.max(p.iodepth * 4, Math.ceil(p.ios / 4)), 1000);
    const reps = new Map<number, Rep[]>(plan.counts.map((k) => [k, []]));
    for (let rep = 0; rep < plan.reps; rep++) {
      for (const k of plan.counts) {
        reps.get(k)!.push(await measureRep(hosted.slice(0, k), p, nats, 3000 + rep * 64));
      }
    }
    const runs = plan.counts.map((k) => summarize(hosted.slice(0, k), oracles, reps.get(k)!, p));
    for (const r of runs) {
      progress(
        `stacks ${r.stacks}: ${reps
          .get(r.stacks)!
          .map((x) => Math.round(x.aggregate))
          .join(', ')} ` + `IOPS together, ${r.cpuUsPerIo ?? '-'}us CPU per I/O`,
      );
    }
    return {
      scenario: plan.scenario,
      iodepth: plan.iodepth,
      traced: false,
      runs: withScaling(runs),
    };
  } finally {
    for (const h of hosted.reverse()) {
      await h.seat.close().catch(() => undefined);
      await h.fleet.stop();
    }
  }
}

async function hostStack(
  stack: string,
  nats: SharedNats,
  scratch: string,
  progress: (line: string) => void,
): Promise<Hosted> {
  progress(`stacks: starting ${stack} on the shared nats-server`);
  const fleet = await startFleet({
    natsUrl: nats.url,
    stack,
    adminBasePort: 0,
    logDir: join(scratch, stack, 'logs'),
    env: { NESTLAB_DATA_DIR: join(scratch, stack, 'data'), LOG_LEVEL: 'warn' },
  });
  const seat = await labSeat(nats.url, stack).catch(async (err: unknown) => {
    await fleet.stop();
    throw err;
  });
  return { stack, fleet, seat };
}

const together = (hosted: readonly Hosted[], p: JobPlan, ios: number, seed: number) =>
  Promise.all(hosted.map((h, i) => job(h.seat.bus, p, ios, seed + i)));

/** One repetition of K stacks at once. */
interface Rep {
  /** Completed I/Os of all stacks over the wall time. */
  aggregate: number;
  perStackIops: number[];
  /** µs per I/O, every process summed, and per service; null without /proc. */
  cpuUsPerIo: number | null;
  byService: Record<string, number> | null;
  failed: number;
}

async function measureRep(
  hosted: readonly Hosted[],
  p: JobPlan,
  nats: SharedNats,
  seed: number,
): Promise<Rep> {
  const processes: CpuSeat[] = [
    ...hosted.flatMap((h) =>
      h.fleet.services.map((s) => ({ name: `${h.stack}/${s.service.name}`, pid: s.process.pid })),
    ),
    { name: 'nats-server', pid: nats.pid },
  ];
  const before = sampleCpu(processes);
  const started = process.hrtime.bigint();
  const reports = await together(hosted, p, p.ios, seed);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const spent = cpuPerIo(before, sampleCpu(processes), 1); // µs per process in this repetition
  const completed = reports.reduce((n, r) => n + r.completed, 0);
  const cpu = completed > 0 && Object.keys(spent).length > 0;
  return {
    aggregate: completed / seconds,
    perStackIops: reports.map((r) => (r.completed / Math.max(1, r.elapsedMs)) * 1000),
    cpuUsPerIo: cpu ? sumOf(spent) / completed : null,
    byService: cpu ? perServiceOf(spent, completed) : null,
    failed: reports.reduce((n, r) => n + r.failed + r.corrupted, 0),
  };
}

/** The medians of K stacks' repetitions. */
function summarize(
  hosted: readonly Hosted[],
  oracles: readonly OracleSummary[],
  reps: readonly Rep[],
  p: JobPlan,
): StacksRun {
  const cpu = reps.flatMap((r) => (r.cpuUsPerIo === null ? [] : [r.cpuUsPerIo]));
  const byService = reps.flatMap((r) => (r.byService ? [r.byService] : []));
  return {
    stacks: hosted.length,
    aggregateIops: Math.round(median(reps.map((r) => r.aggregate))),
    scaling: null,
    cpuUsPerIo: cpu.length > 0 ? Math.round(median(cpu)) : null,
    cpuUsPerIoByService: byService.length > 0 ? medianEach(byService) : null,
    perStack: hosted.map((h, i) => ({
      stack: h.stack,
      oracle: oracles[i]!,
      iops: Math.round(median(reps.map((r) => r.perStackIops[i]!))),
      ...stackRss(h.fleet),
    })),
    ios: p.ios,
    reps: reps.length,
    failed: reps.reduce((n, r) => n + r.failed, 0),
  };
}

/** CPU µs per I/O per service (summed over the stacks) and nats-server. */
function perServiceOf(spent: Record<string, number>, ios: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, us] of Object.entries(spent)) {
    const service = name.slice(name.indexOf('/') + 1);
    out[service] = (out[service] ?? 0) + us / ios;
  }
  return out;
}

/** The four services' RSS together (null when any cannot be read), and each. */
function stackRss(fleet: Fleet): Pick<StackShare, 'rssBytes' | 'rssBytesByService'> {
  const each = fleet.services.map((s) => ({
    name: s.service.name,
    rss: s.process.pid === undefined ? null : rssOf(s.process.pid),
  }));
  const read = each.flatMap((e) => (e.rss === null ? [] : [[e.name, e.rss] as const]));
  return {
    rssBytes: read.length === each.length ? read.reduce((n, [, b]) => n + b, 0) : null,
    rssBytesByService: Object.fromEntries(read),
  };
}
