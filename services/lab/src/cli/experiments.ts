import { parseArgs } from 'node:util';
import { describeStep } from '../experiments/steps.js';
import { loadAllExperiments, userExperimentDir } from '../experiments/load.js';

export const EXPERIMENTS_HELP = `nestlab experiments [--json]

Lists every failure-injection experiment: the shipped ones and those in your
experiments folder (\`.nestlab/experiments/\` under the current directory, or
$NESTLAB_EXPERIMENTS). Run one with \`nestlab experiment <id>\`.`;

export async function experiments(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean' } },
    strict: true,
  });
  const rows = loadAllExperiments().map((e) => ({
    id: e.id,
    title: e.title,
    scenario: e.scenario,
    seed: e.seed ?? 1,
    faults: e.faults.map((s) => ({ at: s.at, what: describeStep(s) })),
    expect: e.expect,
  }));
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ experiments: rows, userDir: userExperimentDir() }, null, 2)}\n`,
    );
    return 0;
  }
  const w = Math.max(0, ...rows.map((r) => r.id.length));
  for (const r of rows) process.stdout.write(`${r.id.padEnd(w)}  ${r.title}\n`);
  return 0;
}
