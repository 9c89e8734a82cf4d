#!/usr/bin/env node
// Long property/fuzz runs: builds (turbo, cached), then runs every compiled
// *.property.test.js with fast-check set to --runs cases per property and one
// seed (--seed; else the commit's under CI=true, else random), and reports the cases actually run, failures
// and wall time. CI runs the same suites through run-tests.mjs at their
// default, modest counts.
//
// Usage: fuzz.mjs [--runs N] [--seed S] [--json] [path-substring …]
// Exit: 0 all properties held, 1 a property failed or a suite broke, 2 usage.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';

const root = new URL('../../../', import.meta.url).pathname;
const preload = new URL('./fuzz-preload.mjs', import.meta.url).pathname;

function usage(message) {
  process.stderr.write(
    `fuzz: ${message}\nusage: fuzz.mjs [--runs N] [--seed S] [--json] [filter…]\n`,
  );
  process.exit(2);
}

let args;
try {
  args = parseArgs({
    options: {
      runs: { type: 'string', default: '1000' },
      seed: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
    allowPositionals: true,
  });
} catch (err) {
  usage(err.message);
}
const runs = Number(args.values.runs);
if (!Number.isSafeInteger(runs) || runs < 1)
  usage(`--runs ${args.values.runs} is not a positive integer`);
/**
 * Without --seed: under CI (CI=true) the seed is the commit's (the first 31
 * bits of `git rev-parse HEAD`), so every commit explores new cases and its
 * run can be replayed from the hash; elsewhere a random one. Printed either way.
 */
function defaultSeed() {
  if (process.env.CI === 'true') {
    const head = spawnSync('git', ['rev-parse', 'HEAD'], { cwd: root, encoding: 'utf8' });
    const hex = head.status === 0 ? head.stdout.trim().slice(0, 8) : '';
    if (/^[0-9a-f]{8}$/.test(hex)) {
      seedSource = `from commit ${head.stdout.trim().slice(0, 12)}`;
      return parseInt(hex, 16) & 0x7fffffff;
    }
  }
  seedSource = 'random';
  return (Date.now() ^ (process.pid << 16)) | 0;
}
let seedSource = 'given';
const seed = args.values.seed === undefined ? defaultSeed() : Number(args.values.seed);
if (!Number.isSafeInteger(seed) || Math.abs(seed) > 0x7fffffff)
  usage(`--seed ${args.values.seed} is not a 32-bit integer`);

const build = spawnSync('npx', ['turbo', 'run', 'build', '--output-logs=errors-only'], {
  cwd: root,
  stdio: ['ignore', 'inherit', 'inherit'],
});
if (build.status !== 0) {
  process.stderr.write('fuzz: the build failed; nothing was run\n');
  process.exit(1);
}

function findSuites(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) findSuites(path, out);
    else if (name.endsWith('.property.test.js')) out.push(relative(root, path));
  }
  return out;
}
const suites = [];
for (const group of ['shared', 'services']) {
  for (const pkg of readdirSync(join(root, group))) {
    try {
      findSuites(join(root, group, pkg, 'dist'), suites);
    } catch {
      // a package without a dist has no suites
    }
  }
}
const filters = args.positionals;
const selected = suites
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (selected.length === 0) usage('no property suites matched');

const scratch = mkdtempSync(join(tmpdir(), 'nestlab-fuzz-'));
const report = join(scratch, 'report.jsonl');
process.stderr.write(
  `fuzz: ${selected.length} suites, ${runs} runs per property, seed ${seed} (${seedSource}; replay: --seed ${seed})\n`,
);
const started = process.hrtime.bigint();
const run = spawnSync(
  process.execPath,
  [
    '--import',
    preload,
    '--test',
    '--test-reporter=spec',
    '--test-concurrency=2',
    // A hang is a failure too: no suite may take an hour.
    '--test-timeout=3600000',
    ...selected,
  ],
  {
    cwd: root,
    env: {
      ...process.env,
      NESTLAB_FUZZ_RUNS: String(runs),
      NESTLAB_FUZZ_SEED: String(seed),
      NESTLAB_FUZZ_REPORT: report,
    },
    stdio: ['ignore', args.values.json ? 'pipe' : 'inherit', 'inherit'],
    encoding: 'utf8',
    maxBuffer: 256 << 20,
  },
);
const wallSeconds = Number(process.hrtime.bigint() - started) / 1e9;

let lines = [];
try {
  lines = readFileSync(report, 'utf8')
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l));
} catch {
  // no property completed
}
rmSync(scratch, { recursive: true, force: true });
const failedProps = lines.filter((l) => l.failed);
const summary = {
  suites: selected.length,
  properties: lines.length,
  cases: lines.reduce((n, l) => n + l.runs, 0),
  failed: failedProps.length,
  interrupted: lines.filter((l) => l.interrupted).length,
  runsPerProperty: runs,
  seed,
  wallSeconds: Math.round(wallSeconds * 10) / 10,
  testsPassed: run.status === 0,
  failures: failedProps.map((l) => ({ file: relative(root, l.file), seed: l.seed, path: l.path })),
};
if (args.values.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
else {
  process.stdout.write(
    `fuzz: ${summary.cases} cases in ${summary.properties} properties (${summary.suites} suites), ` +
      `${summary.failed} failed, ${summary.interrupted} interrupted, seed ${seed}, wall ${summary.wallSeconds} s\n`,
  );
  for (const f of summary.failures) {
    process.stdout.write(`  failed: ${f.file} (replay: seed ${f.seed}, path "${f.path}")\n`);
  }
}
process.exit(run.status === 0 && summary.failed === 0 && summary.properties > 0 ? 0 : 1);
