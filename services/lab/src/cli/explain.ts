import { parseArgs } from 'node:util';
import { describeDevice } from '../run/report.js';
import { lastReport } from '../run/store.js';
import { catalogue } from '../scenarios/builtin.js';
import { UsageError } from './usage.js';

export const EXPLAIN_HELP = `nestlab explain <scenario> [--json]

Prints the sentence of the 2014 thread the scenario illustrates (quoted,
with who wrote it), the scenario's explanation and, once it has been run (nestlab run or
matrix keep the last report under .nestlab/runs/), its first misdirected or
faulted device access laid out layer by layer:
pseudo-physical → bus → machine → host-physical, with the owner of the frame hit.`;

export async function explain(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: { json: { type: 'boolean' } },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length !== 1) throw new UsageError('explain takes one scenario id');
  const id = positionals[0] ?? '';
  const cat = catalogue();
  const file = cat.files.find((f) => f.id === id);
  if (!file) throw new UsageError(`unknown scenario ${JSON.stringify(id)}`);
  const report = lastReport(id);
  const m = report?.firstMisdirected ?? null;
  const ladder = m
    ? [
        { layer: 'pseudo_phys', addr: m.pseudo, by: 'the driver' },
        { layer: 'bus', addr: m.bus, by: 'legacyPhysAsBus / DMA API' },
        {
          layer: 'machine',
          addr: m.machine,
          by: 'DMA engine',
          note: `owner ${m.owner}; intended ${m.intendedMachine}`,
        },
        { layer: 'host_phys', addr: m.hostPhys, by: 'memslot' },
      ]
    : null;
  if (values.json) {
    process.stdout.write(
      `${JSON.stringify({ id, title: file.title, expected: file.expected, group: file.group ?? null, quote: file.quote ?? null, explanation: file.explanation.trim(), lastRun: report, ladder }, null, 2)}\n`,
    );
    return 0;
  }
  const quote = file.quote
    ? `"${file.quote.said}"\n  — ${file.quote.who}, virtualization list, September 2014\n\n`
    : '';
  process.stdout.write(
    `${file.id} — ${file.title}\nexpected: ${file.expected}\n\n${quote}${file.explanation.trim()}\n`,
  );
  if (!report) {
    process.stdout.write(
      `\nNot run yet here: \`nestlab run ${id}\` records a report for this command.\n`,
    );
    return 0;
  }
  process.stdout.write(
    `\nLast run: ${report.outcome} (${report.pass ? 'as expected' : 'NOT as expected'}), seed ${report.seed}\n${report.explanation}\n`,
  );
  const device = describeDevice(report);
  if (device) process.stdout.write(`Device: ${device}\n`);
  if (ladder) {
    process.stdout.write(`\nFirst misdirected access (${m?.what}):\n`);
    for (const step of ladder)
      process.stdout.write(
        `  ${step.layer.padEnd(12)} ${String(step.addr ?? '?').padEnd(14)} ${step.note ?? ''}\n`,
      );
  }
  if (report.rogue)
    process.stdout.write(
      `\nRogue access at bus ${report.rogue.bus}: ${report.rogue.verdict}${report.rogue.machine ? ` → machine ${report.rogue.machine} (owner ${report.rogue.owner})` : ''}\n`,
    );
  return 0;
}
