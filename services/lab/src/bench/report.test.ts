import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  besideRawCpu,
  formatBench,
  median,
  percentile,
  type Baseline,
  type BenchReport,
  type BenchRun,
} from './report.js';
import { withScaling, type StacksReport } from './stacks-report.js';
import { judgeTargets } from './targets.js';

const baseline: Baseline = {
  reqRep4kPerSec: 8000,
  rttP50Us: 400,
  reqRep4kConcurrency: 32,
  cpuUsPerRoundTrip: 80,
  cpuUsPerRoundTripByProcess: { requester: 40, echo: 25, 'nats-server': 15 },
  cpuUsPerSequentialRoundTrip: 120,
};

const run = (over: Partial<BenchRun>): BenchRun => ({
  scenario: 'xen-pv-dom0-dma-api',
  iodepth: 32,
  traced: false,
  verify: false,
  iops: 5000,
  clatP50Us: 6000,
  clatP99Us: 9000,
  msgsPerIo: 0.3,
  iotlbHitRate: null,
  cpuUsPerIo: null,
  cpuUsPerIoTotal: null,
  cpuVsRawRoundTrip: null,
  cpuCeilingIops: null,
  ios: 4000,
  reps: 3,
  failed: 0,
  ...over,
});

describe('bench report', () => {
  it('takes medians and nearest-rank percentiles', () => {
    assert.equal(median([3, 1, 2]), 2);
    assert.equal(median([4, 1, 3, 2]), 2.5);
    assert.equal(median([]), 0);
    assert.equal(percentile([5, 1, 4, 2, 3], 0.5), 3);
    assert.equal(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.99), 10);
  });

  it('judges every target of issue 17 per scenario, against the baseline of the same run', () => {
    const dma = 'xen-pv-dom0-dma-api';
    const viommu = 'viommu-access-platform';
    const runs = [
      run({ cpuUsPerIo: { 'dom0-kernel': 50, 'nats-server': 20 } }),
      run({ traced: true, iops: 4200 }),
      run({ iodepth: 1, iops: 600, clatP50Us: 1000, msgsPerIo: 4 }),
      run({ verify: true, iops: 100 }),
      run({ scenario: viommu, iops: 2400, msgsPerIo: 0.534, cpuUsPerIo: { l0: 131 } }),
      run({ scenario: viommu, iodepth: 1, clatP50Us: 2400 }),
    ];
    const memory = { guestBytes: 2 ** 32, touchedBytes: 2 ** 26, l0RssBytes: 200e6 };
    const t = judgeTargets(baseline, runs, memory, 32);
    const by = (scenario: string, what: string) =>
      t.find((x) => x.scenario === scenario && x.what.startsWith(what));
    const got = (scenario: string, what: string) => {
      const x = by(scenario, what);
      return [x?.value, x?.bound, x?.met];
    };
    assert.deepEqual(got(dma, 'iodepth 32 untraced IOPS'), [0.625, 0.5, true]);
    assert.deepEqual(got(dma, 'iodepth 32 untraced CPU'), [70, 80, true]);
    assert.deepEqual(got(dma, 'iodepth 32 untraced NATS'), [0.3, 0.18, false]);
    assert.deepEqual(got(dma, 'iodepth 1 clat'), [2.5, 2.5, true]);
    assert.deepEqual(got(dma, 'iodepth 32 traced'), [0.84, 0.8, true]);
    assert.deepEqual(got(viommu, 'iodepth 32 untraced IOPS'), [0.3, 0.35, false]);
    assert.deepEqual(got(viommu, 'iodepth 32 untraced CPU'), [131, 130, false]);
    // No higher than the 0.53, at the two decimals.
    assert.deepEqual(got(viommu, 'iodepth 32 untraced NATS'), [0.53, 0.53, true]);
    assert.deepEqual(got(viommu, 'iodepth 1 clat'), [6, 6, true]);
    assert.deepEqual(got(viommu, 'iodepth 32 traced'), [null, 0.8, false]);
    assert.deepEqual(got('-', 'l0-hypervisor RSS'), [200e6, 300e6, true]);
    assert.deepEqual(got('-', '--stacks 2'), [null, 1.6, false], 'not measured without --stacks');
    const missing = judgeTargets(baseline, [run({ iodepth: 8 })], memory, 32);
    assert.ok(
      missing.filter((x) => x.scenario !== '-').every((x) => x.value === null && !x.met),
      'a run that is not there is not met',
    );
  });

  it('judges --stacks 2 by its scaling over one stack', () => {
    const memory = { guestBytes: 2 ** 32, touchedBytes: 2 ** 26, l0RssBytes: 200e6 };
    const scaled = (two: number) =>
      judgeTargets(baseline, [], memory, 32, stacks([5000, two])).find((x) =>
        x.what.startsWith('--stacks 2'),
      );
    assert.deepEqual([scaled(8000)?.value, scaled(8000)?.met], [1.6, true]);
    assert.deepEqual([scaled(7000)?.value, scaled(7000)?.met], [1.4, false]);
  });

  it('sets the CPU per I/O beside raw NATS CPU per round trip', () => {
    const r = besideRawCpu(run({ cpuUsPerIoTotal: 200 }), baseline);
    assert.equal(r.cpuVsRawRoundTrip, 2.5);
    assert.equal(besideRawCpu(run({}), baseline).cpuVsRawRoundTrip, null);
    const blind = { ...baseline, cpuUsPerRoundTrip: null };
    assert.equal(besideRawCpu(run({ cpuUsPerIoTotal: 200 }), blind).cpuVsRawRoundTrip, null);
  });

  it('prints one fio-style line per run, one per target, and raw NATS CPU', () => {
    const memory = { guestBytes: 2 ** 32, touchedBytes: 2 ** 26, l0RssBytes: 200e6 };
    const runs = [
      run({
        cpuUsPerIo: { 'dom0-kernel': 250, 'l0-hypervisor': 150 },
        cpuUsPerIoTotal: 400,
        cpuCeilingIops: 5000,
      }),
      run({ iodepth: 1, failed: 2, iotlbHitRate: 0.75 }),
    ].map((x) => besideRawCpu(x, baseline));
    const r: BenchReport = {
      baseline,
      runs,
      memory,
      machine: { cpus: 2, cpuModel: 'cpu', node: 'v20', natsServer: 'v2.9' },
      targets: judgeTargets(baseline, runs, memory, 32),
    };
    const text = formatBench(r);
    assert.match(
      text,
      /CPU per round trip 80us \(requester 40, echo 25, nats-server 15\)/,
      'the baseline line carries raw NATS CPU per round trip',
    );
    assert.match(
      text,
      /per sequential round trip 120us/,
      'and what one round trip with nothing in flight beside it costs',
    );
    assert.match(
      text,
      /xen-pv-dom0-dma-api\s+32\s+no\s+no\s+5000\s+0\.63\s+6000us\s+9000us\s+0\.30\s+-/,
    );
    assert.match(text, /\s1\s+no\s+no\s+5000 .* 75%\s+2 I\/Os FAILED/);
    assert.match(text, /in raw NATS round trips \(80us each\)/);
    assert.match(
      text,
      /dma-api depth 32: dom0-kernel 250, l0-hypervisor 150 = 400 = 5 round trips; ceiling 5000 IOPS/,
    );
    assert.match(text, /memory: 4 GiB guest, 64 MiB touched: l0-hypervisor RSS 200 MB/);
    assert.equal(text.match(/^ {2}(met |MISS)/gm)?.length, r.targets.length);
    assert.match(text, /MISS --stacks 2 aggregate IOPS \/ one stack = n\/a \(>= 1\.6\)/);
    assert.doesNotMatch(text, /^stacks:/m, 'no stacks section without --stacks');
  });

  it('prints the stacks section: aggregate, scaling, CPU per I/O, each stack', () => {
    const memory = { guestBytes: 2 ** 32, touchedBytes: 2 ** 26, l0RssBytes: 200e6 };
    const s = stacks([5000, 8500]);
    const r: BenchReport = {
      baseline,
      runs: [],
      memory,
      machine: { cpus: 2 },
      targets: judgeTargets(baseline, [], memory, 32, s),
      stacks: s,
    };
    const text = formatBench(r);
    assert.match(text, /^stacks: K independent stacks on one nats-server at once, xen-pv/m);
    assert.match(text, /^\s+1\s+5000\s+1\.00\s+150us\s+bs1 5000 180 ok$/m);
    assert.match(text, /^\s+2\s+8500\s+1\.70\s+150us\s+bs1 4250 180 ok; bs2 4250 180 ok$/m);
    assert.match(text, /^ {2}K = 2: dom0-kernel 60, nats-server 90$/m);
    assert.match(text, /met +xen-pv-dom0-dma-api: --stacks 2 aggregate IOPS \/ one stack = 1\.7/);
  });
});

/** A stacks report with one run per aggregate IOPS given, K = 1, 2, … */
function stacks(aggregates: number[]): StacksReport {
  return {
    scenario: 'xen-pv-dom0-dma-api',
    iodepth: 32,
    traced: false,
    runs: withScaling(
      aggregates.map((aggregateIops, i) => ({
        stacks: i + 1,
        aggregateIops,
        scaling: null,
        cpuUsPerIo: 150,
        cpuUsPerIoByService: { 'dom0-kernel': 60, 'nats-server': 90 },
        perStack: Array.from({ length: i + 1 }, (_, j) => ({
          stack: `bs${j + 1}`,
          oracle: { outcome: 'completed', pass: true, ios: 200, dmaRecords: 400 },
          iops: Math.round(aggregateIops / (i + 1)),
          rssBytes: 180e6,
          rssBytesByService: { 'dom0-kernel': 60e6, 'l0-hypervisor': 120e6 },
        })),
        ios: 1500,
        reps: 3,
        failed: 0,
      })),
    ),
  };
}
