import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { FaultControl, type FaultPlan } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import type { Fleet } from '../fleet/fleet.js';
import { suiteFleet } from '../testing/suite-fleet.js';
import { runScenario } from '../run/orchestrator.js';
import { findScenario } from '../scenarios/builtin.js';
import type { Scenario } from '../scenarios/scenario.js';

const SERVICES = ['l0', 'xen', 'dom0', 'iommu'] as const;

describe('transport faults on a real fleet', () => {
  const suite = suiteFleet('ft', { logLevel: 'error' });
  let fleet: Fleet;
  let bus: Bus;
  const base = findScenario('xen-pv-dom0-dma-api') as Scenario;
  const setAll = async (plan: FaultPlan) => {
    for (const s of SERVICES) await bus.request(FaultControl[s].set, plan);
  };

  before(() => {
    bus = suite.bus();
    fleet = suite.fleet();
  });
  it('survives delayed memory traffic and duplicated interrupts, and logs what it injected', async () => {
    await setAll({
      seed: 7,
      rules: [
        {
          id: 'slow-mem',
          subject: 'nestlab.ft.l0.mem.access',
          action: 'delay',
          probability: 0.3,
          delayMs: 2,
          jitterMs: 5,
        },
        {
          id: 'dup-irq',
          subject: 'nestlab.ft.dom0.evtchn.*.notify',
          action: 'duplicate',
          probability: 0.5,
        },
      ],
    });
    const r = await runScenario(bus, base, { seed: 1, ios: 60, iodepth: 4 });
    assert.equal(r.pass, true, JSON.stringify(r));
    assert.equal(r.ios.verified, 60);
    const l0 = (await bus.request(FaultControl.l0.list, {})).head;
    const dom0 = (await bus.request(FaultControl.dom0.list, {})).head;
    assert.ok(l0.injected.some((f) => f.rule === 'slow-mem'));
    assert.ok(dom0.injected.some((f) => f.rule === 'dup-irq'));
    assert.equal(
      l0.injected.some((f) => f.rule === 'dup-irq'),
      false,
    );
  });

  it('recovers when every interrupt is lost: the driver finds the completions by polling', async () => {
    await setAll({
      seed: 1,
      rules: [{ id: 'lose-msi', subject: 'nestlab.ft.xen.irq.msi', action: 'drop' }],
    });
    const dom0 = fleet.services.find((p) => p.service.name === 'dom0-kernel');
    assert.ok(dom0);
    const recovered = async () =>
      (
        (await (await fetch(`${dom0.adminUrl}/state`)).json()) as {
          driver: { recovery: { lostInterruptsRecovered: number } };
        }
      ).driver.recovery.lostInterruptsRecovered;
    const before = await recovered();
    // A hang is declared after min(1 s, deadline / 4) without used-ring progress.
    const slow: Scenario = { ...base, workload: { ...base.workload, deadlineMs: 4000 } };
    const r = await runScenario(bus, slow, { seed: 1, ios: 8, iodepth: 4 });
    assert.equal(r.pass, true, JSON.stringify(r));
    assert.equal(r.ios.completed, 8);
    assert.ok((await recovered()) > before, 'lost interrupts were recovered by polling');
    const xen = (await bus.request(FaultControl.xen.list, {})).head;
    assert.ok(xen.injected.some((f) => f.rule === 'lose-msi'));
    await setAll({ seed: 0, rules: [] });
    const again = await runScenario(bus, base, { seed: 1, ios: 16, iodepth: 4 });
    assert.equal(again.pass, true, JSON.stringify(again));
  });

  it('refuses a malformed plan with a typed error and keeps the old one', async () => {
    await setAll({
      seed: 3,
      rules: [{ id: 'keep', subject: 'nestlab.ft.iommu.>', action: 'drop', probability: 0 }],
    });
    await assert.rejects(
      bus.request(FaultControl.l0.set, {
        seed: 1,
        rules: [{ id: 'Bad Id', subject: 'a..b', action: 'explode' }],
      } as unknown as FaultPlan),
      { code: 'SCHEMA_INVALID' },
    );
    const l0 = (await bus.request(FaultControl.l0.list, {})).head;
    assert.deepEqual(
      l0.plan.rules.map((r) => r.id),
      ['keep'],
    );
    await setAll({ seed: 0, rules: [] });
  });
});
