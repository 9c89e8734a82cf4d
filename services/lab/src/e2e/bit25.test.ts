import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { DmaLog } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import { FeatureSet, VIRTIO_F_PROPOSAL_2014 } from '@nestlab/virtio';
import { suiteFleet } from '../testing/suite-fleet.js';
import { runScenario } from '../run/orchestrator.js';
import { formatReport } from '../run/report.js';
import { catalogue, findScenario } from '../scenarios/builtin.js';
import { toScenario } from '../scenarios/from-file.js';
import type { Scenario } from '../scenarios/scenario.js';

const scenario = (id: string): Scenario => {
  const s = findScenario(id);
  assert.ok(s, id);
  return s;
};
const negotiatedBit25 = (hex: string) =>
  FeatureSet.fromBits(BigInt(hex)).has(VIRTIO_F_PROPOSAL_2014.USE_BUS_MAPPING);

describe('issue 16: the bit 25 proposal and a misplaced per-bus exemption, on a real fleet', () => {
  const suite = suiteFleet('b25');
  let bus: Bus;

  before(() => {
    bus = suite.bus();
  });
  it('bit25-qemu-device-under-xen: no bit 25 offered, physical addresses, misdirected DMA', async () => {
    const r = await runScenario(bus, scenario('bit25-qemu-device-under-xen'), { seed: 1 });
    assert.equal(r.outcome, 'misdirected-dma', JSON.stringify(r.dma));
    assert.equal(r.pass, true);
    assert.equal(negotiatedBit25(r.features.offered), false);
    assert.ok(r.dma.misdirected > 0);
    assert.equal(r.dma.translated, 0);
    assert.equal(r.dma.faulted, 0);
    assert.equal(r.dma.direct, r.dma.total);
    assert.equal(r.ios.verified, 0);
    assert.ok(r.firstMisdirected?.owner);
  });

  it('bit25-physical-card: bit 25 negotiated, every access translated, every I/O verified', async () => {
    const r = await runScenario(bus, scenario('bit25-physical-card'), { seed: 1, ios: 64 });
    assert.equal(r.outcome, 'ok', JSON.stringify(r));
    assert.equal(r.pass, true);
    assert.equal(negotiatedBit25(r.features.negotiated), true);
    assert.equal(r.ios.verified, 64);
    assert.ok(r.dma.total > 0);
    assert.equal(r.dma.translated, r.dma.total);
    assert.equal(r.dma.intended, r.dma.total);
    assert.deepEqual([r.dma.faulted, r.dma.misdirected], [0, 0]);
  });

  it('bit25-card-old-driver: offered but not understood, every access faults', async () => {
    const r = await runScenario(bus, scenario('bit25-card-old-driver'), { seed: 1 });
    assert.equal(r.outcome, 'iommu-fault');
    assert.equal(r.pass, true);
    assert.equal(negotiatedBit25(r.features.offered), true);
    assert.equal(negotiatedBit25(r.features.negotiated), false);
    assert.ok(r.dma.faulted > 0);
    assert.equal(r.dma.faulted, r.dma.total);
    assert.deepEqual([r.dma.translated, r.dma.misdirected, r.ios.completed], [0, 0, 0]);
    assert.equal(r.ios.submitted, 16);
  });

  it('x86-virtio-exemption-misplaced: the device on translated bus 0000:00 faults, and the report says so', async () => {
    const s = scenario('x86-virtio-exemption-misplaced');
    const r = await runScenario(bus, s, { seed: 1 });
    assert.equal(r.outcome, 'iommu-fault', JSON.stringify(r.dma));
    assert.equal(r.pass, true);
    assert.ok(r.dma.faulted > 0);
    assert.equal(r.dma.faulted, r.dma.total);
    assert.deepEqual([r.dma.bypassed, r.dma.misdirected, r.ios.completed], [0, 0, 0]);
    assert.deepEqual(r.device, {
      bdf: '0000:00:04.0',
      bus: '0000:00',
      iommu: 'virtio-translated-bus',
      exemptBuses: ['0000:01'],
    });
    assert.match(
      r.explanation,
      /sits on bus 0000:00, which the per-bus virtio exemption \(0000:01\)/,
    );
    assert.match(
      formatReport(r, s),
      /device\s+0000:00:04\.0 on bus 0000:00; NOT on a virtio-exempt bus/,
    );
    const log = (await bus.request(DmaLog, { since: 0, limit: 2000 })).head.records;
    assert.ok(log.length > 0 && log.every((rec) => rec.verdict === 'faulted'));
  });

  it('the same device moved onto the exempt bus list bypasses the IOMMU and works', async () => {
    const file = catalogue().files.find((f) => f.id === 'x86-virtio-exemption-misplaced');
    assert.ok(file);
    const placed = toScenario({
      ...file,
      expected: 'ok',
      iommu: { ...file.iommu, virtioExemptBuses: ['0000:00'] },
      checks: { allBypassed: true },
    });
    const r = await runScenario(bus, placed, { seed: 1, ios: 32 });
    assert.equal(r.outcome, 'ok', JSON.stringify(r.dma));
    assert.equal(r.dma.bypassed, r.dma.total);
    assert.equal(r.ios.verified, 32);
    assert.equal(r.device?.iommu, 'virtio-exempt');
  });
});
