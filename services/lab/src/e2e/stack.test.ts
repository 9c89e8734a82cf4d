import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { DeviceDma, FrameOwners, MemAccess, P2mGet } from '@nestlab/protocol';
import { suiteFleet } from '../testing/suite-fleet.js';
import { DEVICE_BDF } from '../run/configure.js';
import { runScenario } from '../run/orchestrator.js';
import { findScenario } from '../scenarios/builtin.js';
import type { Bus } from '@nestlab/service-kit';

const scenario = (id: string) => {
  const s = findScenario(id);
  assert.ok(s, id);
  return s;
};

describe('one virtio-blk I/O path through dom0 → Xen → L0 → IOMMU, for real', () => {
  const suite = suiteFleet('st');
  let bus: Bus;

  before(() => {
    bus = suite.bus();
  });
  it('xen-pv-dom0-dma-api: every I/O verified, no misdirected access, and another seed moves the P2M', async () => {
    const r1 = await runScenario(bus, scenario('xen-pv-dom0-dma-api'), {
      seed: 1,
      ios: 200,
      iodepth: 16,
    });
    const p2m1 = (await bus.request(P2mGet, { domain: 0 })).head.ranges;
    assert.equal(r1.outcome, 'ok', JSON.stringify(r1));
    assert.equal(r1.pass, true);
    assert.equal(r1.ios.submitted, 200);
    assert.equal(r1.ios.verified, 200);
    assert.equal(r1.ios.corrupted, 0);
    assert.equal(r1.dma.misdirected, 0);
    assert.ok(r1.dma.total > 200, `dma total ${r1.dma.total}`);
    assert.equal(r1.dma.direct, r1.dma.total);

    const r2 = await runScenario(bus, scenario('xen-pv-dom0-dma-api'), {
      seed: 2,
      ios: 100,
      iodepth: 8,
    });
    const p2m2 = (await bus.request(P2mGet, { domain: 0 })).head.ranges;
    assert.equal(r2.pass, true, JSON.stringify(r2));
    assert.notDeepEqual(p2m1, p2m2);
  });

  it("xen-pv-dom0-legacy: the device touches frames that are not the driver's, and the oracle names their owner", async () => {
    const started = Date.now();
    const r = await runScenario(bus, scenario('xen-pv-dom0-legacy'), { seed: 1 });
    assert.equal(r.outcome, 'misdirected-dma', JSON.stringify(r));
    assert.equal(r.pass, true);
    assert.ok(r.dma.misdirected > 0);
    const m = r.firstMisdirected;
    assert.ok(m);
    const mfn = Number(BigInt(m.machine) >> 12n);
    const owner = (await bus.request(FrameOwners, { mfns: [mfn] })).head.owners[0];
    assert.equal(m.owner, owner);
    assert.notEqual(m.owner, 'dom0');
    assert.notEqual(m.owner, 'none');
    // The bus address the driver wrote is its pseudo-physical address: the 2014 bug.
    assert.equal(m.bus, m.pseudo);
    assert.ok(Date.now() - started < 60_000, 'the run ends by itself');
  });

  it('viommu-access-platform: every access translated, no faults; an unmapped IOVA faults and changes nothing', async () => {
    const r = await runScenario(bus, scenario('viommu-access-platform'), {
      seed: 3,
      ios: 100,
      iodepth: 8,
    });
    assert.equal(r.outcome, 'ok', JSON.stringify(r));
    assert.equal(r.pass, true);
    assert.ok(r.dma.total > 0);
    assert.equal(r.dma.translated, r.dma.total);
    assert.equal(r.dma.faulted, 0);
    assert.equal(BigInt(r.features.negotiated) & (1n << 33n), 1n << 33n);

    // Pick a bus address that, taken as machine, is dom0 RAM: if it bypassed the IOMMU it would land there.
    const target = 0x70200000n;
    const before = await bus.request(MemAccess, {
      requester: { kind: 'xen' },
      ops: [{ op: 'read', addr: `0x${target.toString(16)}`, len: 64 }],
    });
    const rogue = await bus.request(
      DeviceDma,
      { bdf: DEVICE_BDF, bus: `0x${target.toString(16)}`, len: 64, write: true },
      { data: new Uint8Array(64).fill(0xee) },
    );
    assert.equal(rogue.head.record.verdict, 'faulted');
    assert.match(rogue.head.record.fault ?? '', /IOMMU_FAULT_NOT_PRESENT/);
    const afterRead = await bus.request(MemAccess, {
      requester: { kind: 'xen' },
      ops: [{ op: 'read', addr: `0x${target.toString(16)}`, len: 64 }],
    });
    assert.deepEqual([...afterRead.data], [...before.data]);
  });
});
