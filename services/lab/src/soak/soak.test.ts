import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { RssSampler, median, readRssBytes } from './rss.js';
import { runSoak } from './soak.js';

const cli = fileURLToPath(new URL('../cli.js', import.meta.url));

describe('RSS from /proc', () => {
  it('reads this process and nothing for a pid that does not exist', () => {
    const mine = readRssBytes(process.pid);
    assert.ok(mine !== null && mine > 10 * 2 ** 20, String(mine));
    assert.equal(readRssBytes(2 ** 30), null);
  });

  it('parses VmRSS in kB, and a status without it is null', () => {
    const root = mkdtempSync(join(tmpdir(), 'nestlab-proc-'));
    try {
      mkdirSync(join(root, '7'));
      writeFileSync(join(root, '7', 'status'), 'Name:\tnode\nVmRSS:\t  2048 kB\nThreads:\t7\n');
      mkdirSync(join(root, '8'));
      writeFileSync(join(root, '8', 'status'), 'Name:\tzombie\n');
      assert.equal(readRssBytes(7, root), 2048 * 1024);
      assert.equal(readRssBytes(8, root), null);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('takes medians over windows and keeps a bounded series', () => {
    assert.equal(median([]), null);
    assert.equal(median([5, 1, 9]), 5);
    assert.equal(median([4, 1, 9, 2]), 3);
    let v = 0;
    const s = new RssSampler(new Map([['svc', 1]]), 8, () => (v += 10));
    for (let t = 0; t < 100; t++) s.sample(t);
    assert.equal(s.peak('svc'), 1000);
    assert.equal(s.medianOfLast('svc', 3), 990, 'the newest samples survive thinning');
    assert.equal(s.medianBetween('svc', 0, 0), 10, 'so does the first');
    assert.equal(s.medianBetween('svc', 200, 300), null);
  });
});

describe('nestlab soak', () => {
  it('runs every scenario on a private fleet and reports I/Os and RSS per service', async () => {
    const r = await runSoak({ minutes: 0.05, ios: 24, warmupMinutes: 0.01, sampleEveryMs: 500 });
    assert.equal(r.crashed, null);
    assert.ok(r.runs.total >= 8, `${r.runs.total} runs: one pass over the scenarios at least`);
    assert.equal(r.runs.asExpected, r.runs.total, JSON.stringify(r.runs.byScenario));
    assert.ok(r.ios.done > 0);
    assert.equal(r.ios.lost, 0);
    assert.equal(r.ios.unended, 0);
    assert.deepEqual(Object.keys(r.services).sort(), [
      'dom0-kernel',
      'iommu',
      'l0-hypervisor',
      'xen',
    ]);
    for (const [name, m] of Object.entries(r.services)) {
      assert.ok((m.rssAfterWarmupBytes ?? 0) > 20 * 2 ** 20, `${name} ${m.rssAfterWarmupBytes}`);
      assert.ok((m.rssEndBytes ?? 0) > 20 * 2 ** 20, `${name} ${m.rssEndBytes}`);
    }
  });

  it('refuses bad arguments with exit code 2 and one line naming the problem', async () => {
    const cases: [string[], RegExp][] = [
      [[], /needs --minutes/],
      [['--minutes', '0'], /--minutes takes a number of minutes/],
      [['--minutes', 'x'], /--minutes takes a number of minutes/],
      [['--minutes', '1', '--warmup-minutes', '2'], /--warmup-minutes takes/],
      [['--minutes', '1', 'extra'], /takes no arguments/],
      [['--minutes', '1', '--ios=-3'], /--ios takes a whole number/],
      [['--bogus'], /bogus/],
    ];
    for (const [args, why] of cases) {
      const child = spawn(process.execPath, [cli, 'soak', ...args], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let err = '';
      child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
      const code = await new Promise<number | null>((res) => child.once('exit', res));
      assert.equal(code, 2, `${args.join(' ')}: ${err}`);
      assert.match(err, /^nestlab: [^\n]+\n$/, args.join(' '));
      assert.match(err, why, args.join(' '));
    }
  });
});
