import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  formatBench,
  judgeTargets,
  median,
  percentile,
  type BenchReport,
  type BenchRun,
} from './report.js';

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

  it('judges every target as a ratio against the baseline of the same run', () => {
    const baseline = { reqRep4kPerSec: 8000, rttP50Us: 400, reqRep4kConcurrency: 32 };
    const runs = [
      run({}),
      run({ traced: true, iops: 3000 }),
      run({ iodepth: 1, iops: 600, clatP50Us: 1700, msgsPerIo: 4 }),
      run({ verify: true, iops: 100 }),
    ];
    const memory = { guestBytes: 2 ** 32, touchedBytes: 2 ** 26, l0RssBytes: 200e6 };
    const t = judgeTargets(baseline, runs, memory, 32);
    const by = (what: string) => t.find((x) => x.what.startsWith(what));
    assert.deepEqual(
      [by('iodepth 32 untraced IOPS')?.value, by('iodepth 32 untraced IOPS')?.met],
      [0.625, true],
    );
    assert.deepEqual(
      [by('iodepth 32 untraced NATS')?.value, by('iodepth 32 untraced NATS')?.met],
      [0.3, true],
    );
    assert.deepEqual([by('iodepth 1 clat')?.value, by('iodepth 1 clat')?.met], [4.25, false]);
    assert.deepEqual([by('iodepth 32 traced')?.value, by('iodepth 32 traced')?.met], [0.6, false]);
    assert.equal(by('l0-hypervisor RSS')?.met, true);
    const missing = judgeTargets(baseline, [run({ iodepth: 8 })], memory, 32);
    assert.ok(
      missing.filter((x) => x.scenario !== '-').every((x) => x.value === null && !x.met),
      'a run that is not there is not met',
    );
  });

  it('prints one fio-style line per run and one per target', () => {
    const baseline = { reqRep4kPerSec: 8000, rttP50Us: 400, reqRep4kConcurrency: 32 };
    const memory = { guestBytes: 2 ** 32, touchedBytes: 2 ** 26, l0RssBytes: 200e6 };
    const runs = [
      run({ cpuUsPerIo: { 'dom0-kernel': 250, 'l0-hypervisor': 150 }, cpuCeilingIops: 5000 }),
      run({ iodepth: 1, failed: 2, iotlbHitRate: 0.75 }),
    ];
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
      /xen-pv-dom0-dma-api\s+32\s+no\s+no\s+5000\s+0\.63\s+6000us\s+9000us\s+0\.30\s+-/,
    );
    assert.match(text, /\s1\s+no\s+no\s+5000 .* 75%\s+2 I\/Os FAILED/);
    assert.match(
      text,
      /dma-api depth 32: dom0-kernel 250, l0-hypervisor 150 = 400; ceiling 5000 IOPS/,
    );
    assert.match(text, /memory: 4 GiB guest, 64 MiB touched: l0-hypervisor RSS 200 MB/);
    assert.equal(text.match(/^ {2}(met |MISS)/gm)?.length, r.targets.length);
  });
});
