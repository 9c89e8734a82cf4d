// CPU time of the processes in a run, from /proc (Linux): what each service
// spends per I/O, and the IOPS ceiling that cost allows on this machine's
// CPUs however well the work overlaps. Null where /proc is not there.
// Per-thread schedstat (nanoseconds) where the kernel has it, else the
// process's stat (clock ticks, too coarse for a short --quick run).
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { median } from './report.js';

export interface CpuSeat {
  readonly name: string;
  readonly pid: number | undefined;
}

let ticksPerSecond: number | null = null;

function clockTicks(): number {
  if (ticksPerSecond === null) {
    const r = spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' });
    const n = Number(r.stdout?.trim());
    ticksPerSecond = r.status === 0 && n > 0 ? n : 100;
  }
  return ticksPerSecond;
}

/** User + system CPU of one process so far, in microseconds; null when unreadable. */
export function processCpuUs(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  return (schedstatWorks() ? threadsOnCpuUs(pid) : null) ?? statCpuUs(pid);
}

let schedstat: boolean | null = null;

/** /proc/<pid>/schedstat (CONFIG_SCHED_INFO) counts time on CPU in ns, not 10 ms ticks. */
function schedstatWorks(): boolean {
  schedstat ??= (() => {
    try {
      return Number(readFileSync('/proc/self/schedstat', 'utf8').split(' ')[0]) > 0;
    } catch {
      return false;
    }
  })();
  return schedstat;
}

/**
 * Time on CPU of every thread of the process (V8's and libuv's too), from
 * each thread's schedstat. A thread that ended took its time with it; node
 * keeps its threads for the process's life, so a measurement loses nothing.
 */
function threadsOnCpuUs(pid: number): number | null {
  let tasks: string[];
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return null;
  }
  let ns = 0;
  for (const t of tasks) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // ended between the listing and the read
    }
  }
  return Number.isFinite(ns) && tasks.length > 0 ? ns / 1000 : null;
}

/** utime + stime from /proc/<pid>/stat, in clock ticks (10 ms on most kernels). */
function statCpuUs(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3 (state) on.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(f[11]) + Number(f[12]);
    return Number.isFinite(ticks) ? (ticks * 1e6) / clockTicks() : null;
  } catch {
    return null;
  }
}

export type CpuSample = Record<string, number | null>;

export function sampleCpu(seats: readonly CpuSeat[]): CpuSample {
  return Object.fromEntries(seats.map((s) => [s.name, processCpuUs(s.pid)]));
}

/** CPU microseconds per I/O of each process between two samples. */
export function cpuPerIo(before: CpuSample, after: CpuSample, ios: number): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, a] of Object.entries(after)) {
    const b = before[name];
    if (a !== null && a !== undefined && b !== null && b !== undefined && ios > 0) {
      out[name] = Math.round((a - b) / ios);
    }
  }
  return out;
}

/** Per process, the median over repetitions; null when no process could be read. */
export function medianEach(
  samples: readonly Record<string, number>[],
): Record<string, number> | null {
  const names = [...new Set(samples.flatMap((s) => Object.keys(s)))];
  if (names.length === 0) return null;
  return Object.fromEntries(
    names.map((n) => [n, Math.round(median(samples.flatMap((s) => (n in s ? [s[n]!] : []))))]),
  );
}

/** The CPU of every process together. */
export const sumOf = (perProcess: Readonly<Record<string, number>>): number =>
  Object.values(perProcess).reduce((a, b) => a + b, 0);
