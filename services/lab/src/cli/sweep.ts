import { parseArgs } from 'node:util';
import { formatSummary, runSweep } from '../cluster/sweep.js';
import { loadAllExperiments } from '../experiments/load.js';
import { catalogue } from '../scenarios/builtin.js';
import { EXIT, UsageError, intOption } from './usage.js';

export const SWEEP_HELP = `nestlab sweep <scenario | experiment> --seeds A..B [--ios N] [--json] [--nats-url URL[,URL…]]

Runs a scenario or an experiment once per seed on the workers of a NATS
cluster (\`nestlab worker\`): one work item per seed, progress on stderr, one
result per seed (a redelivered item's second result is dropped), then the
summary: pass or fail per seed, and each failed seed with the command that
reruns it on this machine. Started again with the same arguments, a sweep
continues where it stopped: seeds already reported are not run again.
Exit code 0 when every seed is as expected, 1 when not, 2 on usage errors.

  --seeds A..B     the seeds, inclusive
  --ios N          I/Os per run (default: the scenario's or experiment's)
  --json           print the summary as JSON
  --nats-url URLS  the cluster's nodes (default $NATS_URL or nats://127.0.0.1:4222)`;

export async function sweep(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      seeds: { type: 'string' },
      ios: { type: 'string' },
      json: { type: 'boolean' },
      'nats-url': { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length !== 1)
    throw new UsageError('sweep takes exactly one scenario or experiment id');
  const id = positionals[0]!;
  const range = /^(\d+)\.\.(\d+)$/.exec(values.seeds ?? '');
  if (!range) throw new UsageError('sweep needs --seeds A..B (e.g. --seeds 1..100)');
  const from = Number(range[1]);
  const to = Number(range[2]);
  if (from > to || to > 0xffffffff || to - from >= 100_000)
    throw new UsageError(
      `--seeds ${values.seeds}: A..B with A ≤ B, B < 2^32, at most 100000 seeds`,
    );
  const cat = catalogue();
  const experiments = loadAllExperiments();
  let kind: 'scenario' | 'experiment';
  if (cat.files.some((f) => f.id === id)) {
    const why = cat.whyNot(id);
    if (why) throw new UsageError(`scenario ${id} cannot run yet: ${why}`);
    kind = 'scenario';
  } else if (experiments.some((e) => e.id === id)) kind = 'experiment';
  else
    throw new UsageError(
      `unknown scenario or experiment ${JSON.stringify(id)}; scenarios: ${cat.files.map((f) => f.id).join(', ')}; experiments: ${experiments.map((e) => e.id).join(', ')}`,
    );
  const summary = await runSweep({
    urls: values['nats-url'] ?? process.env['NATS_URL'] ?? 'nats://127.0.0.1:4222',
    kind,
    id,
    from,
    to,
    ...(values.ios === undefined ? {} : { ios: intOption('ios', values.ios, 1, 1, 10_000_000) }),
    progress: (line) => process.stderr.write(`nestlab sweep: ${line}\n`),
  });
  process.stdout.write(
    values.json ? `${JSON.stringify(summary, null, 2)}\n` : formatSummary(summary),
  );
  return summary.failed === 0 ? EXIT.ok : EXIT.notAsExpected;
}
