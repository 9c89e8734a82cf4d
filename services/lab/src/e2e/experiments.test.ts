// Failure-injection experiments end to end: real service processes, a real
// nats-server, SIGKILLs, the disk image read back from its file. Each test
// runs an experiment on its own private fleet.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { loadAllExperiments } from '../experiments/load.js';
import { runExperiment, type ExperimentResult } from '../experiments/runner.js';

const CLI = fileURLToPath(new URL('../cli.js', import.meta.url));
const find = (id: string) => {
  const e = loadAllExperiments().find((x) => x.id === id);
  assert.ok(e, id);
  return e;
};
const why = (r: ExperimentResult) =>
  JSON.stringify({
    checkers: r.checkers,
    mismatches: r.mismatches,
    evidence: r.evidence,
    observed: r.faults.observed,
    kept: r.kept,
  });

describe('experiments on a real fleet', () => {
  it('crash-restart-l0: nothing FLUSH-acknowledged is lost, nothing silently corrupted, every I/O ends', async () => {
    const r = await runExperiment(find('crash-restart-l0'), { ios: 80 });
    assert.equal(r.checkers.lostAckedWrites, 0, why(r));
    assert.equal(r.checkers.silentCorruptions, 0, why(r));
    assert.equal(r.checkers.unendedIos, 0, why(r));
    assert.ok(
      r.ios.durableWrites > 0,
      'some writes were FLUSHed: the check had something to check',
    );
    assert.ok(r.checkers.recoveryMs !== null && r.checkers.recoveryMs >= 0, why(r));
    assert.equal(r.pass, true, why(r));
  });

  it('crash-restart-l0 with an L0 that acknowledges FLUSH without writing back loses acknowledged writes', async () => {
    const r = await runExperiment(find('crash-restart-l0'), {
      ios: 80,
      env: { NESTLAB_L0_UNSAFE_FLUSH: '1' },
    });
    assert.ok(r.checkers.lostAckedWrites > 0, why(r));
    assert.ok(r.evidence.lost.length > 0, 'the lost writes are named');
    assert.equal(r.pass, false, 'the checker fails the broken variant');
  });

  it('transport-chaos with seed 7 twice: identical checkers and injected faults', async () => {
    const e = find('transport-chaos');
    const a = await runExperiment(e, { seed: 7 });
    const b = await runExperiment(e, { seed: 7 });
    assert.ok(
      a.faults.injected.length > 1,
      `transport faults were injected: ${JSON.stringify(a.faults.injected)}`,
    );
    assert.deepEqual(b.checkers, a.checkers);
    assert.deepEqual(b.faults.injected, a.faults.injected);
    assert.equal(a.checkers.recoveryMs, null, 'no discrete fault');
    assert.equal(a.pass, true, why(a));
  });

  it('the CLI lists experiments as JSON and refuses bad words with exit code 2', () => {
    const list = spawnSync(process.execPath, [CLI, 'experiments', '--json'], { encoding: 'utf8' });
    assert.equal(list.status, 0, list.stderr);
    const ids = (
      JSON.parse(list.stdout) as { experiments: { id: string; title: string }[] }
    ).experiments.map((x) => x.id);
    assert.ok(ids.includes('crash-restart-l0') && ids.includes('transport-chaos'), ids.join());
    const unknown = spawnSync(process.execPath, [CLI, 'experiment', 'no-such'], {
      encoding: 'utf8',
    });
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /unknown experiment "no-such"; known: .*crash-restart-l0/);
    const badSeed = spawnSync(
      process.execPath,
      [CLI, 'experiment', 'nats-restart', '--seed', 'x'],
      {
        encoding: 'utf8',
      },
    );
    assert.equal(badSeed.status, 2);
    assert.match(badSeed.stderr, /--seed takes a whole number/);
    const inject = spawnSync(process.execPath, [CLI, 'faults', 'inject', 'l0', 'melt'], {
      encoding: 'utf8',
    });
    assert.equal(inject.status, 2);
    assert.match(inject.stderr, /unknown domain fault "melt"/);
  });
});
