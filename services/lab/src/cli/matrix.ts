import { parseArgs } from 'node:util';
import { runScenario } from '../run/orchestrator.js';
import type { RunReport } from '../run/report.js';
import { saveReport } from '../run/store.js';
import { catalogue } from '../scenarios/builtin.js';
import { sessionFromFlags, withFleet } from './session.js';
import { withFleetHeld } from '../fleet/fleet-lease.js';
import { EXIT, intOption } from './usage.js';

export const MATRIX_HELP = `nestlab matrix [--json] [--ios N] [--seed S] [--nats-url URL] [--stack ID] [--private]

Runs every runnable scenario on one fleet, one after the other (each run
reconfigures every layer), and prints scenario | expected | observed | pass |
key figures. Exit 0 only if all pass. Uses the running \`nestlab up\` fleet if
there is one (--private: always start a private fleet). --json prints {"scenarios": [<run report>…]}.`;

export async function matrix(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      json: { type: 'boolean' },
      ios: { type: 'string' },
      seed: { type: 'string' },
      'nats-url': { type: 'string' },
      stack: { type: 'string' },
      private: { type: 'boolean' },
    },
    strict: true,
  });
  const ios = values.ios === undefined ? undefined : intOption('ios', values.ios, 0, 1, 10_000_000);
  const seed = intOption('seed', values.seed, 1, 0, 0xffffffff);
  const cat = catalogue();
  const runnable = cat.files.filter((f) => cat.whyNot(f.id) === null);
  const progress = (line: string) => process.stderr.write(`nestlab: ${line}\n`);
  const reports: RunReport[] = await withFleet(sessionFromFlags(values, progress), (bus) =>
    // Held across the scenarios, so no other run slips in between two of them.
    withFleetHeld(bus, `matrix (${runnable.length} scenarios)`, async () => {
      const out: RunReport[] = [];
      for (const [i, f] of runnable.entries()) {
        const scenario = cat.find(f.id);
        if (!scenario) continue;
        progress(`[${i + 1}/${runnable.length}] ${f.id}`);
        const report = await runScenario(bus, scenario, { seed, ...(ios ? { ios } : {}) });
        saveReport(report);
        out.push(report);
      }
      return out;
    }),
  );
  if (values.json) process.stdout.write(`${JSON.stringify({ scenarios: reports }, null, 2)}\n`);
  else process.stdout.write(formatMatrix(reports));
  return reports.every((r) => r.pass) ? EXIT.ok : EXIT.notAsExpected;
}

function keyFigures(r: RunReport): string {
  const d = r.dma;
  const parts = [`ios ${r.ios.verified}/${r.ios.submitted} ok`, `dma ${d.total}`];
  if (d.translated) parts.push(`translated ${d.translated}`);
  if (d.bypassed) parts.push(`bypass ${d.bypassed}`);
  if (d.direct) parts.push(`direct ${d.direct}`);
  if (d.misdirected) parts.push(`misdirected ${d.misdirected} (→ ${r.firstMisdirected?.owner})`);
  if (d.faulted) parts.push(`faulted ${d.faulted}`);
  if (r.rogue) parts.push(`rogue ${r.rogue.verdict}`);
  if (r.driver.error) parts.push(r.driver.error.code);
  return parts.join(', ');
}

export function formatMatrix(reports: RunReport[]): string {
  const rows = [
    ['scenario', 'expected', 'observed', 'pass', 'key figures'],
    ...reports.map((r) => [
      r.scenario,
      r.expected,
      r.outcome,
      r.pass ? 'PASS' : 'FAIL',
      keyFigures(r),
    ]),
  ];
  const widths =
    rows[0]?.map((_, c) => Math.max(...rows.map((row) => (row[c] ?? '').length))) ?? [];
  const lines = rows.map((row) =>
    row.map((cell, c) => (c === row.length - 1 ? cell : cell.padEnd(widths[c] ?? 0))).join('  '),
  );
  const passed = reports.filter((r) => r.pass).length;
  return `${lines.join('\n')}\n\n${passed}/${reports.length} scenarios as expected\n`;
}
