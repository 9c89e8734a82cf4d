import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { before, describe, it } from 'node:test';
import { DeviceState, DmaLog } from '@nestlab/protocol';
import type { Bus } from '@nestlab/service-kit';
import { VIRTIO_F, VIRTIO_STATUS } from '@nestlab/virtio';
import { suiteFleet } from '../testing/suite-fleet.js';
import { DEVICE_BDF } from '../run/configure.js';
import { runScenario } from '../run/orchestrator.js';
import { findScenario } from '../scenarios/builtin.js';
import type { Scenario } from '../scenarios/scenario.js';

const scenario = (id: string): Scenario => {
  const s = findScenario(id);
  assert.ok(s, id);
  return s;
};
const CLI = new URL('../cli.js', import.meta.url).pathname;

describe('the seed scenarios, each judged on a real fleet', () => {
  const suite = suiteFleet('mx');
  let bus: Bus;
  const dataDir = join(suite.scratch, 'data');

  before(() => {
    bus = suite.bus();
  });

  const diskIsBlank = () => {
    const image = readdirSync(dataDir).find((f) => f.endsWith('.img'));
    assert.ok(image, 'disk image exists');
    return readFileSync(join(dataDir, image)).every((b) => b === 0);
  };

  it('kvm-guest-baseline: a physical-address driver works when guest-physical is what the device sees', async () => {
    const r = await runScenario(bus, scenario('kvm-guest-baseline'), { seed: 1, ios: 64 });
    assert.equal(r.outcome, 'ok');
    assert.equal(r.pass, true);
    assert.equal(r.ios.verified, 64);
    assert.equal(r.dma.direct, r.dma.total);
    assert.equal(r.dma.misdirected, 0);
    // The oracle is exact: on a healthy run every access went through a live mapping.
    assert.equal(r.dma.stale, 0);
    assert.equal(r.dma.intended, r.dma.total);
  });

  it('old-driver-rejects-feature: FEATURES_OK refused, FAILED set, no DMA at all', async () => {
    const r = await runScenario(bus, scenario('old-driver-rejects-feature'), { seed: 1 });
    assert.equal(r.outcome, 'features-rejected');
    assert.equal(r.pass, true);
    assert.equal(r.dma.total, 0);
    assert.equal(r.ios.submitted, 0);
    assert.equal(r.driver.error?.code, 'FEATURES_REJECTED');
    assert.equal(r.driver.status & VIRTIO_STATUS.FAILED, VIRTIO_STATUS.FAILED);
    const dev = (await bus.request(DeviceState, { bdf: DEVICE_BDF })).head;
    assert.equal(dev.status & VIRTIO_STATUS.FEATURES_OK, 0);
    assert.equal(dev.status & VIRTIO_STATUS.FAILED, VIRTIO_STATUS.FAILED);
    assert.equal(BigInt(dev.negotiated) & (1n << BigInt(VIRTIO_F.ACCESS_PLATFORM)), 0n);
  });

  it('physical-virtio-card: every access faults in the IOMMU; disk and memory untouched by the device', async () => {
    const r = await runScenario(bus, scenario('physical-virtio-card'), { seed: 1 });
    assert.equal(r.outcome, 'iommu-fault');
    assert.equal(r.pass, true);
    assert.ok(r.dma.faulted > 0);
    assert.equal(r.dma.faulted, r.dma.total);
    assert.equal(r.ios.completed, 0);
    const log = (await bus.request(DmaLog, { since: 0, limit: 2000 })).head.records;
    assert.ok(
      log.length > 0 && log.every((rec) => rec.verdict === 'faulted' && rec.machine === null),
    );
    assert.equal(diskIsBlank(), true);
  });

  it('ppc64-virtio-bypass: works through the platform exemption, every access bypassing the IOMMU', async () => {
    const r = await runScenario(bus, scenario('ppc64-virtio-bypass'), { seed: 1, ios: 64 });
    assert.equal(r.outcome, 'ok');
    assert.equal(r.pass, true);
    assert.equal(r.dma.bypassed, r.dma.total);
    assert.equal(r.ios.verified, 64);
  });

  it('ppc64-virtio-bypass with ACCESS_PLATFORM negotiated: the same device is translated', async () => {
    const base = scenario('ppc64-virtio-bypass');
    const withBit: Scenario = {
      ...base,
      device: { ...base.device, offer: [...base.device.offer, VIRTIO_F.ACCESS_PLATFORM] },
      driver: { ...base.driver, generation: 'modern', policy: 'iommu' },
      checks: { ...base.checks, allBypassed: false, allTranslated: true },
    };
    const r = await runScenario(bus, withBit, { seed: 1, ios: 64 });
    assert.equal(r.outcome, 'ok', JSON.stringify(r));
    assert.equal(r.pass, true);
    assert.equal(r.dma.translated, r.dma.total);
    // IOVAs are reused here, after their unmap and invalidation: still never a stale hit.
    assert.equal(r.dma.stale, 0);
    assert.equal(r.dma.intended, r.dma.total);
  });

  it('viommu-legacy-bypass: I/O works, every access bypasses the IOMMU, and a rogue access succeeds', async () => {
    const r = await runScenario(bus, scenario('viommu-legacy-bypass'), { seed: 1, ios: 64 });
    assert.equal(r.outcome, 'isolation-bypass');
    assert.equal(r.pass, true);
    assert.equal(r.ios.verified, 64);
    assert.equal(r.dma.bypassed, r.dma.total);
    assert.equal(r.rogue?.verdict, 'bypass');
    assert.ok(r.rogue?.machine);
    assert.equal(r.dma.outside, 1);
  });
});

describe('nestlab CLI on bad input', () => {
  const run = (args: string[], env: NodeJS.ProcessEnv = {}) =>
    spawnSync(process.execPath, [CLI, ...args], {
      encoding: 'utf8',
      env: { ...process.env, ...env },
      timeout: 20_000,
    });

  it('exits 2 with one clear line for unknown commands, scenarios, options and bad numbers', () => {
    for (const [args, pattern] of [
      [['frobnicate'], /unknown command "frobnicate"/],
      [
        ['run', 'no-such-scenario'],
        /unknown scenario "no-such-scenario"; known: [a-z0-9-, ]*\bkvm-guest-baseline\b/,
      ],
      [['run', 'xen-pv-dom0-legacy', '--ios', 'many'], /--ios takes a whole number/],
      [['run', 'xen-pv-dom0-legacy', '--bs', '1000'], /--bs must be a multiple of 512/],
      [['run', 'xen-pv-dom0-legacy', '--colour'], /Unknown option '--colour'/],
      [['matrix', 'extra'], /Unexpected argument|positional/],
      // One past what a report carries at its FLUSH rate: refused before any process starts.
      [
        ['experiment', 'transport-chaos', '--ios', '16001'],
        /20001 records; an experiment judges at most 20000: run at most 16000 I\/Os/,
      ],
    ] as const) {
      const r = run([...args]);
      assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    }
  });

  it('exits 2 naming file, line and field for a bad scenario file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'nestlab-bad-'));
    try {
      const file = join(dir, 'mine.yaml');
      writeFileSync(
        file,
        'id: mine\ntitle: x\nexpected: ok\nexplanation: x\nstack: { layers: l0, domain: plain-guest }\ntransport: pci\ndevice: { kind: virtio, offer: [VERSION_1], requireAccessPlatform: no }\niommu: { present: false }\ndriver: { generation: modern, dma: legacy }\n',
      );
      const r = run(['run', '--file', file]);
      assert.equal(r.status, 2, r.stderr);
      assert.match(r.stderr, /mine\.yaml:7: device\.requireAccessPlatform: /);
      const userDir = mkdtempSync(join(tmpdir(), 'nestlab-user-'));
      writeFileSync(join(userDir, 'typo.yaml'), 'id: typo\ntitel: x\n');
      const listed = run(['scenarios'], { NESTLAB_SCENARIOS: userDir });
      assert.equal(listed.status, 2, listed.stderr);
      assert.match(listed.stderr, /typo\.yaml:\d+: /);
      rmSync(userDir, { recursive: true, force: true });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
