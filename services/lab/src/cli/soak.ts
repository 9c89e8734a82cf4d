import { parseArgs } from 'node:util';
import { runSoak, type SoakReport } from '../soak/soak.js';
import { EXIT, UsageError, intOption } from './usage.js';

export const SOAK_HELP = `nestlab soak --minutes M [--json] [--ios N] [--seed S] [--warmup-minutes W]

Starts a private fleet (a NATS user per service) and runs every runnable
scenario in turn for M minutes, sampling each service's RSS from
/proc/<pid>/status. Reports I/Os done, failed, lost (a write the driver saw
complete that did not read back, in a scenario expected to work) and unended
(neither completed nor failed), and per service the RSS after warm-up and at
the end. Memory is flat when the end RSS is within 10 % of the RSS after
warm-up. Exit 0 when every service stayed flat, nothing was lost or unended,
no service crashed and every run had its expected outcome; 1 otherwise; 2 on
usage errors.

  --minutes M         how long to run (a number, may be fractional: 0.5)
  --json              print the report as one JSON object
  --ios N             I/Os per scenario run (default: each scenario's own)
  --seed S            seed of the first run; run k uses S+k (default 1)
  --warmup-minutes W  warm-up before the first RSS (default 20 % of M, at most 5;
                      never shorter than one pass over the scenarios)`;

function minutesOption(name: string, raw: string | undefined, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+(\.\d+)?$/.test(raw) || !(n > 0) || n > max) {
    throw new UsageError(
      `--${name} takes a number of minutes in (0, ${max}], got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

export async function soak(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    options: {
      minutes: { type: 'string' },
      json: { type: 'boolean' },
      ios: { type: 'string' },
      seed: { type: 'string' },
      'warmup-minutes': { type: 'string' },
    },
    strict: true,
    allowPositionals: true,
  });
  if (positionals.length > 0)
    throw new UsageError(`soak takes no arguments, got ${JSON.stringify(positionals[0])}`);
  const minutes = minutesOption('minutes', values.minutes, 7 * 24 * 60);
  if (minutes === undefined)
    throw new UsageError('soak needs --minutes M (see `nestlab help soak`)');
  const warmup = minutesOption('warmup-minutes', values['warmup-minutes'], minutes);
  const report = await runSoak({
    minutes,
    seed: intOption('seed', values.seed, 1, 0, 0xffffffff),
    ...(values.ios === undefined ? {} : { ios: intOption('ios', values.ios, 0, 1, 1_000_000) }),
    ...(warmup === undefined ? {} : { warmupMinutes: warmup }),
    progress: (line) => process.stderr.write(`nestlab: ${line}\n`),
  });
  process.stdout.write(values.json ? `${JSON.stringify(report)}\n` : formatSoak(report));
  return report.pass ? EXIT.ok : EXIT.notAsExpected;
}

const mib = (b: number | null) => (b === null ? '?' : `${(b / 2 ** 20).toFixed(1)} MiB`);

export function formatSoak(r: SoakReport): string {
  const lines = [
    `soak: ${r.elapsedSeconds} s (warm-up ${r.warmupSeconds} s), ${r.runs.total} runs, ${r.runs.asExpected} as expected`,
    `I/Os: ${r.ios.done} done, ${r.ios.failed} failed, ${r.ios.lost} lost, ${r.ios.unended} unended`,
    ...Object.entries(r.services).map(
      ([name, s]) =>
        `  ${name.padEnd(14)} RSS ${mib(s.rssAfterWarmupBytes)} after warm-up → ${mib(s.rssEndBytes)} at the end ` +
        `(${s.growthPct === null ? '?' : `${s.growthPct > 0 ? '+' : ''}${s.growthPct} %`}, peak ${mib(s.rssPeakBytes)}) ${s.flat ? 'flat' : 'GROWING'}`,
    ),
  ];
  if (Object.keys(r.errors).length) lines.push(`errors: ${JSON.stringify(r.errors)}`);
  if (r.crashed) lines.push(`CRASHED: ${r.crashed.service} (${r.crashed.how})`);
  lines.push(r.pass ? 'PASS' : 'FAIL');
  return `${lines.join('\n')}\n`;
}
