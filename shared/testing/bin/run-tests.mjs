#!/usr/bin/env node
// The repo's one test command: builds (turbo, cached), then runs every compiled
// *.test.js of every workspace in one `node --test` run, so there is one summary.
// Usage: run-tests.mjs [path-substring …] to run only matching files.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

const root = new URL('../../../', import.meta.url).pathname;
const filters = process.argv.slice(2);

const build = spawnSync('npx', ['turbo', 'run', 'build', '--output-logs=errors-only'], {
  cwd: root,
  stdio: 'inherit',
});
if (build.status !== 0) {
  console.error('run-tests: the build failed; no tests were run');
  process.exit(build.status ?? 1);
}

function findTests(dir, out) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules') continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) findTests(path, out);
    else if (name.endsWith('.test.js')) out.push(path);
  }
  return out;
}

const files = [];
for (const group of ['shared', 'services']) {
  for (const pkg of readdirSync(join(root, group))) {
    const dist = join(root, group, pkg, 'dist');
    try {
      findTests(dist, files);
    } catch {
      // a package without a dist has no tests to run
    }
  }
}
const selected = files
  .map((f) => relative(root, f))
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort();
if (selected.length === 0) {
  console.error('run-tests: no test files matched');
  process.exit(1);
}
console.error(`run-tests: ${selected.length} test files`);

const run = spawnSync(
  process.execPath,
  ['--test', '--test-reporter=spec', '--test-concurrency=2', ...selected],
  { cwd: root, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8', maxBuffer: 256 << 20 },
);
process.stdout.write(run.stdout ?? '');
const count = (label) => Number(new RegExp(`ℹ ${label} (\\d+)`).exec(run.stdout ?? '')?.[1] ?? 0);
const passed = count('pass');
const failed = count('fail') + count('cancelled');
console.log(`${passed} passed, ${failed} failed`);
process.exit(run.status === 0 && failed === 0 && passed > 0 ? 0 : 1);
