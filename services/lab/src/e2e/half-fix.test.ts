// Issue 16 row 5, run for real: a half fix (rings through the DMA API,
// buffers still pseudo-physical) completes every I/O while the device moves
// their data through frames dom0 does not own. The oracle must catch it with
// the verifier on and with it off.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runScenario } from '../run/orchestrator.js';
import { formatReport } from '../run/report.js';
import { findScenario } from '../scenarios/builtin.js';
import type { Scenario } from '../scenarios/scenario.js';
import { suiteFleet } from '../testing/suite-fleet.js';

const halfFix = (): Scenario => {
  const s = findScenario('xen-pv-dom0-half-fix');
  assert.ok(s);
  return s;
};

describe('issue 16: a half fix under Xen is silent corruption', () => {
  const fleet = suiteFleet('hf');

  it('xen-pv-dom0-half-fix: every I/O completes, buffers land in frames of another owner', async () => {
    const s = halfFix();
    const r = await runScenario(fleet.bus(), s, { seed: 1 });
    assert.equal(r.outcome, 'silent-corruption', JSON.stringify({ ios: r.ios, dma: r.dma }));
    assert.equal(r.pass, true);
    // The driver saw nothing wrong: every I/O completed with status OK.
    assert.equal(r.ios.submitted, s.workload.ios);
    assert.equal(r.ios.completed, s.workload.ios);
    assert.equal(r.ios.failed, 0);
    assert.deepEqual(r.errors, {});
    // The rings went through the DMA API: the device found them where dom0 meant.
    assert.ok(r.dma.intended > 0);
    assert.ok(r.dma.misdirected > 0);
    assert.equal(r.dma.intended + r.dma.misdirected, r.dma.total);
    const m = r.firstMisdirected;
    assert.ok(m);
    assert.equal(m.what, 'buffer', 'only buffers are misdirected, never a ring part');
    assert.equal(m.bus, m.pseudo, "the buffer's bus address is its pseudo-physical address");
    // The oracle names the owner of every frame hit, and none is dom0's.
    const a = r.astray;
    assert.ok(a);
    assert.ok(a.framesTotal > 0);
    assert.equal(a.frames.length, Math.min(a.framesTotal, 64));
    for (const f of a.frames) assert.ok(f.owner !== 'dom0' && f.owner !== 'none', f.owner);
    const byOwner = Object.values(a.byOwner).reduce((x, y) => x + y, 0);
    assert.equal(byOwner, r.dma.misdirected);
    // The verifier flags exactly the reads whose sector went astray: it poisons each
    // read buffer first, so a reused page still holding the expected block cannot pass.
    assert.ok(a.reads > 0);
    assert.equal(r.ios.corrupted, a.reads, `${r.ios.corrupted} corrupted, ${a.reads} astray`);
    assert.match(formatReport(r, s), /data astray\s+\d+ frames hit/);
  });

  it('with the verifier off the oracle still judges silent-corruption', async () => {
    const s = halfFix();
    const quiet: Scenario = { ...s, workload: { ...s.workload, verify: false, ios: 16 } };
    const r = await runScenario(fleet.bus(), quiet, { seed: 2 });
    assert.equal(r.outcome, 'silent-corruption', JSON.stringify({ ios: r.ios, dma: r.dma }));
    assert.equal(r.ios.completed, 16);
    assert.equal(r.ios.corrupted, 0, 'nothing verified, nothing flagged by the verifier');
    assert.equal(r.ios.verified, 0);
    assert.ok(r.dma.misdirected > 0);
    assert.ok(r.astray && r.astray.reads > 0);
  });
});
