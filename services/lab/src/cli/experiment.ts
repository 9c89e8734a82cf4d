import { parseArgs } from 'node:util';
import { loadAllExperiments, loadExperimentFile } from '../experiments/load.js';
import { runExperiment, type ExperimentResult } from '../experiments/runner.js';
import { ExperimentError } from '../experiments/stack.js';
import { EXIT, UsageError, intOption } from './usage.js';

export const EXPERIMENT_HELP = `nestlab experiment <id | --file F> [--seed S] [--ios N] [--json] [--keep] [--history]

Runs one failure-injection experiment on a private fleet: the scenario's
stack, a workload with history, the fault steps at their logical points
(after the Nth completed I/O), then a read of every block, the disk image read
back from its file, and the checkers:

  lostAckedWrites      FLUSH-acknowledged writes whose data is not on disk
  silentCorruptions    reads that returned wrong data without an error
  unendedIos           I/Os neither completed nor failed by their deadline
  detectedCorruptions  wrong data the workload caught and reported
  recoveryMs           fault → first successful I/O started after it

and the DMA oracle's judgement of every device access (as \`nestlab run\`):
intended, stale (through a translation already unmapped and acknowledged:
a stale IOTLB entry), misdirected, faulted (IOMMU), outside.

Exit code 0 when every verdict meets the experiment's expectation, 1 when
not, 2 on usage errors. The same seed injects the same faults at the same
logical points.

  --seed S   seeds the layout, the workload and the transport faults (default: the file's)
  --ios N    I/Os of the main workload (default: the file's)
  --json     print the result as JSON
  --keep     keep the fleet's logs and data (kept anyway when it does not pass)
  --history  put every I/O record and the image read back into the JSON
  --file F   run the experiment in this YAML file

\`nestlab experiments\` lists the ids.`;

function format(r: ExperimentResult): string {
  const c = r.checkers;
  const lines = [
    `${r.id} (seed ${r.seed}): ${r.pass ? 'PASS' : 'FAIL'}`,
    `  lostAckedWrites ${c.lostAckedWrites}, silentCorruptions ${c.silentCorruptions}, unendedIos ${c.unendedIos}, detectedCorruptions ${c.detectedCorruptions}, recoveryMs ${c.recoveryMs ?? 'n/a'}`,
    `  I/Os: ${r.ios.planned} planned, ${r.ios.ok} ok, ${r.ios.failed} failed${
      Object.keys(r.ios.errors).length
        ? ` (${Object.entries(r.ios.errors)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')})`
        : ''
    }, ${r.ios.flushes} FLUSHes`,
    r.dma
      ? `  DMA accesses ${r.dma.total}: intended ${r.dma.intended}, stale ${r.dma.stale}, misdirected ${r.dma.misdirected}, faulted ${r.dma.faulted}, outside ${r.dma.outside}`
      : '  DMA accesses: not judged',
    `  injected: ${r.faults.injected.length} (${r.faults.injected.filter((i) => 'step' in i).length} steps)`,
  ];
  if (r.inconclusive) lines.push(`  inconclusive: ${r.inconclusive}`);
  for (const m of r.mismatches)
    lines.push(`  expected ${m.key} ${JSON.stringify(m.expected)}, got ${m.got ?? 'null'}`);
  if (r.kept) lines.push(`  logs and data: ${r.kept}`);
  return `${lines.join('\n')}\n`;
}

export async function experiment(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      seed: { type: 'string' },
      ios: { type: 'string' },
      json: { type: 'boolean' },
      keep: { type: 'boolean' },
      history: { type: 'boolean' },
      file: { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length + (values.file ? 1 : 0) !== 1)
    throw new UsageError(
      'experiment takes exactly one id or --file F (see `nestlab help experiment`)',
    );
  let e;
  if (values.file) e = loadExperimentFile(values.file);
  else {
    const all = loadAllExperiments();
    e = all.find((x) => x.id === positionals[0]);
    if (!e)
      throw new UsageError(
        `unknown experiment ${JSON.stringify(positionals[0])}; known: ${all.map((x) => x.id).join(', ')}`,
      );
  }
  const r = await runExperiment(e, {
    ...(values.seed === undefined
      ? {}
      : { seed: intOption('seed', values.seed, 1, 0, 0xffffffff) }),
    ...(values.ios === undefined ? {} : { ios: intOption('ios', values.ios, 100, 1, 20_000) }),
    keep: values.keep ?? false,
    history: values.history ?? false,
    progress: (line) => process.stderr.write(`nestlab: ${line}\n`),
  }).catch((err: unknown) => {
    // More I/Os than one report carries is the --ios (or the file) asking too much.
    if (ExperimentError.is(err, 'HISTORY_TOO_LONG')) throw new UsageError(err.message);
    throw err;
  });
  process.stdout.write(values.json ? `${JSON.stringify(r, null, 2)}\n` : format(r));
  return r.pass ? EXIT.ok : EXIT.notAsExpected;
}
