import { parseArgs } from 'node:util';
import { FULL_PLAN, QUICK_PLAN, runBench } from '../bench/bench.js';
import { formatBench } from '../bench/report.js';
import { EXIT, UsageError } from './usage.js';

export const BENCH_HELP = `nestlab bench [--json] [--quick]

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
  --quick   fewer I/Os per run (what CI runs; under 2 minutes)`;

export async function bench(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean' }, quick: { type: 'boolean' } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0)
    throw new UsageError('bench takes no arguments (see `nestlab help bench`)');
  const progress = (line: string) => process.stderr.write(`nestlab: ${line}\n`);
  const report = await runBench(values.quick ? QUICK_PLAN : FULL_PLAN, progress);
  process.stdout.write(values.json ? `${JSON.stringify(report, null, 2)}\n` : formatBench(report));
  return report.runs.some((r) => r.failed > 0) ? EXIT.notAsExpected : EXIT.ok;
}
