// Loaded with `node --import` into every test process of a fuzz run
// (fuzz.mjs): sets fast-check's run count and seed for every property that
// does not pin its own, and appends one line per property checked to
// $NESTLAB_FUZZ_REPORT so the runner can add up the cases actually run.
import { appendFileSync } from 'node:fs';
import fc from 'fast-check';

const runs = Number(process.env.NESTLAB_FUZZ_RUNS);
const seed = Number(process.env.NESTLAB_FUZZ_SEED);
const report = process.env.NESTLAB_FUZZ_REPORT;

fc.configureGlobal({
  // node's spec reporter does not print an error's cause: put the assertion in the message.
  includeErrorInReport: true,
  ...(Number.isInteger(runs) && runs > 0 ? { numRuns: runs } : {}),
  ...(Number.isInteger(seed) ? { seed } : {}),
});

if (report) {
  fc.installGlobalPlugin(() => ({
    // Must return synchronously: fast-check requires it for synchronous properties.
    onAllRunsComplete(details) {
      const line = {
        file: process.argv[1] ?? '',
        runs: details.numRuns,
        skips: details.numSkips,
        failed: details.failed,
        interrupted: details.interrupted,
        seed: details.seed,
        ...(details.failed ? { path: details.counterexamplePath } : {}),
      };
      appendFileSync(report, `${JSON.stringify(line)}\n`);
    },
  }));
}
