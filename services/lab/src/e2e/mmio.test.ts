// The two virtio-mmio rows of the matrix, run for real: the transport
// changes, the Xen outcome does not (pseudo-physical addresses stay wrong
// without the DMA API, and are right with it).
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { PciConfig } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import { suiteFleet } from '../testing/suite-fleet.js';
import { DEVICE_BDF } from '../run/configure.js';
import { runScenario } from '../run/orchestrator.js';
import { findScenario } from '../scenarios/builtin.js';

const scenario = (id: string) => {
  const s = findScenario(id);
  assert.ok(s, id);
  return s;
};

describe('virtio-mmio under Xen: dom0 → Xen → L0 over the mmio transport', () => {
  const suite = suiteFleet('mm');
  let bus: Bus;

  before(() => {
    bus = suite.bus();
  });

  /** The device is not on PCI: config space at its name reads all ones (an empty slot). */
  const notOnPci = async () =>
    (await bus.request(PciConfig, { bdf: DEVICE_BDF, op: 'read', offset: 0, size: 2 })).head.value;

  it('xen-pv-dom0-mmio-dma-api: every I/O completes and verifies, no access misdirected', async () => {
    const r = await runScenario(bus, scenario('xen-pv-dom0-mmio-dma-api'), { seed: 1 });
    assert.equal(r.outcome, 'ok', JSON.stringify(r));
    assert.equal(r.pass, true);
    assert.equal(r.driver.ok, true);
    assert.deepEqual(r.ios, {
      submitted: 200,
      completed: 200,
      verified: 200,
      corrupted: 0,
      failed: 0,
    });
    assert.equal(r.dma.misdirected, 0);
    assert.ok(r.dma.total > 0);
    // No IOMMU: every access direct, and each hit the frame the driver meant.
    assert.equal(r.dma.direct, r.dma.total);
    assert.equal(r.dma.intended, r.dma.total);
    assert.equal(await notOnPci(), 0xffff);
  });

  it('xen-pv-dom0-mmio-legacy: pseudo-physical addresses reach the device as bus addresses', async () => {
    const r = await runScenario(bus, scenario('xen-pv-dom0-mmio-legacy'), { seed: 1 });
    assert.equal(r.outcome, 'misdirected-dma', JSON.stringify(r));
    assert.equal(r.pass, true);
    assert.equal(r.driver.ok, true, 'the probe over mmio works; the I/O does not');
    assert.equal(r.ios.submitted, 16);
    assert.equal(r.ios.completed, 0);
    assert.equal(r.ios.failed, 16);
    // Every access the device made went to a frame the driver did not mean.
    assert.ok(r.dma.misdirected > 0);
    assert.equal(r.dma.misdirected, r.dma.total);
    assert.equal(r.dma.intended, 0);
    const m = r.firstMisdirected;
    assert.ok(m);
    assert.equal(
      m.bus,
      m.pseudo,
      'the bus address the driver wrote is its pseudo-physical address',
    );
    assert.notEqual(m.owner, 'dom0');
    assert.equal(await notOnPci(), 0xffff);
  });
});
