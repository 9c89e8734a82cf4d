import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FaultInjector } from './injector.js';
import { subjectMatches } from './subject-match.js';

describe('subject patterns', () => {
  it('match NATS wildcards', () => {
    assert.equal(subjectMatches('nestlab.s1.l0.>', 'nestlab.s1.l0.mem.access'), true);
    assert.equal(
      subjectMatches('nestlab.*.l0.dev.*.notify', 'nestlab.s1.l0.dev.pci-0000-00-04-0.notify'),
      true,
    );
    assert.equal(subjectMatches('nestlab.s1.l0.>', 'nestlab.s1.l0'), false);
    assert.equal(subjectMatches('nestlab.s1.l0.mem', 'nestlab.s1.l0.mem.access'), false);
    assert.equal(subjectMatches('nestlab.s2.>', 'nestlab.s1.l0.mem.access'), false);
  });
});

describe('fault injector', () => {
  const subjects = Array.from({ length: 200 }, (_, i) =>
    i % 3 === 0 ? 'nestlab.s1.xen.irq.msi' : 'nestlab.s1.l0.mem.access',
  );
  const run = (seed: number) => {
    const f = new FaultInjector();
    f.set({
      seed,
      rules: [
        { id: 'lose-msi', subject: 'nestlab.*.xen.irq.msi', action: 'drop', probability: 0.3 },
        {
          id: 'slow-mem',
          subject: 'nestlab.s1.l0.>',
          action: 'delay',
          probability: 0.2,
          delayMs: 5,
          jitterMs: 10,
          after: 10,
          limit: 7,
        },
      ],
    });
    const decisions = subjects.map((s) => f.decide(s, 100));
    return { decisions, log: f.snapshot().injected };
  };

  it('injects the same faults at the same logical points for the same seed', () => {
    assert.deepEqual(run(7), run(7));
    assert.notDeepEqual(run(7).log, run(8).log);
  });

  it('honours probability, after and limit', () => {
    const { log } = run(7);
    const drops = log.filter((l) => l.rule === 'lose-msi');
    const delays = log.filter((l) => l.rule === 'slow-mem');
    assert.ok(drops.length > 5 && drops.length < 40, `drops ${drops.length}`);
    assert.equal(delays.length, 7);
    assert.ok(delays.every((d) => d.n >= 10));
  });

  it('does nothing without a plan and forgets the log on a new plan', () => {
    const f = new FaultInjector();
    assert.equal(f.active, false);
    f.set({ seed: 1, rules: [{ id: 'x', subject: '>', action: 'corrupt', bytes: 3 }] });
    const d = f.decide('a.b', 10);
    assert.equal(d?.action, 'corrupt');
    assert.equal(d?.action === 'corrupt' && d.positions.every((p) => p >= 0 && p < 10), true);
    f.set({ seed: 1, rules: [] });
    assert.equal(f.snapshot().injected.length, 0);
  });
});
