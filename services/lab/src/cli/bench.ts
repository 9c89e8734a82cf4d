import { accessSync, constants, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { FULL_PLAN, QUICK_PLAN, runBench, type BenchPlan } from '../bench/bench.js';
import { formatBench } from '../bench/report.js';
import { DEFAULT_STACK_COUNTS, stacksPlan } from '../bench/stacks.js';
import { EXIT, UsageError, intOption } from './usage.js';

/** 4 processes a stack: more than this on one machine measures swapping, not the stack. */
const MAX_STACKS = 8;

export const BENCH_HELP = `nestlab bench [--json] [--quick] [--stacks [K,...]] [--profile DIR]

Measures the stack against raw NATS in one run, on one private nats-server:
raw 4 KiB request/reply between two processes and the sequential round trip
(the baseline, measured before and after), then xen-pv-dom0-dma-api and
viommu-access-platform at iodepth 1, 8 and 32 (4 KiB randrw, verify off, and
one run with verify on), each with tracing off and on (default sampling, to an
in-process console), and the l0-hypervisor's RSS with a 4 GiB guest of which
64 MiB is touched. Each figure is the median of 3 repetitions after a warm-up;
messages per I/O come from the services' own counters. Progress goes to
stderr. Exit code 0 when every run completed (targets are reported, not
enforced), 1 when I/Os failed.

  --json    print the report as JSON
  --quick   fewer I/Os per run (what CI runs; under 2 minutes)
  --stacks [K,...]
            then K independent stacks (each its own four services and stack
            token) on the same nats-server at once, for each K given and K = 1
            (the reference), running xen-pv-dom0-dma-api at iodepth 32
            untraced: aggregate IOPS, CPU per I/O of every process summed,
            scaling over one stack, RSS per stack. Without a value: 1,2,4.
            At most ${MAX_STACKS} stacks.
  --profile DIR
            run the untraced fleet under V8's sampling profiler: each service
            writes a .cpuprofile into DIR (a flame graph in Chrome DevTools or
            speedscope) and the report adds each service's hottest functions`;

/** The bench plan the command line asks for; bad words are a UsageError before any work. */
export function benchPlan(argv: readonly string[]): { plan: BenchPlan; json: boolean } {
  const { values, positionals } = parseArgs({
    args: withStackDefault(argv),
    options: {
      json: { type: 'boolean' },
      quick: { type: 'boolean' },
      stacks: { type: 'string' },
      profile: { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0)
    throw new UsageError('bench takes no arguments (see `nestlab help bench`)');
  const profileDir = values.profile === undefined ? undefined : profileFolder(values.profile);
  const counts = values.stacks === undefined ? null : stackCounts(values.stacks);
  const plan: BenchPlan = {
    ...(values.quick ? QUICK_PLAN : FULL_PLAN),
    ...(counts ? { stacks: stacksPlan(values.quick === true, counts) } : {}),
    ...(profileDir ? { profileDir } : {}),
  };
  return { plan, json: values.json === true };
}

export async function bench(argv: string[]): Promise<number> {
  const { plan, json } = benchPlan(argv);
  const progress = (line: string) => process.stderr.write(`nestlab: ${line}\n`);
  const report = await runBench(plan, progress);
  process.stdout.write(json ? `${JSON.stringify(report, null, 2)}\n` : formatBench(report));
  const failed =
    report.runs.some((r) => r.failed > 0) || report.stacks?.runs.some((r) => r.failed > 0);
  return failed ? EXIT.notAsExpected : EXIT.ok;
}

/** `--stacks` with no value (last, or before another option) means the default counts. */
function withStackDefault(argv: readonly string[]): string[] {
  const out: string[] = [];
  argv.forEach((a, i) => {
    out.push(a);
    const next = argv[i + 1];
    if (a === '--stacks' && (next === undefined || next.startsWith('-')))
      out.push(DEFAULT_STACK_COUNTS.join(','));
  });
  return out;
}

/** `2` or `1,2,4`: each a whole number of stacks from 1 to MAX_STACKS. */
function stackCounts(raw: string): number[] {
  if (raw.trim() === '') throw new UsageError('--stacks takes counts such as 2 or 1,2,4');
  return raw.split(',').map((k) => intOption('stacks', k.trim(), 1, 1, MAX_STACKS));
}

/** The profile folder, made if missing; an unusable one is the user's error, said before any work. */
function profileFolder(dir: string): string {
  if (dir.trim() === '') throw new UsageError('--profile needs a folder');
  const abs = resolve(dir);
  try {
    mkdirSync(abs, { recursive: true });
    accessSync(abs, constants.W_OK);
  } catch (err) {
    throw new UsageError(`--profile ${dir}: cannot write there (${(err as Error).message})`);
  }
  return abs;
}
