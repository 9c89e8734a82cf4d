// The two virtio-mmio rows of the matrix, run for real: the transport
// changes, the Xen outcome does not (pseudo-physical addresses stay wrong
// without the DMA API, and are right with it). The legacy row runs on a
// version 1 device, its queue placed by page number (QueuePFN).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { before, describe, it } from 'node:test';
import { DeviceState, PciConfig } from '@nestlab/protocol';
import { VIRTIO_STATUS as S } from '@nestlab/virtio';
import type { Bus } from '@nestlab/service-kit';
import { suiteFleet } from '../testing/suite-fleet.js';
import { DEVICE_BDF } from '../run/configure.js';
import { runScenario } from '../run/orchestrator.js';
import { findScenario } from '../scenarios/builtin.js';
import { toScenario } from '../scenarios/from-file.js';
import { BUILTIN_DIR, parseScenarioText } from '../scenarios/load.js';

const scenario = (id: string) => {
  const s = findScenario(id);
  assert.ok(s, id);
  return s;
};

/** The workload's 200 I/Os, each completed and read back intact. */
const ALL_VERIFIED = { submitted: 200, completed: 200, verified: 200, corrupted: 0, failed: 0 };

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
    assert.deepEqual(r.ios, ALL_VERIFIED);
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
    await assertLegacyQueue();
  });

  it('a version 1 device with the DMA API: the legacy bring-up itself works, every I/O verifies', async () => {
    const text = readFileSync(`${BUILTIN_DIR}xen-pv-dom0-mmio-dma-api.yaml`, 'utf8')
      .replace('id: xen-pv-dom0-mmio-dma-api', 'id: mmio-legacy-dma-api')
      .replace('transport: mmio', 'transport: mmio\nmmioVersion: 1');
    const s = toScenario(parseScenarioText(text, 'mmio-legacy-dma-api.yaml'));
    assert.equal(s.mmioVersion, 1);
    const r = await runScenario(bus, s, { seed: 1 });
    assert.equal(r.outcome, 'ok', JSON.stringify(r));
    assert.deepEqual(r.ios, ALL_VERIFIED);
    assert.equal(r.dma.misdirected, 0);
    await assertLegacyQueue();
  });

  /** L0's view: DRIVER_OK without FEATURES_OK, the ring where one page number puts it (legacy layout). */
  async function assertLegacyQueue(): Promise<void> {
    const st = (await bus.request(DeviceState, { bdf: DEVICE_BDF })).head;
    assert.equal(st.status & S.DRIVER_OK, S.DRIVER_OK);
    assert.equal(st.status & S.FEATURES_OK, 0, 'no FEATURES_OK step on a legacy device');
    assert.equal(BigInt(st.negotiated) >> 32n, 0n, 'one 32-bit feature word: no VERSION_1');
    const q = st.queues[0];
    assert.ok(q?.enabled);
    const desc = BigInt(q.desc);
    assert.equal(desc % 4096n, 0n, 'QueuePFN × 4096');
    assert.equal(BigInt(q.driver), desc + 16n * BigInt(q.size));
    const availEnd = BigInt(q.driver) + 6n + 2n * BigInt(q.size);
    assert.equal(BigInt(q.device), ((availEnd + 4095n) / 4096n) * 4096n);
  }
});
