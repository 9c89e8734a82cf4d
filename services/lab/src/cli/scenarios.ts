import { parseArgs } from 'node:util';
import { catalogue } from '../scenarios/builtin.js';
import { userScenarioDir } from '../scenarios/load.js';

export const SCENARIOS_HELP = `nestlab scenarios [--json]

Lists every scenario: the shipped ones and those in your scenarios folder
(${'`'}.nestlab/scenarios/${'`'} under the current directory, or $NESTLAB_SCENARIOS).`;

export async function scenarios(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean' } },
    strict: true,
  });
  const cat = catalogue();
  const rows = cat.files.map((f) => ({
    id: f.id,
    title: f.title,
    expected: f.expected,
    runnable: cat.whyNot(f.id) === null,
  }));
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ scenarios: rows, userDir: userScenarioDir() }, null, 2)}\n`,
    );
    return 0;
  }
  const w = Math.max(...rows.map((r) => r.id.length));
  const e = Math.max(...rows.map((r) => r.expected.length));
  for (const r of rows) {
    process.stdout.write(
      `${r.id.padEnd(w)}  ${r.expected.padEnd(e)}  ${r.title}${r.runnable ? '' : '  (not runnable yet)'}\n`,
    );
  }
  return 0;
}
