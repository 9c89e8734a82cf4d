import { parseArgs } from 'node:util';
import { runScenario } from '../run/orchestrator.js';
import { formatReport } from '../run/report.js';
import { catalogue } from '../scenarios/builtin.js';
import { notRunnable, toScenario } from '../scenarios/from-file.js';
import { loadScenarioFile } from '../scenarios/load.js';
import { sessionFromFlags, withFleet } from './session.js';
import { onTeardown } from '../fleet/teardown.js';
import { RUN_LIMITS as L } from '../run/limits.js';
import { saveReport } from '../run/store.js';
import { EXIT, UsageError, intOption } from './usage.js';

export const RUN_HELP = `nestlab run <scenario | --file F> [--ios N] [--iodepth D] [--bs B] [--seed S] [--json] [--nats-url URL] [--stack ID]

Runs a scenario's workload on the running \`nestlab up\` fleet if there is one
(else on a private fleet started for the run) and prints a report. Exit code 0 when the
observed outcome equals the scenario's expected outcome, 1 when not, 2 on
usage errors.

  --ios N        number of I/Os (default: the scenario's)
  --iodepth D    I/Os in flight (default: the scenario's)
  --bs B         block size in bytes, a multiple of 512 (default 4096)
  --seed S       seeds the P2M layout and the workload (default 1)
  --json         print the report as JSON
  --nats-url URL use a running fleet on this NATS
  --stack ID     its stack token (default s1)
  --file F       run the scenario in this YAML file instead of a known id
  --private      start a private fleet even when \`nestlab up\` is running

\`nestlab scenarios\` lists the known ids.`;

export async function run(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      ios: { type: 'string' },
      iodepth: { type: 'string' },
      bs: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
      'nats-url': { type: 'string' },
      stack: { type: 'string' },
      file: { type: 'string' },
      private: { type: 'boolean' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length + (values.file ? 1 : 0) !== 1) {
    throw new UsageError('run takes exactly one scenario id or --file F (see `nestlab help run`)');
  }
  const file = values.file ? loadScenarioFile(values.file) : null;
  const known = file ? null : catalogue();
  const id = file?.id ?? positionals[0] ?? '';
  const source = file ?? known?.files.find((f) => f.id === id);
  if (!source) {
    const ids = known?.files.map((s) => s.id).join(', ');
    throw new UsageError(`unknown scenario ${JSON.stringify(id)}; known: ${ids}`);
  }
  const why = notRunnable(source);
  if (why) throw new UsageError(`scenario ${id} cannot run yet: ${why}`);
  const scenario = toScenario(source);
  const bs = intOption('bs', values.bs, scenario.workload.bs, 512, 1 << 20);
  if (bs % 512 !== 0) throw new UsageError(`--bs must be a multiple of 512, got ${bs}`);
  const opts = {
    ios: intOption('ios', values.ios, scenario.workload.ios, L.ios.min, L.ios.max),
    iodepth: intOption(
      'iodepth',
      values.iodepth,
      scenario.workload.iodepth,
      L.iodepth.min,
      L.iodepth.max,
    ),
    bs,
    seed: intOption('seed', values.seed, 1, L.seed.min, L.seed.max),
    progress: (line: string) => process.stderr.write(`nestlab: ${line}\n`),
  };

  const session = sessionFromFlags(values, opts.progress);
  return withFleet(session, async (bus, info) => {
    // Ctrl-C (or SIGTERM, SIGHUP) cancels the job, so a shared fleet is not left running it.
    const cancel = new AbortController();
    const running = runScenario(bus, scenario, { ...opts, signal: cancel.signal });
    // It waits a little for the cancelled run's report, never long: a private fleet is going away.
    const forget = onTeardown(() => {
      cancel.abort();
      const settled = running.then(
        () => undefined,
        () => undefined,
      );
      return Promise.race([settled, new Promise((r) => setTimeout(r, 2000).unref())]);
    });
    const report = await running.finally(forget);
    saveReport(report);
    if (info.consoleUrl && report.traceIds[0]) {
      opts.progress(`first trace: ${info.consoleUrl}/trace/${report.traceIds[0]}`);
    }
    process.stdout.write(
      values.json ? `${JSON.stringify(report, null, 2)}\n` : formatReport(report, scenario),
    );
    return report.pass ? EXIT.ok : EXIT.notAsExpected;
  });
}
