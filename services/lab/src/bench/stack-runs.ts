// The stack's side of the bench: a scenario configured and probed once (with
// a short verified run the oracle judges), then fio-like jobs measured from
// dom0's own report and the services' own message counters.
import { availableParallelism } from 'node:os';
import { JobRun, type IoReport } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import { runScenario } from '../run/orchestrator.js';
import type { Scenario } from '../scenarios/scenario.js';
import { cpuPerIo, medianEach, sampleCpu, sumOf, type CpuSeat } from './cpu.js';
import { median, type BenchRun } from './report.js';
import type { StackShare } from './stacks-report.js';

/** The disk runScenario gives the device; jobs may span all of it. */
export const BENCH_SPAN_BYTES = 64 * 2 ** 20;

export interface ServiceSeat {
  readonly name: string;
  readonly adminUrl: string;
}

/** The oracle's verdict on a stack's probe run. */
export type OracleSummary = StackShare['oracle'];

export interface JobPlan {
  iodepth: number;
  verify: boolean;
  ios: number;
  reps: number;
}

/** Sums the Prometheus samples whose name (and labels) match, across the services. */
export async function scrape(
  services: readonly ServiceSeat[],
  match: RegExp,
  only?: string,
): Promise<number> {
  let n = 0;
  for (const s of services) {
    if (only && s.name !== only) continue;
    const text = await (await fetch(`${s.adminUrl}/metrics`)).text();
    for (const line of text.split('\n')) {
      if (line.startsWith('#') || !match.test(line)) continue;
      const v = Number(line.slice(line.lastIndexOf(' ') + 1));
      if (Number.isFinite(v)) n += v;
    }
  }
  return n;
}

const MESSAGES = /^nestlab_bus_(messages_sent|replies_sent)_total[{ ]/;
const HITS = /^nestlab_l0_iotlb_hits_total[{ ]/;
const MISSES = /^nestlab_l0_iotlb_misses_total[{ ]/;

interface Counters {
  messages: number;
  hits: number;
  misses: number;
}

async function counters(services: readonly ServiceSeat[]): Promise<Counters> {
  return {
    messages: await scrape(services, MESSAGES),
    hits: await scrape(services, HITS, 'l0-hypervisor'),
    misses: await scrape(services, MISSES, 'l0-hypervisor'),
  };
}

/**
 * Configures and probes the stack for `scenario` (a short run the oracle
 * judges), then warms it up for `warmUpMs` at every depth. Fresh services
 * run their hot paths unoptimized for their first few thousand I/Os (V8
 * compiles them meanwhile); measured from a cold start, iodepth 1 took
 * 1.5-2x as long per I/O as it does warm.
 */
export async function prepare(
  bus: Bus,
  scenario: Scenario,
  depths: readonly number[],
  warmUpMs: number,
  progress: (line: string) => void,
): Promise<OracleSummary> {
  const r = await runScenario(bus, scenario, { seed: 1, ios: 200, iodepth: Math.max(...depths) });
  if (!r.pass) {
    throw new Error(
      `${scenario.id}: the stack is not healthy before measuring (outcome ${r.outcome}, ` +
        `${r.ios.failed} failed, ${r.ios.corrupted} corrupted)`,
    );
  }
  progress(`${scenario.id}: configured, probed, 200 I/Os judged ok by the oracle`);
  const started = Date.now();
  let ios = 0;
  for (let round = 0; Date.now() - started < warmUpMs; round++) {
    for (const iodepth of depths) {
      const n = iodepth * 16;
      await job(bus, { iodepth, verify: round % 2 === 1, ios: n, reps: 1 }, n, 500 + round);
      ios += n;
    }
  }
  progress(`${scenario.id}: warmed up (${ios} I/Os in ${Date.now() - started} ms)`);
  return { outcome: r.outcome, pass: r.pass, ios: r.ios.completed, dmaRecords: r.dma.total };
}

/** One fio-like job on the stack `bus` speaks for; dom0's report of it. */
export async function job(bus: Bus, p: JobPlan, ios: number, seed: number): Promise<IoReport> {
  const deadlineMs = 10_000;
  const r = await bus.request(
    JobRun,
    {
      rw: 'randrw',
      bs: 4096,
      iodepth: p.iodepth,
      ios,
      seed,
      verify: p.verify,
      deadlineMs,
      spanBytes: BENCH_SPAN_BYTES,
    },
    { timeoutMs: (Math.ceil(ios / p.iodepth) + 2) * deadlineMs + 30_000 },
  );
  return r.head;
}

/** One configuration: a warm-up job, then `reps` measured ones; the figures are their medians. */
export async function measure(
  bus: Bus,
  services: readonly ServiceSeat[],
  processes: readonly CpuSeat[],
  scenario: string,
  traced: boolean,
  p: JobPlan,
  progress: (line: string) => void,
): Promise<BenchRun> {
  await job(bus, p, Math.max(p.iodepth * 4, Math.ceil(p.ios / 4)), 1000 + p.iodepth);
  const iops: number[] = [];
  const p50: number[] = [];
  const p99: number[] = [];
  const msgs: number[] = [];
  const hitRates: number[] = [];
  const cpu: Record<string, number>[] = [];
  let failed = 0;
  for (let rep = 0; rep < p.reps; rep++) {
    const before = await counters(services);
    const cpuBefore = sampleCpu(processes);
    const r = await job(bus, p, p.ios, 2000 + rep);
    cpu.push(cpuPerIo(cpuBefore, sampleCpu(processes), p.ios));
    const after = await counters(services);
    failed += r.failed + r.corrupted;
    iops.push((r.completed / Math.max(1, r.elapsedMs)) * 1000);
    p50.push(r.latencyUs.p50);
    p99.push(r.latencyUs.p99);
    msgs.push((after.messages - before.messages) / p.ios);
    const lookups = after.hits - before.hits + (after.misses - before.misses);
    if (lookups > 0) hitRates.push((after.hits - before.hits) / lookups);
  }
  const perIo = medianEach(cpu);
  const run: BenchRun = {
    scenario,
    iodepth: p.iodepth,
    traced,
    verify: p.verify,
    iops: Math.round(median(iops)),
    clatP50Us: Math.round(median(p50)),
    clatP99Us: Math.round(median(p99)),
    msgsPerIo: Math.round(median(msgs) * 1000) / 1000,
    iotlbHitRate: hitRates.length > 0 ? Math.round(median(hitRates) * 1000) / 1000 : null,
    cpuUsPerIo: perIo,
    cpuUsPerIoTotal: perIo ? sumOf(perIo) : null,
    cpuVsRawRoundTrip: null, // set beside the baseline once the run is over
    cpuCeilingIops: ceiling(perIo),
    ios: p.ios,
    reps: p.reps,
    failed,
  };
  progress(
    `${scenario} depth ${p.iodepth}${traced ? ' traced' : ''}${p.verify ? ' verify' : ''}: ` +
      `${iops.map(Math.round).join(', ')} IOPS, p50 ${run.clatP50Us}us, ${run.msgsPerIo} msgs/IO`,
  );
  return run;
}

/**
 * The IOPS this machine's CPUs could give at the measured CPU cost per I/O,
 * were every process busy all the time: the bound no overlap can beat.
 */
function ceiling(perIo: Record<string, number> | null): number | null {
  const total = perIo ? sumOf(perIo) : 0;
  return total > 0 ? Math.round((availableParallelism() * 1e6) / total) : null;
}
