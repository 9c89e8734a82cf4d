// Issue 16 row 4, run for real: a hardware card with its rings in its own
// memory (BAR 2). Ring accesses stay on the card (device-local, never
// faulted, counted apart); buffers are DMA and go through the IOMMU.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DmaLog } from '@nestlab/protocol';
import { runScenario } from '../run/orchestrator.js';
import { formatReport } from '../run/report.js';
import { findScenario } from '../scenarios/builtin.js';
import type { Scenario } from '../scenarios/scenario.js';
import { suiteFleet } from '../testing/suite-fleet.js';

const scenario = (id: string): Scenario => {
  const s = findScenario(id);
  assert.ok(s, id);
  return s;
};
/** Where L0 places the first device's ring memory BAR, and its size in the scenario files. */
const RING_BAR = { base: 0xfe80_0000n, bytes: 0x1_0000n };
const inRingBar = (bus: string) =>
  BigInt(bus) >= RING_BAR.base && BigInt(bus) < RING_BAR.base + RING_BAR.bytes;

describe('issue 16: rings in the card’s own memory', () => {
  const fleet = suiteFleet('rb');
  const log = async () =>
    (await fleet.bus().request(DmaLog, { since: 0, limit: 2000 })).head.records;

  it('physical-card-rings-in-bar: buffer accesses fault, ring accesses stay on the card', async () => {
    const s = scenario('physical-card-rings-in-bar');
    const r = await runScenario(fleet.bus(), s, { seed: 1 });
    assert.equal(r.outcome, 'iommu-fault', JSON.stringify(r.dma));
    assert.equal(r.pass, true);
    assert.equal(r.driver.ok, true);
    assert.equal(r.ios.completed, 0);
    assert.ok((r.dma.deviceLocal ?? 0) > 0);
    assert.ok(r.dma.faulted > 0);
    assert.equal(r.dma.faulted + (r.dma.deviceLocal ?? 0), r.dma.total);
    assert.equal(r.dma.misdirected, 0);
    const records = await log();
    assert.ok(records.length > 0);
    for (const rec of records) {
      if (rec.what === 'buffer') assert.equal(rec.verdict, 'faulted', JSON.stringify(rec));
      else {
        // desc, avail, used: in the card's BAR, no machine address, never faulted.
        assert.equal(rec.verdict, 'device-local', JSON.stringify(rec));
        assert.ok(inRingBar(rec.bus), rec.bus);
        assert.equal(rec.machine, null);
      }
    }
    assert.match(formatReport(r, s), /ring accesses in device memory \(no DMA\)/);
    assert.match(r.explanation, /ring accesses stayed on the card, none faulted/);
  });

  it('physical-card-rings-in-bar-access-platform: every DMA access translated, rings apart', async () => {
    const s = scenario('physical-card-rings-in-bar-access-platform');
    const r = await runScenario(fleet.bus(), s, { seed: 1, ios: 48 });
    assert.equal(r.outcome, 'ok', JSON.stringify(r.dma));
    assert.equal(r.pass, true);
    assert.deepEqual(r.ios, {
      submitted: 48,
      completed: 48,
      verified: 48,
      corrupted: 0,
      failed: 0,
    });
    const local = r.dma.deviceLocal ?? 0;
    assert.ok(local > 0);
    assert.equal(r.dma.translated + local, r.dma.total);
    assert.equal(r.dma.intended, r.dma.translated);
    assert.equal(r.dma.faulted, 0);
    const records = await log();
    assert.ok(records.some((rec) => rec.what === 'buffer' && rec.verdict === 'translated'));
    assert.ok(
      records.every((rec) => (rec.what === 'buffer') === (rec.verdict === 'translated')),
      'buffers translated by the IOMMU, ring parts device-local',
    );
  });
});
