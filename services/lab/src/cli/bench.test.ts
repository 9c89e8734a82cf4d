import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { benchPlan } from './bench.js';
import { UsageError } from './usage.js';

const counts = (...argv: string[]) => benchPlan(argv).plan.stacks?.counts;

describe('nestlab bench arguments', () => {
  it('runs no stacks section unless asked', () => {
    assert.equal(benchPlan([]).plan.stacks, undefined);
    assert.equal(benchPlan(['--quick', '--json']).json, true);
  });

  it('reads --stacks with or without counts, always measuring K = 1 for the scaling', () => {
    assert.deepEqual(counts('--stacks'), [1, 2, 4]);
    assert.deepEqual(counts('--stacks', '--json'), [1, 2, 4]);
    assert.deepEqual(counts('--stacks', '2'), [1, 2]);
    assert.deepEqual(counts('--stacks=4,2'), [1, 2, 4]);
    assert.deepEqual(counts('--stacks', '1'), [1]);
    const quick = benchPlan(['--quick', '--stacks', '2']).plan.stacks!;
    const full = benchPlan(['--stacks', '2']).plan.stacks!;
    assert.equal(quick.scenario, 'xen-pv-dom0-dma-api');
    assert.equal(quick.iodepth, 32);
    assert.ok(quick.ios < full.ios, 'quick runs fewer I/Os');
  });

  it('refuses counts that are not 1 to 8 stacks with a usage error', () => {
    for (const bad of ['0', '9', 'two', '2,', '1.5', '-1', '']) {
      assert.throws(() => benchPlan([`--stacks=${bad}`]), UsageError, `--stacks=${bad}`);
    }
    assert.throws(() => benchPlan(['--stacks', '2', 'extra']), UsageError);
  });
});
