// A fault step the workload outruns tested nothing: the run says so
// (inconclusive, not passing) instead of judging the checkers as if the fault
// had struck. Here on purpose: the step waits for more I/Os than the job has.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadAllExperiments } from './load.js';
import { runExperiment } from './runner.js';

describe('a step the workload never reaches', () => {
  it('makes the run inconclusive: not passing, the step listed as not applied', async () => {
    const base = loadAllExperiments().find((x) => x.id === 'crash-restart-l0');
    assert.ok(base);
    const step = base.faults[0]!;
    const e = { ...base, faults: [{ ...step, at: { completed: 1000 } }] };
    const r = await runExperiment(e, { ios: 20 });
    assert.equal(r.pass, false);
    assert.match(
      r.inconclusive ?? '',
      /never applied \(the first at 1000 completed\): the workload ended first/,
    );
    assert.deepEqual(
      r.faults.injected.filter((i) => 'step' in i).map((i) => ('applied' in i ? i.applied : null)),
      [false],
    );
    // Nothing struck, so nothing to recover from; the rest of the run was judged as usual.
    assert.equal(r.checkers.recoveryMs, null);
    assert.equal(r.checkers.lostAckedWrites, 0);
    assert.equal(r.ios.planned, 20 + 64);
  });
});
