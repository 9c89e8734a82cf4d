import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { catalogue } from '../scenarios/builtin.js';
import { meets } from './expect.js';
import { BUILTIN_EXPERIMENTS, loadAllExperiments, parseExperimentText } from './load.js';
import { runExperiment } from './runner.js';

const SHIPPED = [
  'crash-restart-dom0',
  'crash-restart-iommu',
  'crash-restart-l0',
  'crash-restart-xen',
  'interrupt-path-loss',
  'iommu-path-chaos',
  'nats-restart',
  'p2m-change',
  'stale-iotlb',
  'transport-chaos',
  'unmap-in-flight',
];

const MINIMAL = `id: x
title: t
description: d
scenario: xen-pv-dom0-dma-api
faults: []
expect: {}
`;

describe('experiment files', () => {
  const scratch = mkdtempSync(join(tmpdir(), 'nestlab-xpfiles-'));
  after(() => rmSync(scratch, { recursive: true, force: true }));

  it('ships the issue’s experiments, each on a runnable scenario and declaring its verdicts', () => {
    const all = loadAllExperiments([BUILTIN_EXPERIMENTS]);
    assert.deepEqual(all.map((e) => e.id).sort(), SHIPPED);
    const cat = catalogue();
    for (const e of all) {
      assert.equal(cat.whyNot(e.scenario), null, `${e.id}: ${e.scenario}`);
      assert.ok(e.expect.silentCorruptions !== undefined, `${e.id} judges silent corruption`);
      assert.ok(e.expect.unendedIos !== undefined, `${e.id} judges unended I/Os`);
    }
    for (const id of SHIPPED.filter((i) => i.startsWith('crash-restart')))
      assert.deepEqual(
        ['lostAckedWrites', 'silentCorruptions', 'unendedIos'].map(
          (k) => all.find((e) => e.id === id)!.expect[k as 'unendedIos'],
        ),
        [0, 0, 0],
        id,
      );
  });

  it('names the file, line and field of a bad value', () => {
    const text = MINIMAL.replace(
      'faults: []',
      'faults:\n  - at: { completed: 3 }\n    crash: qemu',
    );
    assert.throws(
      () => parseExperimentText(text, 'bad.yaml'),
      (e: Error & { code?: string }) =>
        e.code === 'EXPERIMENT_INVALID' && /^bad\.yaml:6: faults\.0/.test(e.message),
    );
    assert.throws(
      () =>
        parseExperimentText(
          MINIMAL.replace('expect: {}', 'expect: { lostAckedWrites: "few" }'),
          'e.yaml',
        ),
      /: e\.yaml:6: expect\.lostAckedWrites/,
    );
    assert.throws(
      () => parseExperimentText(MINIMAL.replace('title: t\n', ''), 'm.yaml'),
      /: m\.yaml:1: title/,
    );
  });

  it('refuses steps out of logical order, unknown fields and a file named after another id', () => {
    const steps = MINIMAL.replace(
      'faults: []',
      'faults:\n  - { at: { completed: 9 }, crash: l0 }\n  - { at: { completed: 2 }, crash: xen }',
    );
    assert.throws(() => parseExperimentText(steps, 's.yaml'), /faults\.1\.at\.completed: is 2/);
    assert.throws(
      () => parseExperimentText(`${MINIMAL}color: red\n`, 'u.yaml'),
      /unknown field|color/,
    );
    writeFileSync(join(scratch, 'other.yaml'), MINIMAL);
    assert.throws(
      () => loadAllExperiments([scratch]),
      /id: is x but the file is named other\.yaml/,
    );
  });

  it('compares verdicts with numbers, comparisons, any and null', () => {
    assert.equal(meets(0, 0), true);
    assert.equal(meets(2, 0), false);
    assert.equal(meets(3, '>0'), true);
    assert.equal(meets(0, '>0'), false);
    assert.equal(meets(5, '<=5'), true);
    assert.equal(meets(null, 'any'), true);
    assert.equal(meets(null, null), true);
    assert.equal(meets(10, null), false);
    assert.equal(meets(null, '>=0'), false);
  });
});

describe('an experiment whose history cannot fit one job report', () => {
  it('is refused before any process starts, naming the most I/Os that fit', async () => {
    const chaos = loadAllExperiments().find((e) => e.id === 'transport-chaos')!;
    // transport-chaos FLUSHes every 4 writes: 16000 I/Os make 20000 records, 16001 one more.
    await assert.rejects(runExperiment(chaos, { ios: 16_001 }), (err: Error) => {
      assert.equal((err as Error & { code?: string }).code, 'HISTORY_TOO_LONG');
      assert.match(err.message, /16001 I\/Os .* 20001 records; .* at most 16000 I\/Os/);
      return true;
    });
  });
});
